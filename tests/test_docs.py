"""Every ```python block of README.md and docs/*.md runs, and printed outputs shown in the docs
are what the code prints.

One test per Markdown file; its blocks run in order in one shared namespace, so a later block
may use names an earlier one defined. A block preceded by the HTML comment ``<!-- skip-test -->``
is not run: keep that for the one or two blocks that need a long run (full MNIST training).

Checked outputs (opt-in). A ```text block preceded by the comment ``<!-- output -->`` shows what
the most recent ```python block above it prints; prose may sit between them. The test captures
that block's stdout and compares the two:

    ```python
    print(report)
    ```

    The report names what failed:

    <!-- output -->
    ```text
    input                rel. error 7.51e-01  FAIL
    ```

- Text between numbers must match exactly, except for spacing: runs of spaces count as one, spaces
  next to a number are ignored (numpy pads arrays), and so are blank lines at the ends.
- Numbers match within a relative tolerance (default ``rtol=1e-2``, enough to absorb a BLAS or
  platform difference in the last printed digit, not a stale value) or an absolute one (default
  ``atol=0``). Set them per block: ``<!-- output rtol=0.1 atol=1e-9 -->``; ``rtol=0`` makes the
  comparison exact.
- A line holding only ``...`` in the shown output stands for any number of printed lines (e.g.
  the middle epochs of a training log).
- A quantity that no tolerance holds on every machine (a chaotic one, e.g. the share of dead units
  after training at a learning rate too high, which changes with the CPU, the BLAS and the thread
  count) is not compared: ``<!-- output loose=2 -->`` checks only the words of the shown block's
  line 2 (counted from 1; ``loose=2,3`` for several), not its numbers. Check what the page claims
  about it in the code block instead (an ``assert`` that holds on any machine), and say in the prose
  that the number varies.

A ```text block without the marker is not checked (use it for shell output, logs of long runs).
"""

from __future__ import annotations

import contextlib
import io
import re
from functools import cache
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
# A checked output: the marker (with optional tolerances), then a ```text block.
OUTPUT = re.compile(
    r"^<!--\s*output(?P<opts>[^>]*?)\s*-->[ \t]*\n\s*^(?P<fence>```|~~~)text[ \t]*\n(?P<text>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b")


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, code, skipped) for each ```python block of a Markdown text."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("skip") is not None)
        for m in BLOCK.finditer(text)
    ]


def output_blocks(text: str) -> list[tuple[int, int, str, dict[str, float]]]:
    """(line, index of the python block it belongs to, shown text, tolerances) per checked output."""
    starts = [m.start() for m in BLOCK.finditer(text)]
    found = []
    for m in OUTPUT.finditer(text):
        line = text.count("\n", 0, m.start("text")) + 1
        owner = sum(start < m.start() for start in starts) - 1
        opts: dict = {"rtol": 1e-2, "atol": 0.0, "loose": ()}
        for key, value in re.findall(r"(\w+)\s*=\s*(\S+)", m.group("opts")):
            if key not in opts:
                raise ValueError(f"line {line}: unknown option {key!r} in the output marker (rtol, atol, loose)")
            opts[key] = tuple(int(n) for n in value.split(",")) if key == "loose" else float(value)
        if owner < 0:
            raise ValueError(f"line {line}: an output block with no ```python block above it")
        found.append((line, owner, m.group("text"), opts))
    return found


def _pieces(line: str) -> tuple[list[str], list[float]]:
    """A line split into its numbers and the text between them (inner spaces collapsed, outer ones dropped)."""
    texts = [re.sub(r"\s+", " ", t).strip() for t in NUMBER.split(line.strip())]
    return texts, [float(n) for n in NUMBER.findall(line.strip())]


def _line_matches(shown: str, printed: str, rtol: float, atol: float, loose: bool = False) -> bool:
    (t1, n1), (t2, n2) = _pieces(shown), _pieces(printed)
    if t1 != t2 or len(n1) != len(n2):
        return False
    return loose or all(
        a == b or abs(a - b) <= atol + rtol * max(abs(a), abs(b)) for a, b in zip(n1, n2, strict=True)
    )


def outputs_match(shown: str, printed: str, rtol: float = 1e-2, atol: float = 0.0, loose: tuple = ()) -> bool:
    """Whether ``printed`` fits ``shown`` under the rules in this module's docstring."""
    want = shown.strip("\n").splitlines()
    got = printed.strip("\n").splitlines()
    want = [w.rstrip() for w in want]

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return (j < len(got) and _line_matches(want[i], got[j], rtol, atol, loose=i + 1 in loose)
                and match(i + 1, j + 1))

    return match(0, 0)


def test_block_extraction() -> None:
    text = "intro\n```python\na = 1\n```\n<!-- skip-test -->\n```python\nslow()\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n", False), (7, "slow()\n", True)]


