"""Every module and function of tinynn/ is short enough to read in one sitting, or says why not.

The rule, checked on the AST of every file in tinynn/:

- a module has at most ``MODULE_LINES`` lines (all lines, comments and docstrings included);
- a function (or method) has at most ``FUNCTION_LINES`` lines, counted from its ``def`` to its
  last line, without its docstring (the documentation of an argument list is not complexity);
  a nested function counts within its parent too.

A longer one carries its reason where a reader meets it: a line of the module docstring, or of the
function docstring, that starts with ``Long because:`` and says what splitting would cost. The
reason is for a module or function that reads best whole; anything else is split.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tinynn"
MODULE_LINES = 400
FUNCTION_LINES = 60
MARKER = "Long because:"


def has_reason(node: ast.AST) -> bool:
    doc = ast.get_docstring(node) or ""
    return any(line.strip().startswith(MARKER) and len(line.strip()) > len(MARKER) + 10 for line in doc.splitlines())


def function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def oversized(path: Path, source: str) -> list[str]:
    """The module and functions of ``source`` over the limits without a written reason."""
    tree = ast.parse(source)
    found = []
    n = len(source.splitlines())
    if n > MODULE_LINES and not has_reason(tree):
        found.append(f"{path}: {n} lines (> {MODULE_LINES})")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = function_lines(node)
            if lines > FUNCTION_LINES and not has_reason(node):
                found.append(f"{path}:{node.lineno} {node.name}: {lines} lines (> {FUNCTION_LINES})")
    return found


def test_no_module_or_function_is_long_without_a_reason() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        found += oversized(path.relative_to(PACKAGE.parent), path.read_text(encoding="utf-8"))
    assert not found, "split these, or write 'Long because: ...' in their docstring:\n" + "\n".join(found)


def test_the_check_can_fail() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    long_function = f"def f():\n{body}\n"
    assert oversized(Path("m.py"), long_function) == [f"m.py:1 f: {FUNCTION_LINES + 1} lines (> {FUNCTION_LINES})"]
    documented = f'def f():\n    """Long because: the {FUNCTION_LINES} steps read best in order."""\n{body}\n'
    assert oversized(Path("m.py"), documented) == []
    docstring_only = 'def f():\n    """' + "\n" * FUNCTION_LINES + '"""\n    return 1\n'
    assert oversized(Path("m.py"), docstring_only) == []  # the docstring does not count
    long_module = "\n".join(f"x{i} = {i}" for i in range(MODULE_LINES + 1))
    assert oversized(Path("m.py"), long_module) == [f"m.py: {MODULE_LINES + 1} lines (> {MODULE_LINES})"]
    assert oversized(Path("m.py"), '"""Long because: it is a table of constants."""\n' + long_module) == []
    assert oversized(Path("m.py"), '"""Long because: x"""\n' + long_module) != []  # a reason says something
