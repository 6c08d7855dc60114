"""Fair timing of tinynn against another framework in ONE process: shared by every benchmark here.

Two things bias an in-process comparison, and this module removes both:

1. **Spinning BLAS threads.** After each call, OpenBLAS's idle worker threads keep spinning for
   about 0.1 s (its default ``OPENBLAS_THREAD_TIMEOUT``) before they sleep. On a 2-core machine
   that steals a core from whatever runs next: the other framework's epoch started right after a
   numpy epoch runs slower. The timeout is read once, when numpy loads OpenBLAS, so ``setup()``
   must run BEFORE numpy is imported; it sets ``OPENBLAS_THREAD_TIMEOUT=1`` (the shortest:
   threads sleep almost at once) and the thread counts, and refuses if numpy is already loaded.
   ``settle`` adds a short pause before each timed run so any other pool (torch's OpenMP) is idle.
2. **Drift.** Shared and virtual machines change speed for minutes at a time. ``interleave`` runs
   one repetition of each workload in turn, round after round (rotating who goes first), and
   ``Timings.ratio`` takes the ratio *within* each round before the median: adjacent runs see
   the same machine state, so drift cancels. The spread (min..max over rounds) is reported with it.

Usage (in a benchmark script, before ``import numpy``)::

    import fair
    fair.setup(threads=2)
    ...
    t = fair.interleave(5, {"tinynn": tinynn_epoch, "torch": torch_epoch})
    print(t.ratio("tinynn", "torch"))       # e.g. "0.93 (0.88-0.97, 5 rounds)"
    t.median("tinynn"), t.times["torch"]   # seconds

It also holds what the scripts share besides: ``limit_threads`` (threadpoolctl's limits and torch's
threads), PyTorch's LeNet-5 and row-LSTM (``torch_lenet5``, ``torch_row_lstm``), ``torch_epoch``,
and the lines printed beside every table (``cpu_name``, ``load``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

THREAD_TIMEOUT = "1"  # OpenBLAS clamps it to its minimum (2^4 cycles): idle threads sleep at once


def setup(threads: int) -> None:
    """Pin BLAS/OpenMP thread counts and make OpenBLAS's idle threads sleep at once.

    Must run before numpy (or torch) is imported: both read these variables when they load.
    """
    if "numpy" in sys.modules and os.environ.get("OPENBLAS_THREAD_TIMEOUT") != THREAD_TIMEOUT:
        raise RuntimeError(
            "fair.setup() must run before numpy is imported (OPENBLAS_THREAD_TIMEOUT is read when "
            "numpy loads OpenBLAS); import and call it first"
        )
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = THREAD_TIMEOUT
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)  # also inherited by child processes (the RSS run)


def limit_threads(threads: int, use_torch: bool = True) -> tuple[object | None, object | None]:
    """After ``setup`` and ``import numpy``: hold the BLAS pools loaded so far to ``threads`` (through
    threadpoolctl, if installed), then import torch at ``threads`` threads unless ``use_torch`` is False.

    Returns ``(limiter, torch)``: threadpoolctl's limiter (None without threadpoolctl) and the torch
    module (None when not wanted or not installed).
    """
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(threads)
    except ImportError:
        limiter = None
    torch = None
    if use_torch:
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            torch = None
    return limiter, torch


def torch_lenet5():
    """``zoo.lenet5`` in PyTorch: conv 5x5 1->6 pad 2, max-pool 2, ReLU, conv 5x5 6->16, max-pool 2,
    ReLU, 400-120-84-10 (pool before ReLU, as tinynn), on flat (N, 784) images."""
    from torch import nn

    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def torch_row_lstm(steps: int = 28, pixels: int = 28, hidden: int = 128, classes: int = 10):
    """``zoo.lstm`` in PyTorch: each flat image read as ``steps`` rows of ``pixels`` by
    ``nn.LSTM(pixels, hidden, batch_first=True)``, its last state into ``nn.Linear(hidden, classes)``."""
    from torch import nn

    class RowLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm, self.head = nn.LSTM(pixels, hidden, batch_first=True), nn.Linear(hidden, classes)

        def forward(self, xb):
            seq, _ = self.lstm(xb.view(-1, steps, pixels))
            return self.head(seq[:, -1])

    return RowLSTM()


@dataclass(frozen=True)
class Ratio:
    """Median of per-round ratios a/b, with the smallest and largest round."""

    median: float
    low: float
    high: float
    rounds: int

    def __str__(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f}, {self.rounds} rounds)"


@dataclass
class Timings:
    """Seconds per run of each workload, one entry per round (warm-up rounds dropped)."""

    times: dict[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratios(self, a: str, b: str) -> list[float]:
        """``a``'s time over ``b``'s in each round; below 1 means ``a`` is faster."""
        return [x / y for x, y in zip(self.times[a], self.times[b], strict=True)]

    def ratio(self, a: str, b: str) -> Ratio:
        """The per-round ratios ``a`` / ``b``: their median and spread."""
        r = self.ratios(a, b)
        return Ratio(statistics.median(r), min(r), max(r), len(r))


def interleave(
    rounds: int,
    workloads: dict[str, Callable[[], object]],
    warmup: int = 1,
    settle: float = 0.05,
    log: Callable[[str], None] | None = None,
) -> Timings:
    """Run each workload once per round, in turn, ``warmup + rounds`` times; time every run.

    The order rotates each round so no workload always follows the same one. ``settle`` seconds of
    sleep precede every timed run (idle thread pools go to sleep). ``log`` gets one line per round
    (default: stderr).
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)
    names = list(workloads)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + rounds):
        last = {}
        for name in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(settle)
            start = time.perf_counter()
            workloads[name]()
            last[name] = time.perf_counter() - start
            if r >= warmup:
                times[name].append(last[name])
        done = ", ".join(f"{k} {last[k]:.3f}s" for k in names)
        log(f"  round {r + 1}/{warmup + rounds}{' (warm-up)' if r < warmup else ''}: {done}")
    return Timings(times)


