"""Print (or --write into README.md) the settings table, generated from app/settings.py so the two
never disagree. tests/unit/test_readme.py fails when README.md is stale."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def table() -> str:
    sys.path.insert(0, str(ROOT))
    from app.settings import Settings

    rows = ["| variable | default | what |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default in (None, "") else f"`{default}`"
        rows.append(f"| `TERSE_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


def render(readme: str) -> str:
    return re.sub(rf"{re.escape(START)}.*?{re.escape(END)}", f"{START}\n{table()}\n{END}", readme, flags=re.S)


if __name__ == "__main__":
    path = ROOT / "README.md"
    if "--write" in sys.argv:
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table())
