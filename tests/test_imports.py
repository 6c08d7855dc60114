"""The package's imports point one way: no cycles, and every edge is in docs/architecture.md's table.

The table "Where each piece lives" has one row per module: its path (``tinynn/x.py``, or
``tinynn/pkg/`` for a package's ``__init__.py``) and, in the last column, the tinynn modules it
imports (``rng``, ``layers.base``, ``optim``; "nothing" for none). Adding a module means adding
its row; importing another module means naming it there. A package's ``__init__`` may import its
own submodules without listing them, and ``tinynn/__init__.py`` (the public API) is exempt.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinynn"
TABLE_DOC = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    """``tinynn/layers/base.py`` -> ``layers.base``; ``tinynn/layers/__init__.py`` -> ``layers``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "tinynn"  # the package itself: the public API


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tinynn modules ``path`` imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = [p for p in package if p and p != "tinynn"]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name == "tinynn" or a.name.startswith("tinynn.")]
            found.update(t.removeprefix("tinynn").lstrip(".") or "tinynn" for t in targets)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and (node.module == "tinynn" or node.module.startswith("tinynn.")):
                base = []
            else:
                continue
            mod = node.module.removeprefix("tinynn").lstrip(".") if not node.level else (node.module or "")
            target = ".".join([*base, *([mod] if mod else [])])
            for alias in node.names:  # `from . import rng` imports the module rng
                sub = f"{target}.{alias.name}" if target else alias.name
                found.add(sub if sub in modules else target or "tinynn")
    unknown = found - set(modules)
    assert not unknown, f"{path}: imports {unknown}, which are not tinynn modules"
    return found


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def table() -> dict[str, set[str]]:
    """Module -> the imports its row in docs/architecture.md lists."""
    rows = {}
    for line in TABLE_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`tinynn/([^`]*)`\s*\|.*\|([^|]*)\|\s*$", line)
        if not m:
            continue
        path = m.group(1)
        name = path.rstrip("/").removesuffix(".py").replace("/", ".")
        assert name not in rows, f"docs/architecture.md lists tinynn/{path} twice"
        rows[name] = set(re.findall(r"`([\w.]+)`", m.group(2)))
    return rows


def test_every_module_has_a_row_and_every_edge_is_listed() -> None:
    edges, rows = graph(), table()
    edges.pop("tinynn")  # the public API imports everything; exempt
    missing_rows = sorted(set(edges) - set(rows))
    assert not missing_rows, f"docs/architecture.md's module table has no row for {missing_rows}"
    stale = sorted(set(rows) - set(edges))
    assert not stale, f"docs/architecture.md's module table lists modules that do not exist: {stale}"
    for name, targets in edges.items():
        own = {t for t in targets if t.startswith(name + ".")}  # a package's __init__ importing its parts
        unlisted = sorted(targets - own - rows[name])
        assert not unlisted, f"tinynn/{name} imports {unlisted}, not listed in its row of docs/architecture.md"
        extra = sorted(rows[name] - targets)
        assert not extra, f"docs/architecture.md says tinynn/{name} imports {extra}, but it does not"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of modules, or None. Importing ``a.b`` runs package ``a`` first: an edge to it too."""
    full = {n: set(ts) | {t.rsplit(".", 1)[0] for t in ts if "." in t} for n, ts in edges.items()}
    for name in full:  # a module's own packages are not dependencies of it (they import it)
        full[name] = {t for t in full[name] if t != name and not name.startswith(t + ".")}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for t in sorted(full.get(n, ())):
            if state.get(t) == 1:
                return path[path.index(t) :] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        path.pop()
        state[n] = 2
        return None

    for n in sorted(full):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_can_fail() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b.x"}, "b": {"b.x"}, "b.x": {"a"}}) is not None  # via the package
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert imports_of("checkpoint", PACKAGE / "checkpoint.py", all_modules()) >= {"net", "rng", "optim"}
    assert "model" not in imports_of("checkpoint", PACKAGE / "checkpoint.py", all_modules())