def test_output_extraction() -> None:
    text = (
        "```python\nprint(1)\n```\n```text\nnot checked\n```\n```python\nprint(2.0)\n```\nprose\n\n"
        "<!-- output rtol=0 atol=0.5 -->\n```text\n2.0\n```\n"
    )
    assert output_blocks(text) == [(14, 1, "2.0\n", {"rtol": 0.0, "atol": 0.5, "loose": ()})]
    loose = "```python\nx\n```\n<!-- output loose=2,3 -->\n```text\n1\n```\n"
    assert output_blocks(loose)[0][3] == {"rtol": 1e-2, "atol": 0.0, "loose": (2, 3)}
    with pytest.raises(ValueError, match="unknown option"):
        output_blocks("```python\nx\n```\n<!-- output tol=1 -->\n```text\n1\n```\n")
    with pytest.raises(ValueError, match="no ```python block"):
        output_blocks("<!-- output -->\n```text\n1\n```\n")


def test_output_comparison() -> None:
    assert outputs_match("rel. error 7.51e-01  FAIL\n", "rel. error   7.51e-01 FAIL  \n\n")
    assert outputs_match("loss 0.1234", "loss 0.1236")  # within rtol=1e-2
    assert not outputs_match("rel. error 4.80e-01  FAIL", "rel. error 7.51e-01  FAIL")  # stale
    assert not outputs_match("loss 0.1234", "loss 0.1236", rtol=0)
    assert not outputs_match("PASS 1", "FAIL 1")  # the words must match
    assert not outputs_match("a 1 2", "a 1")  # so must the count of numbers
    assert outputs_match("[0. 0.66666667 2.]", "[0.         0.66666667 2.        ]")
    assert outputs_match("1e-11", "3e-12", atol=1e-10) and not outputs_match("1e-11", "3e-12")
    log = "epoch 1 loss 2.3\nepoch 2 loss 1.1\nepoch 3 loss 0.5\ndone"
    assert outputs_match("epoch 1 loss 2.3\n...\ndone", log)
    assert outputs_match("...\ndone", log) and not outputs_match("epoch 1 loss 2.3\n...\nfinished", log)
    assert not outputs_match("epoch 1 loss 2.3", log)  # unshown lines need a "..."
    shown = "lr 0.001: ['2%', '5%']\nlr 0.1: ['88%', '22%']"
    assert outputs_match(shown, "lr 0.001: ['2%', '5%']\nlr 0.1: ['88%', '14%']", loose=(2,))  # numbers free
    assert not outputs_match(shown, "lr 0.001: ['2%', '9%']\nlr 0.1: ['88%', '14%']", loose=(2,))  # not line 1
    assert not outputs_match(shown, "lr 0.001: ['2%', '5%']\nlr 0.1: dead ['88%', '14%']", loose=(2,))  # words
    assert not outputs_match(shown, "lr 0.001: ['2%', '5%']\nlr 0.1: ['88%']", loose=(2,))  # count


@pytest.fixture
def own_registries():
    """Layers, losses, optimizers and schedulers a page registers (docs/custom.md's ELU...) are forgotten after it, so
    they reach neither the next page nor the tests that check every registered layer."""
    registries = (tn.layers.LAYERS, tn.losses.LOSSES, tn.optim.OPTIMIZERS, tn.optim.lr_scheduler.SCHEDULERS)
    saved = [dict(r) for r in registries]
    yield
    for registry, before in zip(registries, saved, strict=True):
        registry.clear()
        registry.update(before)


@pytest.mark.parametrize("path", [p for p in DOC_FILES if p.exists()], ids=lambda p: p.relative_to(ROOT).as_posix())
@pytest.mark.usefixtures("own_registries")
def test_markdown_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    outputs = output_blocks(text)
    skipped = sum(skip for _, _, skip in blocks)
    assert skipped <= MAX_SKIPPED_PER_FILE, f"{path.name}: {skipped} blocks marked skip-test (at most 2)"
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    tn.seed(0)
    namespace: dict = {"__name__": "__docs__"}
    rel = path.relative_to(ROOT).as_posix()
    printed: dict[int, str] = {}
    for index, (line, code, skip) in enumerate(blocks):
        if skip:
            continue
        # Pad with newlines so tracebacks point at the line in the Markdown file.
        compiled = compile("\n" * (line - 1) + code, f"{rel}", "exec")
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                exec(compiled, namespace)
        except Exception as err:
            raise AssertionError(f"{rel}: the python block at line {line} failed: {err!r}") from err
        printed[index] = stdout.getvalue()
    for line, owner, shown, opts in outputs:
        assert owner in printed, f"{rel}: the output at line {line} belongs to a block marked skip-test"
        assert outputs_match(shown, printed[owner], **opts), (
            f"{rel}: the output shown at line {line} is not what the block at line {blocks[owner][0]} prints "
            f"(rtol={opts['rtol']}, atol={opts['atol']}).\n--- shown ---\n{shown}--- printed ---\n{printed[owner]}"
        )


LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", [p for p in DOC_FILES if p.exists()], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path: Path) -> None:
    """Every relative link of a page (another page, a figure, a file of the repo) exists."""
    missing = [t for t in LINK.findall(path.read_text(encoding="utf-8")) if not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"
