"""The convolution workload: one MNIST epoch of LeNet-5 (``zoo.lenet5``), tinynn vs PyTorch 2.x.

    python benchmarks/bench_cnn.py                       # table on stdout, progress on stderr
    python benchmarks/bench_cnn.py --epochs 3 --limit 12800 --no-rss   # a quick look

tinynn runs as ``--variants`` (default ``plain,workers2``): "plain" is ``Net([...])`` as a user writes
it (the net decides its batch split itself), "workers2" / "workers1" force ``Net(workers=2)`` / ``1``;
a name ending in "-oneproduct" (``workers2-oneproduct``) runs each convolution product as one call
instead of in column blocks (``Conv2D``'s ``BLOCK_COLUMNS``), to see what the blocks buy in the same run.
All variants, PyTorch and the GEMM floor run interleaved in the same rounds.

One epoch = one shuffled pass over the 60,000 training images in batches of 128, Adam(lr=1e-3),
float32, softmax cross-entropy; uint8 images scaled per batch in both frameworks. The nets are
the same function: conv 5x5 1->6 pad 2, max-pool 2, ReLU, conv 5x5 6->16, max-pool 2, ReLU,
400-120-84-10 (pool before ReLU in both).

Workloads run ONE epoch each in turn, round after round, in this one process, with
``OPENBLAS_THREAD_TIMEOUT=1`` set before numpy is imported (OpenBLAS's idle workers otherwise
spin ~0.1 s after each call and slow whatever runs next, here torch). Reported: median epoch
times, and the median (with min-max) of the per-round ratios tinynn / PyTorch. The "GEMM floor"
is the step's matrix products alone, with tinynn's shapes and layouts (conv 1: forward and
weight gradient; conv 2: forward, weight and input gradients; dense: 3 forward, 3 weight and 3
input gradients). Last, the peak RSS of ``tinynn train --model cnn --epochs 1``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
    p.add_argument("--variants", default="plain,workers2",
                   help="tinynn nets to time, comma-separated: plain (no workers argument), workers1, workers2")
    p.add_argument("--limit", type=int, default=60_000, help="training images per 'epoch' (default all)")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS run of `tinynn train --model cnn`")
    return p.parse_args()


def tinynn_workload(x, y, workers: int | None, blocks: bool = True) -> tuple[Callable[[], None], object]:
    """One epoch of ``zoo.lenet5()``, a plain ``Net([...])`` (``workers=None``: the net decides its split, as
    for a user who passes no argument), and its net; ``blocks=False``: every convolution product in one call
    during this workload's epochs."""
    import tinynn as tn
    from tinynn import zoo
    from tinynn.layers import conv

    tn.seed(0)
    net = zoo.lenet5(workers=workers)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))
    batches = tn.data.BatchIterator(128)

    def epoch() -> None:
        saved = conv.BLOCK_COLUMNS
        if not blocks:
            conv.BLOCK_COLUMNS = 2**62
        try:
            for xb, yb in batches(x, y):
                model.train_step(xb, yb)
        finally:
            conv.BLOCK_COLUMNS = saved

    return epoch, net


def torch_workload(torch, x, y) -> Callable[[], None]:
    model = fair.torch_lenet5()
    return fair.torch_epoch(model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss(), x, y)


def gemm_workload(n: int, batch: int = 128) -> Callable[[], None]:
    """The matrix products of each LeNet-5 step alone, as tinynn lays them out."""
    import numpy as np

    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def products(b: int) -> list[tuple]:
        m1, m2 = 28 * 28 * b, 10 * 10 * b  # output pixels x batch of the two convs
        return [
            (a(6, 25), a(25, m1), a(6, m1)), (a(25, m1), a(m1, 6), a(25, 6)),  # conv 1: y, dw (as cols @ g.T)
            (a(16, 150), a(150, m2), a(16, m2)), (a(150, m2), a(m2, 16), a(150, 16)),  # conv 2: y, dw
            (a(150, 16), a(16, m2), a(150, m2)),  # conv 2: dcols = w.T @ g
            *[(a(b, i), a(i, o), a(b, o)) for i, o in ((400, 120), (120, 84), (84, 10))],  # dense y
            *[(a(i, b), a(b, o), a(i, o)) for i, o in ((400, 120), (120, 84), (84, 10))],  # dense dw
            *[(a(b, o), a(o, i), a(b, i)) for i, o in ((400, 120), (120, 84), (84, 10))],  # dense dx
        ]

    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    mats = {b: products(b) for b in set(sizes)}

    def epoch() -> None:
        for b in sizes:
            for lhs, rhs, out in mats[b]:
                np.matmul(lhs, rhs, out=out)

    return epoch


def peak_rss() -> str:
    """Peak RSS (MiB) of `python -m tinynn train --model cnn --epochs 1`, through a small probe process."""
    import bench_mnist  # same probe as the MLP benchmark

    res = bench_mnist.peak_rss_mib("--model cnn --epochs 1 --quiet")
    if "peak_rss_mib" not in res:
        return f"| peak RSS, `{res['cmd']}` | {res.get('error')} | | |"
    return (f"| peak RSS, `{res['cmd']}` (MiB); {res['seconds']:.0f} s, {res['last_line']} | "
            f"{res['peak_rss_mib']:.0f} | | |")


def main() -> None:
    args = parse_args()
    fair.setup(args.threads)  # thread counts and OPENBLAS_THREAD_TIMEOUT, before numpy loads OpenBLAS

    import numpy as np

    import tinynn as tn
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        sys.exit("bench_cnn.py compares with PyTorch: install torch (CPU) first")

    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    x, y = x[: args.limit], y[: args.limit]
    tn.seed(0)
    torch.manual_seed(0)
    nets, workloads = {}, {}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        (workers,) = fair.parse_variants(name.removesuffix("-oneproduct")).values()
        blocks = not name.endswith("-oneproduct")
        workloads[f"tinynn {name}"], nets[f"tinynn {name}"] = tinynn_workload(x, y, workers, blocks)
    workloads["torch"], workloads["GEMM floor"] = torch_workload(torch, x, y), gemm_workload(len(x))
    print(f"LeNet-5, {len(x):,} images per epoch, threads={args.threads}, before: {fair.load()}", file=sys.stderr)
    t = fair.interleave(args.epochs, workloads, warmup=args.warmup)

    print(f"\nLeNet-5 epoch ({len(x):,} images, batch 128, Adam, float32), threads={args.threads}, "
          f"torch {torch.__version__}, numpy {np.__version__}, CPU: {fair.cpu_name()}; medians of {args.epochs} "
          f"interleaved rounds after {args.warmup} warm-up; ratios: median (min-max) of per-round ratios.\n"
          f"uptime after: {fair.load()}\n")
    print(fair.ratio_table(t, "torch", {k: net.workers for k, net in nets.items()}))
    if not args.no_rss:
        print("peak RSS of `tinynn train --model cnn --epochs 1` ...", file=sys.stderr)
        print("\n| measurement | MiB | | |\n|---|---:|---|---|\n" + peak_rss())


if __name__ == "__main__":
    main()
