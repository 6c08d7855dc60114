"""Time one optimizer step on float32 vectors: tinynn.optim vs torch.optim (if installed).

    python benchmarks/bench_optim.py --threads 2 --repeats 200

Sizes: 235,146 params (the 784-256-128-10 MLP) and 1M params. Prints a markdown table of
median step times; the ratio is tinynn / torch (below 1 means tinynn is faster). torch is
timed with its default implementation and with foreach=True; the ratio uses the faster one.

numpy's elementwise ufuncs run on one thread, so with --threads 2 on an idle machine torch
has twice the cores; --threads 1 compares like with like.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from tinynn import optim

SIZES = {"MLP 235,146": 235_146, "1M": 1_000_000}
TINYNN = {
    "SGD": lambda: optim.SGD(lr=1e-3),
    "SGDm": lambda: optim.SGDm(lr=1e-3, momentum=0.9),
    "Adagrad": lambda: optim.Adagrad(lr=1e-3),
    "RMSProp": lambda: optim.RMSProp(lr=1e-3),
    "Adam": lambda: optim.Adam(lr=1e-3),
    "AdamW": lambda: optim.AdamW(lr=1e-3),
}
TORCH = {
    "SGD": ("SGD", {"lr": 1e-3}),
    "SGDm": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "Adagrad": ("Adagrad", {"lr": 1e-3}),
    "RMSProp": ("RMSprop", {"lr": 1e-3}),
    "Adam": ("Adam", {"lr": 1e-3}),
    "AdamW": ("AdamW", {"lr": 1e-3}),
}


def median_time(step: Callable[[], None], repeats: int, warmup: int = 20, rounds: int = 3) -> float:
    """Median step time; the best of a few rounds, so a busy machine hurts less."""
    for _ in range(warmup):
        step()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return min(medians)


def bench_tinynn(name: str, n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    params = rng.standard_normal(n, dtype=np.float32)
    grads = rng.standard_normal(n, dtype=np.float32)
    opt = TINYNN[name]()
    return median_time(lambda: opt.step(params, grads), repeats)


def bench_torch(torch, name: str, n: int, repeats: int, foreach: bool | None) -> float:
    cls_name, kwargs = TORCH[name]
    p = torch.randn(n, dtype=torch.float32, requires_grad=True)
    p.grad = torch.randn(n, dtype=torch.float32)
    opt = getattr(torch.optim, cls_name)([p], **kwargs, foreach=foreach)
    with torch.no_grad():
        return median_time(opt.step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and BLAS (default 2)")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per measurement (default 200)")
    args = parser.parse_args()

    try:  # numpy's elementwise ufuncs are single-threaded; this only pins BLAS for fairness
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    print(
        f"threads={args.threads} repeats={args.repeats} numpy {np.__version__}"
        + (f" torch {torch.__version__}" if torch else " (torch not installed)")
        + f" cpus={os.cpu_count()}"
    )
    print()
    print("| optimizer | size | tinynn (ms) | torch default (ms) | torch foreach (ms) | tinynn / torch |")
    print("|---|---|---:|---:|---:|---:|")
    for name in TINYNN:
        for size_name, n in SIZES.items():
            ours = bench_tinynn(name, n, args.repeats)
            if torch is None:
                print(f"| {name} | {size_name} | {ours * 1e3:.3f} | - | - | - |")
                continue
            default = bench_torch(torch, name, n, args.repeats, None)
            foreach = bench_torch(torch, name, n, args.repeats, True)
            ratio = ours / min(default, foreach)
            print(
                f"| {name} | {size_name} | {ours * 1e3:.3f} | {default * 1e3:.3f} | {foreach * 1e3:.3f} | {ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
