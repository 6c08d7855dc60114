"""Time one optimizer step on float32 vectors: tinynn.optim vs torch.optim (if installed).

    python benchmarks/bench_optim.py --threads 2 --repeats 200

Sizes: 235,146 params (the 784-256-128-10 MLP) and 1M params. Prints a markdown table of
median step times; the ratio is tinynn / torch (below 1 means tinynn is faster), the median of
per-round ratios with its spread, against torch's default implementation (per-tensor for-loop on
CPU) and against ``foreach=True``. Each round times ``--repeats`` steps of every implementation in
turn (``fair.interleave``); OpenBLAS's idle threads sleep at once (``fair.setup``).

tinynn is timed as ``Optimizer.step`` alone (one thread: numpy ufuncs are single-threaded) and, with
``--workers 2``, as the sharded step a ``Net(workers=2)`` model runs (``tinynn.parallel``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)

SIZES = {"MLP 235,146": 235_146, "1M": 1_000_000}
TORCH = {
    "SGD": ("SGD", {"lr": 1e-3}),
    "SGDm": ("SGD", {"lr": 1e-3, "momentum": 0.9}),
    "Adagrad": ("Adagrad", {"lr": 1e-3}),
    "RMSProp": ("RMSprop", {"lr": 1e-3}),
    "Adam": ("Adam", {"lr": 1e-3}),
    "AdamW": ("AdamW", {"lr": 1e-3}),
}


def make_tinynn(name: str):
    from tinynn import optim

    return {
        "SGD": lambda: optim.SGD(lr=1e-3),
        "SGDm": lambda: optim.SGDm(lr=1e-3, momentum=0.9),
        "Adagrad": lambda: optim.Adagrad(lr=1e-3),
        "RMSProp": lambda: optim.RMSProp(lr=1e-3),
        "Adam": lambda: optim.Adam(lr=1e-3),
        "AdamW": lambda: optim.AdamW(lr=1e-3),
    }[name]()


def repeat(step: Callable[[], object], repeats: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(repeats):
            step()

    return run


def tinynn_steps(name: str, n: int, repeats: int, workers: int = 1) -> Callable[[], None]:
    import numpy as np

    rng = np.random.default_rng(0)
    params = rng.standard_normal(n, dtype=np.float32)
    grads = rng.standard_normal(n, dtype=np.float32)
    opt = make_tinynn(name)
    if workers == 1:
        return repeat(lambda: opt.step(params, grads), repeats)
    from tinynn import parallel

    return repeat(lambda: parallel.optimizer_step(opt, params, grads, workers), repeats)


def torch_steps(torch, name: str, n: int, repeats: int, foreach: bool | None) -> Callable[[], None]:
    cls_name, kwargs = TORCH[name]
    p = torch.randn(n, dtype=torch.float32, requires_grad=True)
    p.grad = torch.randn(n, dtype=torch.float32)
    opt = getattr(torch.optim, cls_name)([p], **kwargs, foreach=foreach)

    def run() -> None:
        with torch.no_grad():
            for _ in range(repeats):
                opt.step()

    return run


def compare(torch, name: str, n: int, repeats: int, rounds: int, workers: int = 1) -> dict[str, object]:
    """Seconds per step (medians) of each implementation, and ratios to torch, interleaved."""
    workloads = {"tinynn": tinynn_steps(name, n, repeats)}
    if workers > 1:
        workloads[f"tinynn workers={workers}"] = tinynn_steps(name, n, repeats, workers)
    if torch is not None:
        workloads["torch"] = torch_steps(torch, name, n, repeats, None)
        workloads["torch foreach"] = torch_steps(torch, name, n, repeats, True)
    t = fair.interleave(rounds, workloads, warmup=1, settle=0.01, log=lambda line: None)
    out: dict[str, object] = {k: t.median(k) / repeats for k in workloads}
    if torch is not None:
        for k in workloads:
            if k.startswith("tinynn"):
                out[f"{k} / torch"] = t.ratio(k, "torch")
                out[f"{k} / torch foreach"] = t.ratio(k, "torch foreach")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and BLAS (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="also time tinynn's sharded step (e.g. 2)")
    parser.add_argument("--repeats", type=int, default=200, help="steps per timed run (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    args = parser.parse_args()
    fair.setup(args.threads)

    import numpy as np

    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None

    print(f"threads={args.threads} repeats={args.repeats} rounds={args.rounds} numpy {np.__version__}"
          + (f" torch {torch.__version__}" if torch else " (torch not installed)"))
    print(fair.load())
    print()
    impls = ["tinynn"] + ([f"tinynn workers={args.workers}"] if args.workers > 1 else [])
    head = " | ".join(f"{k} (ms)" for k in impls)
    print(f"| optimizer | size | {head} | torch (ms) | torch foreach (ms) | "
          + " | ".join(f"{k} / torch default, foreach" for k in impls) + " |")
    print("|---|---|" + "---:|" * (2 * len(impls) + 2))
    for name in TORCH:
        for size_name, n in SIZES.items():
            r = compare(torch, name, n, args.repeats, args.rounds, args.workers)
            ms = " | ".join(f"{r[k] * 1e3:.3f}" for k in impls)
            if torch is None:
                print(f"| {name} | {size_name} | {ms} | - | - |" + " - |" * len(impls))
                continue
            ratios = " | ".join(f"{r[f'{k} / torch']}; {r[f'{k} / torch foreach'].median:.2f}" for k in impls)
            print(f"| {name} | {size_name} | {ms} | {r['torch'] * 1e3:.3f} | {r['torch foreach'] * 1e3:.3f} | "
                  f"{ratios} |")
    print()
    print(fair.load())


if __name__ == "__main__":
    main()
