"""The README's promises: the two commands, the settings table in sync with app/settings.py."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_has_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_settings_table_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert mod.render(readme) == readme, "run: python scripts/settings_table.py --write"
