"""The recurrent workload: one MNIST epoch of an LSTM reading each image as 28 rows of 28 pixels.

    python benchmarks/bench_lstm.py                    # 3 timed rounds after 1 warm-up (~3 min unloaded)
    python benchmarks/bench_lstm.py --rounds 5 --batches 100 --json out.json

tinynn runs as ``--variants`` (default ``plain,workers2``): "plain" is ``Net([...])`` as a user writes
it (the net decides its batch split itself), "workers2" / "workers1" force ``Net(workers=2)`` / ``1``.

Net: Reshape (28, 28) -> LSTM(28, 128) -> last state -> Dense(128, 10); softmax cross-entropy,
Adam(lr=1e-3), batch 128, float32, 2 threads; uint8 images scaled to [0, 1] per batch in both
frameworks. PyTorch runs the same net with ``nn.LSTM(28, 128, batch_first=True)``.

Every round runs, in rotating order in this one process: a tinynn epoch, a PyTorch epoch, and the
"GEMM floor" -- only the matrix products tinynn's LSTM and Dense make per step, same shapes and
layouts (28 forward products ``[x, h, 1, 1] @ W``, 27 ``dA @ w_h.T``, the one ``Z.T @ dA`` for every
weight gradient, ``dA @ w_x.T`` for the input gradient, and the Dense's three). The table gives
the median of the per-round ratios tinynn / PyTorch with their spread (min..max), since a
shared machine drifts between rounds but rarely within one.

``OPENBLAS_THREAD_TIMEOUT`` is set (before numpy loads) so idle OpenBLAS threads sleep soon
instead of spinning against PyTorch's threads. ``--batches N`` times the first N batches of each
epoch only (a quicker, noisier estimate); the table scales nothing, it reports what ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)

BATCH, STEPS, PIXELS, HIDDEN, CLASSES = 128, 28, 28, 128, 10


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
    p.add_argument("--variants", default="plain,workers2",
                   help="tinynn nets to time, comma-separated: plain (no workers argument), workers1, workers2")
    p.add_argument("--batches", type=int, default=None, help="time only the first N batches of each epoch")
    p.add_argument("--no-torch", action="store_true", help="do not import torch even if installed")
    p.add_argument("--json", metavar="PATH", help="also write all measurements as JSON")
    return p.parse_args()


def tinynn_workload(x, y, n_batches: int, workers: int | None) -> tuple[Callable[[], None], object]:
    """One epoch of ``zoo.lstm()``, a plain ``Net([...])`` (``workers=None``: the net decides its split, as for
    a user who passes no argument), and its net."""
    import tinynn as tn
    from tinynn import zoo

    tn.seed(0)
    net = zoo.lstm(HIDDEN, workers=workers)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))
    batches = tn.data.BatchIterator(BATCH)

    def epoch() -> None:
        for i, (xb, yb) in enumerate(batches(x, y)):
            if i == n_batches:
                break
            model.train_step(xb, yb)

    return epoch, net


def torch_workload(torch, x, y, n_batches: int) -> Callable[[], None]:
    torch.manual_seed(0)
    model = fair.torch_row_lstm(STEPS, PIXELS, HIDDEN, CLASSES)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return fair.torch_epoch(model, opt, torch.nn.CrossEntropyLoss(), x, y, BATCH, max_batches=n_batches)


def gemm_workload(n: int, n_batches: int) -> Callable[[], None]:
    """Only the matrix products of tinynn's LSTM + Dense step, same shapes and layouts."""
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    k, g = PIXELS + HIDDEN + 2, 4 * HIDDEN
    w = rng.standard_normal((k, g), dtype=f32)  # [w_x; w_h; b_x; b_h]
    dw = np.empty_like(w)
    wd, dwd = rng.standard_normal((HIDDEN, CLASSES), dtype=f32), np.empty((HIDDEN, CLASSES), f32)
    sizes = ([BATCH] * (n // BATCH) + ([n % BATCH] if n % BATCH else []))[:n_batches]

    def arrays(b: int):
        return (rng.standard_normal((STEPS, b, k), dtype=f32), np.empty((STEPS, b, g), f32),
                np.zeros((b, HIDDEN), f32), np.empty((STEPS * b, PIXELS), f32),
                rng.standard_normal((b, CLASSES), dtype=f32), rng.standard_normal((b, HIDDEN), dtype=f32))  # fmt: skip

    bufs = {b: arrays(b) for b in set(sizes)}

    def epoch() -> None:
        for b in sizes:
            z, a, dh, dx, logits, h = bufs[b]
            for s in range(STEPS):
                np.matmul(z[s], w, out=a[s])
            np.matmul(h, wd, out=logits)
            np.matmul(h.T, logits, out=dwd)
            np.matmul(logits, wd.T, out=dh)
            for s in range(STEPS - 1, 0, -1):
                np.matmul(a[s], w[PIXELS : PIXELS + HIDDEN].T, out=dh)
            np.matmul(z.reshape(STEPS * b, k).T, a.reshape(STEPS * b, g), out=dw)
            np.matmul(a.reshape(STEPS * b, g), w[:PIXELS].T, out=dx)

    return epoch


def main() -> None:
    args = parse_args()
    fair.setup(args.threads)  # thread counts and OPENBLAS_THREAD_TIMEOUT, before numpy loads OpenBLAS

    import numpy as np

    import tinynn as tn

    limiter, torch = fair.limit_threads(args.threads, use_torch=not args.no_torch)

    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    n_batches = args.batches if args.batches else -(-len(x) // BATCH)
    load = fair.load()
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else "") +
          f", threads={args.threads}, {n_batches} batches per epoch; uptime: {load}", file=sys.stderr)

    nets, workloads = {}, {}
    for name, workers in fair.parse_variants(args.variants).items():
        workloads[f"tinynn {name}"], nets[f"tinynn {name}"] = tinynn_workload(x, y, n_batches, workers)
    if torch is not None:
        workloads["torch"] = torch_workload(torch, x, y, n_batches)
    workloads["GEMM floor"] = gemm_workload(len(x), n_batches)
    t = fair.interleave(args.rounds, workloads, warmup=args.warmup)
    times = t.times
    load_after = fair.load()

    base = "torch" if torch is not None else "GEMM floor"
    result: dict = {"times": times, "batches": n_batches, "threads": args.threads, "cpu": fair.cpu_name(),
                    "workers": {k: net.workers for k, net in nets.items()},
                    "uptime_before": load, "uptime_after": load_after}
    for name in times:
        if name != base:
            result[f"{name} / {base}"] = t.ratios(name, base)
    print(f"\nrow-LSTM-{HIDDEN}, {n_batches} batches of {BATCH} per epoch (Adam, float32), {args.threads} threads, "
          f"CPU: {fair.cpu_name()}; medians of {args.rounds} interleaved rounds after {args.warmup} warm-up; "
          f"ratios: median (min-max) of per-round ratios.\nuptime before: {load}; after: {load_after}\n")
    print(fair.ratio_table(t, base, {k: net.workers for k, net in nets.items()}))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    del limiter


if __name__ == "__main__":
    main()