VARIANTS = {"plain": None, "workers1": 1, "workers2": 2}
"""tinynn's variants by the name ``--variants`` takes: ``Net(workers=...)``; "plain" is a ``Net`` as a user
writes it (no ``workers``: the net's automatic choice)."""


def parse_variants(text: str) -> dict[str, int | None]:
    """``"plain,workers2"`` -> ``{"plain": None, "workers2": 2}``; a SystemExit naming a bad one."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)} (comma-separated), got {text!r}")
    return {v: VARIANTS[v] for v in names}


def ratio_table(t: Timings, base: str, decided: dict[str, int] | None = None) -> str:
    """One row per workload: median epoch, and its per-round ratio to ``base`` (median, min-max).

    ``decided``: the ``net.workers`` each tinynn workload ended up with, shown beside its name.
    """
    rows = [f"| workload | median epoch (s) | / {base}: median | min-max |", "|---|---:|---:|---|"]
    for name in t.times:
        shown = name + (f" (workers={decided[name]})" if decided and name in decided else "")
        if name == base:
            rows.append(f"| {shown} | {t.median(name):.2f} | 1 | |")
            continue
        r = t.ratio(name, base)
        rows.append(f"| {shown} | {t.median(name):.2f} | **{r.median:.2f}x** | {r.low:.2f}-{r.high:.2f} |")
    return "\n".join(rows)


def torch_epoch(model, opt, loss_fn, x, y, batch: int = 128, max_batches: int | None = None) -> Callable[[], None]:
    """One shuffled PyTorch epoch over uint8 images ``x`` and int64 labels ``y``, each batch scaled
    to [0, 1] when drawn (as tinynn's ``BatchIterator`` does); ``max_batches`` stops it early."""
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    n = len(xt)

    def epoch() -> None:
        perm = torch.randperm(n)
        for i, start in enumerate(range(0, n, batch)):
            if i == max_batches:
                break
            idx = perm[start : start + batch]
            xb, yb = xt[idx].float().div_(255), yt[idx]
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()

    return epoch


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def load() -> str:
    """The machine's load averages (``uptime``), to print beside every table."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
