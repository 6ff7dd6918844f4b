"""The package's structure: no import cycle, no private import across modules, one registry.

These tests read the source with :mod:`ast` (nothing is imported), so they also hold for code
paths that the other tests do not execute.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "ehrcausal"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str], int]]:
    """(target module, imported names, line) for every import of a package module in ``path``.

    Imports anywhere in the file count (also those inside functions): a deferred import still
    ties the two modules together. ``from pkg import sub`` counts as an import of ``pkg.sub``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target not in known:
                continue
            names = [a.name for a in node.names]
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            out.append((target, [n for n in names if f"{target}.{n}" not in known], node.lineno))
            out += [(s, [], node.lineno) for s in subs]
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets = {t for t, _, _ in _imports(name, path, known)} - {name}
        # a module imports its package's __init__ implicitly; that edge is no cycle of design
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles among package modules: " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_runtime_and_validation_are_leaves():
    graph = _graph()
    for leaf in ("ehrcausal.runtime", "ehrcausal.validation"):
        assert graph[leaf] <= {"ehrcausal"}, f"{leaf} imports {sorted(graph[leaf])}"


def test_no_private_name_is_imported_across_modules():
    mods = _modules()
    known = set(mods)
    bad = []
    for name, path in mods.items():
        for target, names, line in _imports(name, path, known):
            if target == name or target.rpartition(".")[2].startswith("_"):
                continue  # an underscored module is where shared private code lives
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}.{n}")
    assert not bad, "\n".join(bad)


def _registered_names() -> set[str]:
    from ehrcausal.learners import available

    return set(available())


def _name_lists(tree: ast.AST, names: set[str]) -> list[tuple[int, list[str]]]:
    """Literal lists, tuples, sets and dict keys of three or more registered learner names.

    A pair (one learner against another in a paired comparison) is an experiment's design;
    a group of three or more is a family, which only the registry may define.
    """
    found = []
    for node in ast.walk(tree):
        elts = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and elts and len(elts) >= 3:
            values = [e.value for e in elts if isinstance(e, ast.Constant)]
            if len(values) == len(elts) and all(v in names for v in values):
                found.append((node.lineno, values))
    return found


def test_name_list_finder_sees_lists_and_dict_keys_but_not_pairs():
    names = {"a", "b", "c"}
    tree = ast.parse('X = ("a", "b", "c")\nY = {"a": 1, "b": 2, "c": 3}\nZ = ["a", "b"]\n')
    assert [line for line, _ in _name_lists(tree, names)] == [1, 2]


def test_no_learner_name_list_outside_the_registry():
    """Which learners belong together is the registry's knowledge, not a literal in a module."""
    names = _registered_names()
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, values in _name_lists(ast.parse(path.read_text()), names):
            bad.append(f"{path.relative_to(ROOT)}:{line} {values}")
    assert not bad, "learner-name lists outside the registry:\n" + "\n".join(bad)


#: documents a reader may be sent to: the design page, book pages, data and contribution guides
_DOC_REF = re.compile(r"(?<![\w/.])(docs/[\w./-]+\.md|book/[\w-]+\.md|data/README\.md|"
                      r"CONTRIBUTING\.md|STUDY\.md)")


@pytest.mark.parametrize("folder", ["src", "notebooks", "benchmarks"])
def test_every_document_the_code_cites_exists(folder):
    missing = []
    for path in sorted((ROOT / folder).rglob("*")):
        if path.suffix not in (".py", ".ipynb") or "__pycache__" in path.parts:
            continue
        for ref in set(_DOC_REF.findall(path.read_text())):
            if not (ROOT / ref).exists():
                missing.append(f"{path.relative_to(ROOT)} cites {ref}")
    assert not missing, "\n".join(missing)
