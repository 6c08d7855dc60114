"""Rewrite the checked ``<!-- output -->`` blocks of Markdown pages with what their code prints now.

    python tools/refresh_doc_outputs.py docs/architecture.md [docs/layers.md ...]

Runs each page's ```python blocks the way tests/test_docs.py does (in order, one namespace, seed 0,
in a temporary folder) and replaces every checked output that no longer matches. A shown output
that elides lines with ``...`` is left alone and reported: refresh it by hand. Read the diff before
committing: a changed number is a changed claim, and the prose around it may need changing too.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_docs import OUTPUT, output_blocks, outputs_match, python_blocks  # noqa: E402

import tinynn as tn  # noqa: E402


def refresh(path: Path) -> int:
    """Rewrite ``path``'s stale outputs; returns how many were rewritten."""
    text = path.read_text(encoding="utf-8")
    blocks, outputs = python_blocks(text), output_blocks(text)
    printed: dict[int, str] = {}
    namespace: dict = {"__name__": "__docs__"}
    tn.seed(0)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            for index, (line, code, skip) in enumerate(blocks):
                if skip:
                    continue
                stdout = io.StringIO()
                with contextlib.redirect_stdout(stdout):
                    exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
                printed[index] = stdout.getvalue()
        finally:
            os.chdir(cwd)
    stale = {line: printed[owner] for line, owner, shown, opts in outputs
             if owner in printed and not outputs_match(shown, printed[owner], **opts)}
    pieces, last, changed = [], 0, 0
    for m in OUTPUT.finditer(text):
        line = text.count("\n", 0, m.start("text")) + 1
        if line not in stale:
            continue
        if any(s.strip() == "..." for s in m.group("text").splitlines()):
            print(f"{path}:{line}: stale, but it elides lines with '...': refresh it by hand")
            continue
        pieces += [text[last:m.start("text")], stale[line]]
        last = m.end("text")
        changed += 1
        print(f"{path}:{line}: rewritten")
    path.write_text("".join(pieces) + text[last:], encoding="utf-8")
    return changed


if __name__ == "__main__":
    for name in sys.argv[1:]:
        refresh(Path(name))
