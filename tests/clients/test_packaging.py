"""Each client package declares every distribution its code imports (a missing one installs fine here,
where the dev virtualenv has everything, and fails on a user's machine), and the LlamaIndex package
carries LlamaHub's metadata."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

CLIENTS = Path(__file__).resolve().parents[2] / "clients"
PACKAGES = {"python": "terse_client", "llama-index": "llama_index/postprocessor/terse", "langchain": "langchain_terse"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_distributions(source: Path, own: str) -> set[str]:
    """Distributions providing the absolute imports of every module under `source`."""
    modules = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    providers = md.packages_distributions()
    found = set()
    for module in modules:
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "__future__" or module.startswith(own):
            continue
        if module.startswith("llama_index."):  # a namespace package: the distribution is per subpackage
            top = ".".join(module.split(".")[:2])
            found.add("llama-index-core" if top == "llama_index.core" else top)
            continue
        found |= {normalise(d) for d in providers.get(top, [top])}
    return found


@pytest.mark.parametrize("folder", PACKAGES)
def test_every_import_is_a_declared_dependency(folder: str) -> None:
    project = tomllib.loads((CLIENTS / folder / "pyproject.toml").read_text())["project"]
    declared = {normalise(re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    own = PACKAGES[folder].replace("/", ".")
    used = imported_distributions(CLIENTS / folder / PACKAGES[folder], own)
    assert used, folder
    assert not used - declared, f"{project['name']} imports {sorted(used - declared)} without declaring them"


def test_llamahub_metadata() -> None:
    tool = tomllib.loads((CLIENTS / "llama-index" / "pyproject.toml").read_text())["tool"]["llamahub"]
    assert tool["import_path"] == "llama_index.postprocessor.terse"
    assert "TerseNodePostprocessor" in tool["class_authors"]
