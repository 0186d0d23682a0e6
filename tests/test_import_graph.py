"""No import cycles: the static graph of module-level imports (class bodies, `if` / `try` blocks and
`if TYPE_CHECKING:` blocks included: a cycle of type names is a tangle too; function bodies left out:
they import late on purpose, e.g. to keep torch out of the CLI) over app/, compressors/, clients/,
bench/ and loadtests/ has no cycle. Read with `ast`, nothing is imported, so it needs no model and
sees every file as it is on disk."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "compressors", "bench", "loadtests")  # importable from the repository root
CLIENTS = ROOT / "clients"  # each folder in it is a distribution whose folder is its import root


def sources() -> dict[str, Path]:
    """Module name -> file, for every source file of the tree (tests left out)."""
    roots = [(ROOT / p, ROOT) for p in PACKAGES]
    roots += [(dist, dist) for dist in sorted(CLIENTS.iterdir()) if dist.is_dir()]
    out: dict[str, Path] = {}
    for folder, base in roots:
        for file in sorted(folder.rglob("*.py")):
            parts = file.relative_to(base).with_suffix("").parts
            if "tests" in parts or any(p.startswith(".") or p == "node_modules" for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = file
    return out


def executed_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements under `node` outside function bodies."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from executed_imports(child)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def edges(name: str, file: Path, known: set[str]) -> set[str]:
    """The modules of the tree that importing `name` imports (and so runs). Importing `a.b.c` runs the
    packages `a` and `a.b` first, except those that hold `name` itself (they are running already);
    `from .pkg import x` imports `pkg.x` when that is a module."""
    tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    running = {*_ancestors(name), name}
    targets: set[str] = set()
    for node in executed_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            module = ".".join([*base, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        targets.add(module)
        targets.update(f"{module}.{alias.name}" for alias in node.names)
    out: set[str] = set()
    for t in targets:
        for m in [*_ancestors(t), t]:
            if m in known and m not in running:
                out.add(m)
    return out


def graph() -> dict[str, set[str]]:
    files = sources()
    known = set(files)
    return {name: edges(name, file, known) for name, file in files.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan, iterative over the edges so deep chains do not recurse far
        nonlocal counter
        work = [(v, iter(sorted(g[v])))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1 or node in g[node]:
                        found.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_the_tree_has_no_import_cycle():
    g = graph()
    assert len(g) > 50 and "compressors.pipelines.stages" in g and "terse_client" in g
    assert cycles(g) == []


def test_the_graph_sees_relative_imports_and_cycles(tmp_path):
    """`from . import x` is an edge to the submodule x; a module's own packages are no edge; an import
    inside a function is none; a cycle through a TYPE_CHECKING import is found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import A\n")
    (pkg / "a.py").write_text("from . import b\nA = 1\n")
    (pkg / "b.py").write_text("from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("def f():\n    from .. import a\n")  # imports late: no edge
    files = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py"}
    files |= {"pkg.sub": pkg / "sub" / "__init__.py", "pkg.sub.c": pkg / "sub" / "c.py"}
    known = set(files)
    g = {name: edges(name, file, known) for name, file in files.items()}
    assert g == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub", "pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": set(),
    }
    assert cycles(g) == []
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import A\n")
    g["pkg.sub.c"] = edges("pkg.sub.c", pkg / "sub" / "c.py", known)
    assert g["pkg.sub.c"] == {"pkg.a"}
    assert cycles(g) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
