"""Every relative link in README.md and docs/ (and the other Markdown files we ship) points at a file
or folder that exists, and a #fragment at a heading of the target, as GitHub renders it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def markdown_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / f for f in out.stdout.split() if "node_modules" not in f]
    files += [p for p in (ROOT / "docs").rglob("*.md") if p not in files]  # new, not yet committed
    return sorted({*files, ROOT / "README.md"})


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", CODE.sub("", path.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for m in LINK.finditer(CODE.sub("", path.read_text())):
        target = m.group(1) or m.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http:, https:, mailto: ...
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(ROOT)}: ({target})"
        if not dest.exists():
            problems.append(f"{where} points nowhere")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            problems.append(f"{where}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    return problems


def test_readme_and_docs_are_covered():
    files = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/benchmarks.md", "docs/deploy.md"} <= files


def test_no_relative_link_points_nowhere():
    problems = [p for f in markdown_files() for p in broken_links(f)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_broken_link(tmp_path, monkeypatch):
    doc = ROOT / "docs" / "deploy.md"
    fake = tmp_path / "x.md"
    fake.write_text("[gone](missing/file.md) [ok](x.md) [bad anchor](x.md#nope) [web](https://example.org)\n# Title\n")
    monkeypatch.setattr("tests.unit.test_links.ROOT", tmp_path)
    assert broken_links(fake) == [
        "x.md: (missing/file.md) points nowhere",
        "x.md: (x.md#nope): no heading #nope in x.md",
    ]
    assert anchors(doc) >= {"sizing", "upgrades-and-drain", "scaling-on-requests-in-flight"}
