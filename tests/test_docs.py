"""Every ```python block of README.md and docs/*.md runs.

One test per Markdown file; its blocks run in order in one shared namespace, so a later block
may use names an earlier one defined. A block preceded by the HTML comment ``<!-- skip-test -->``
is not run: keep that for the one or two blocks that need a long run (full MNIST training).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

import tinynn as tn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")], key=lambda p: p.relative_to(ROOT).as_posix())
MAX_SKIPPED_PER_FILE = 2

# A fenced block: an optional skip marker on the line(s) before, then ```python ... ```.
BLOCK = re.compile(
    r"(?P<skip><!--\s*skip-test\s*-->\s*\n)?^(?P<fence>```|~~~)python[ \t]*\n(?P<code>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, code, skipped) for each ```python block of a Markdown text."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("skip") is not None)
        for m in BLOCK.finditer(text)
    ]


def test_block_extraction() -> None:
    text = "intro\n```python\na = 1\n```\n<!-- skip-test -->\n```python\nslow()\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n", False), (7, "slow()\n", True)]


@pytest.mark.parametrize("path", [p for p in DOC_FILES if p.exists()], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_markdown_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    skipped = sum(skip for _, _, skip in blocks)
    assert skipped <= MAX_SKIPPED_PER_FILE, f"{path.name}: {skipped} blocks marked skip-test (at most 2)"
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    tn.seed(0)
    namespace: dict = {"__name__": "__docs__"}
    rel = path.relative_to(ROOT).as_posix()
    for line, code, skip in blocks:
        if skip:
            continue
        # Pad with newlines so tracebacks point at the line in the Markdown file.
        compiled = compile("\n" * (line - 1) + code, f"{rel}", "exec")
        try:
            exec(compiled, namespace)
        except Exception as err:
            raise AssertionError(f"{rel}: the python block at line {line} failed: {err!r}") from err
