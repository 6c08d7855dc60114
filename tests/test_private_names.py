"""No module of tinynn reaches into another's private names.

A name starting with one underscore belongs to the module that defines it. The check, on the
AST of every file in tinynn/:

- ``from .x import _name`` (or ``x._name`` on an imported module) is refused, except a package's
  private module imported by its siblings (``from . import _im2col`` in ``layers/``);
- ``obj._name`` is allowed on ``self``/``cls``, and on any object in the module that defines
  ``_name`` itself (assigns ``self._name``, or defines a function, class or attribute of that
  name): a class's own module may touch the private parts of its instances (an optimizer
  building its shard). Anything else is another module's private name.

The allow-list below names the exceptions, each with its reason; keep it short.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tinynn"

ALLOWED: set[tuple[str, str]] = set()  # (module path relative to tinynn/, name)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def defined_here(tree: ast.AST) -> set[str]:
    """Private names this module defines: functions, classes, module or class attributes, self._x."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
    return {n for n in names if private(n)}


def violations(source: str, rel: str) -> list[str]:
    """The cross-module private accesses in ``source``, the file ``tinynn/<rel>``."""
    tree = ast.parse(source)
    own = defined_here(tree)
    folder = (PACKAGE / rel).parent
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for alias in node.names:
                sibling = node.level == 1 and not module and (folder / f"{alias.name}.py").is_file()
                if private(alias.name) and not sibling and (rel, alias.name) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno} imports {alias.name} from {'.' * node.level}{module}")
        elif isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if node.attr in own or (rel, node.attr) in ALLOWED:
                continue
            found.append(f"{rel}:{node.lineno} reads {ast.unparse(node)}")
    return found


def test_no_module_reaches_into_another_modules_private_names():
    found = [
        v
        for path in sorted(PACKAGE.rglob("*.py"))
        for v in violations(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).as_posix())
    ]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_the_check_catches_what_it_should():
    bad = "from .layers.base import _layer_class\n\ndef f(net, layer):\n    return net._layout, layer._x\n"
    assert len(violations(bad, "model.py")) == 3
    fine = "from . import _im2col\n\nclass A:\n    def f(self, other):\n        self._y = 1\n        return other._y\n"
    assert violations(fine, "layers/conv.py") == []
