"""What does ``Model.fit(verbose=0)`` cost over the bare ``train_step`` loop?

Both train the CLI's MLP (784-256-128-10, ReLU, dropout 0.1, Adam) for one epoch on the first
``--samples`` MNIST images in batches of 128, interleaved in one process (fit, loop, loop, fit,
...) so machine load hits both alike; short epochs and many rounds keep a busy machine's swings
out of the ratio. Reported: the median over rounds of the per-round ratio fit / loop. fit's extra
work is the callbacks (divergence check, history), the per-batch accuracy count, validation of
its arguments and the epoch's logs. A second measurement isolates that extra work: the same
comparison on a net so small (Dense(8, 3)) that the step itself costs little, as microseconds of
fit's overhead per batch.

    OPENBLAS_THREAD_TIMEOUT=1 python benchmarks/bench_fit_overhead.py --rounds 30 --samples 6000
    python benchmarks/bench_fit_overhead.py --quick        # 3 rounds of 2,000 images
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")  # before numpy: idle BLAS threads sleep

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn import zoo  # noqa: E402


def build() -> tn.Model:
    tn.seed(0)
    return tn.Model(zoo.mlp((256, 128), 0.1), tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))


def epoch_fit(model: tn.Model, x: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)
    return time.perf_counter() - start


def epoch_loop(model: tn.Model, x: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    for xb, yb in tn.data.BatchIterator(128)(x, y):
        model.train_step(xb, yb)
    return time.perf_counter() - start


def per_batch_overhead(rounds: int = 15, batches: int = 400) -> tuple[float, float]:
    """Median microseconds per batch of (fit - train_step loop) and of the loop, on Dense(8, 3)."""
    x = np.random.default_rng(0).normal(size=(128 * batches, 8)).astype(np.float32)
    y = np.arange(len(x)) % 3

    def tiny() -> tn.Model:
        tn.seed(0)
        return tn.Model(tn.Net([tn.layers.Dense(8, 3)]), tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam())

    a, b = tiny(), tiny()
    diffs, loops = [], []
    for _ in range(rounds):
        f, loop = epoch_fit(a, x, y), epoch_loop(b, x, y)
        diffs.append((f - loop) / batches * 1e6)
        loops.append(loop / batches * 1e6)
    return statistics.median(diffs), statistics.median(loops)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--samples", type=int, default=6000, help="images per epoch (60000: all)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 2,000 images")
    args = parser.parse_args()
    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    rounds, n = (3, 2000) if args.quick else (args.rounds, args.samples)
    x, y = x[:n], y[:n]
    fit_model, loop_model = build(), build()
    epoch_fit(fit_model, x[:1024], y[:1024])  # warm up both (scratch arrays, BLAS threads)
    epoch_loop(loop_model, x[:1024], y[:1024])
    ratios, fits, loops = [], [], []
    for r in range(rounds):
        if r % 2 == 0:
            f, b = epoch_fit(fit_model, x, y), epoch_loop(loop_model, x, y)
        else:
            b, f = epoch_loop(loop_model, x, y), epoch_fit(fit_model, x, y)
        fits.append(f)
        loops.append(b)
        ratios.append(f / b)
        print(f"round {r + 1}: fit {f:.3f}s, train_step loop {b:.3f}s, ratio {f / b:.3f}", flush=True)
    print(f"{len(x):,} images/epoch; median fit {statistics.median(fits):.3f}s, loop {statistics.median(loops):.3f}s; "
          f"median ratio fit/loop {statistics.median(ratios):.3f} (load: {os.getloadavg()[0]:.1f})")
    extra, step = per_batch_overhead(rounds=3 if args.quick else 15)
    print(f"fit's own work per batch (Dense(8, 3), batch 128): {extra:.1f} us over a {step:.1f} us train_step")


if __name__ == "__main__":
    main()
