"""Every command that docs/benchmarks.md and bench/README.md name exists: `make` targets in the Makefile,
`python -m` modules in the tree, bench/ and loadtests/ files, and the images they show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "benchmarks.md", ROOT / "bench" / "README.md"]
TARGETS = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def _named(pattern: str) -> list[tuple[str, str]]:
    """(document, what it names): commands in code spans or at the start of a code block's line."""
    return sorted({(doc.name, m) for doc in DOCS for m in re.findall(pattern, doc.read_text(), re.MULTILINE)})


@pytest.mark.parametrize(("doc", "target"), _named(r"(?:`|^)make ([a-z][\w-]*\w)(?![\w*-])"))
def test_make_targets_exist(doc, target):
    assert target in TARGETS, f"{doc} names `make {target}`, which the Makefile lacks"


@pytest.mark.parametrize(("doc", "module"), _named(r"python -m ((?:bench|loadtests|app)(?:\.\w+)*)"))
def test_modules_exist(doc, module):
    path = ROOT.joinpath(*module.split("."))
    assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), f"{doc} names {module}"


@pytest.mark.parametrize(("doc", "path"), _named(r"\b((?:bench|loadtests)/[\w/]+\.(?:py|sh))"))
def test_files_exist(doc, path):
    assert (ROOT / path).exists(), f"{doc} names {path}"


@pytest.mark.parametrize(("doc", "image"), _named(r"\]\([\w./]*img/([\w.-]+\.png)\)"))
def test_images_exist(doc, image):
    assert (ROOT / "docs" / "img" / image).exists(), f"{doc} shows img/{image}"


def test_every_figure_row_of_the_summary_names_a_make_target():
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    summary = text.split("\n## ", 2)[1] if "\n## " in text else text
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    assert rows, "docs/benchmarks.md opens with a summary table"
    for line in rows:
        assert re.search(r"`make [\w-]+", line), f"a summary row without its make target: {line[:80]}"
