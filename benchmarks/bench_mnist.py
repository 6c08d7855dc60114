"""The reference workload: one epoch of MNIST on a 784-256-128-10 ReLU MLP, tinynn vs PyTorch.

    python benchmarks/bench_mnist.py                    # timings, optimizer steps, peak RSS
    python benchmarks/bench_mnist.py --accuracy         # + test accuracy, 3 seeds x 5 epochs each
    python benchmarks/bench_mnist.py --no-torch --json out.json

One epoch = one shuffled pass over the 60,000 training images in batches of 128 (469 steps,
the last of 96), float32, softmax cross-entropy, optimizers Adam(lr=1e-3) and
SGD(lr=0.1, momentum=0.9). The uint8 images stay in memory and each batch is scaled to [0, 1]
when drawn, in both frameworks.

The comparison is made fair by ``fair.py`` (read it): OpenBLAS's idle threads are told to sleep at
once (``OPENBLAS_THREAD_TIMEOUT``, set before numpy loads), and every measured workload runs ONE
epoch in turn, round after round, in this one process: tinynn Adam, PyTorch Adam, tinynn SGDm,
PyTorch SGDm, tinynn via ``Model.fit``, and the "GEMM floor" (the 8 matrix products of each
step alone: 3 forward, 3 weight gradients, 2 input gradients, same shapes and layouts as
tinynn's). The first ``--warmup`` rounds are discarded; times are medians, and every ratio is the
median of the ratios within a round, with the spread (min-max) over rounds.
PyTorch is optional: without it (or with ``--no-torch``) only tinynn's numbers are printed.

    python benchmarks/bench_mnist.py --docs    # everything docs/benchmarks.md shows (< 10 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)

N_PARAMS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10  # 235,146
SIZES = (784, 256, 128, 10)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per workload (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
    p.add_argument("--workers", type=int, default=2,
                   help="tinynn's Net(workers=...) for its main rows (default 2; 0: a plain Net, no workers "
                        "argument, the net's automatic choice); workers=1 is timed too")
    p.add_argument("--accuracy", action="store_true", help="also train 5 epochs x 3 seeds per framework")
    p.add_argument("--no-torch", action="store_true", help="do not import torch even if installed")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS run of `tinynn train`")
    p.add_argument("--rss-args", default="", help="extra arguments for the `tinynn train` RSS run")
    p.add_argument("--optim-repeats", type=int, default=200, help="timed optimizer steps (default 200)")
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only (a smoke test)")
    p.add_argument("--json", metavar="PATH", help="also write all measurements as JSON")
    p.add_argument("--docs", action="store_true",
                   help="what docs/benchmarks.md shows: --epochs 7 --accuracy, plus the per-phase profile")
    args = p.parse_args()
    if args.docs:
        args.epochs, args.accuracy = max(args.epochs, 7), True
    return args


# --- environment -----------------------------------------------------------------------------


def machine_info(threads: int) -> dict:
    import numpy as np

    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "threads": threads,
        "cpu": fair.cpu_name(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: lib.get(k) for k in ("internal_api", "version", "threading_layer", "architecture", "num_threads")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ]
    except ImportError:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        info["blas"] = [{k: blas.get(k) for k in ("name", "version")}]
    return info


# --- workloads: each is a callable running one epoch ------------------------------------------


def tinynn_workload(x, y, opt_name: str, via_fit: bool = False, workers: int = 1) -> Callable[[], None]:
    import tinynn as tn
    from tinynn import layers as L

    net = tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)],
                 **({} if workers == 0 else {"workers": workers}))  # 0: as a user writes it
    opt = tn.optim.Adam(lr=1e-3) if opt_name == "Adam" else tn.optim.SGDm(lr=0.1, momentum=0.9)
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), opt)
    batches = tn.data.BatchIterator(128)

    def epoch() -> None:
        if via_fit:
            model.fit(x, y, epochs=1, batch_size=128, verbose=0)
        else:
            for xb, yb in batches(x, y):
                model.train_step(xb, yb)

    return epoch


def torch_workload(torch, x, y, opt_name: str) -> Callable[[], None]:
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    if opt_name == "Adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    epoch = fair.torch_epoch(model, opt, nn.CrossEntropyLoss(), x, y)  # uint8 images, int64 labels
    epoch.model = model  # for the accuracy check
    return epoch


def gemm_workload(n: int, batch: int = 128) -> Callable[[], None]:
    """The 8 matmuls of each step, nothing else: the floor numpy's BLAS sets for an epoch."""
    import numpy as np

    rng = np.random.default_rng(0)
    f32 = np.float32
    ws = [rng.standard_normal((a, b), dtype=f32) for a, b in zip(SIZES[:-1], SIZES[1:], strict=True)]
    dws = [np.empty_like(w) for w in ws]

    def arrays(b: int):
        acts = [rng.standard_normal((b, k), dtype=f32) for k in SIZES]  # x, h1, h2, logits
        grads = [np.empty((b, k), f32) for k in SIZES]  # dL/d(acts)
        return acts, grads

    sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    bufs = {b: arrays(b) for b in set(sizes)}

    def epoch() -> None:
        for b in sizes:
            acts, grads = bufs[b]
            for i in range(3):  # forward: h_{i+1} = h_i @ w_i
                np.matmul(acts[i], ws[i], out=acts[i + 1])
            for i in (2, 1, 0):  # backward: dw_i = h_i.T @ g_{i+1}; g_i = g_{i+1} @ w_i.T (not for the input)
                np.matmul(acts[i].T, acts[i + 1], out=dws[i])
                if i:
                    np.matmul(acts[i + 1], ws[i].T, out=grads[i])

    return epoch


# --- optimizer step, memory, accuracy --------------------------------------------------------


def optimizer_steps(torch, repeats: int, rounds: int = 5, workers: int = 1) -> dict[str, dict]:
    """Seconds per step on N_PARAMS float32 params, tinynn and torch interleaved (bench_optim.py)."""
    import bench_optim

    out = {}
    for name in ("SGD", "SGDm", "Adagrad", "RMSProp", "Adam"):
        out[name] = bench_optim.compare(torch, name, N_PARAMS, repeats, rounds, workers)
        print(f"  {name}: " + ", ".join(f"{k} {v * 1e3:.3f} ms" for k, v in out[name].items()
                                        if isinstance(v, float)), file=sys.stderr)
    return out


def scratch_after_eval(x, y, xt, yt) -> dict[str, float]:
    """MiB of layer scratch arrays still held after one training step, and after evaluating
    (then predicting) the 10,000 test images in one batch: is inference leaving big buffers behind?"""
    import tinynn as tn
    from tinynn import layers as L

    net = tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)])
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))

    def held() -> float:
        return sum(a.nbytes for layer in net.layers for a in layer._scratch.values()) / 2**20

    model.train_step(*next(iter(tn.data.BatchIterator(128)(x, y))))
    out = {"after train_step": held()}
    model.evaluate(xt, yt, batch_size=len(xt))
    out["after evaluate(10k, batch_size=10k)"] = held()
    model.predict(xt, batch_size=len(xt))
    out["after predict(10k, batch_size=10k)"] = held()
    return out


def peak_rss_mib(extra_args: str) -> dict:
    """Peak RSS of the default ``tinynn train`` run (``python -m tinynn train``, what the console
    script runs), into a temporary --out folder.

    Measured by a small intermediate Python process: a child forked straight from this one would
    inherit this process's (large) high-water mark in ``ru_maxrss``.
    """
    probe = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)\n"
        "lines = r.stdout.strip().splitlines()\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, lines[-1] if lines else '')\n"
    )
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "tinynn", "train", "--out", out, *extra_args.split()]
        shown = " ".join(["python", *cmd[1:]]).replace(out, "<tmp>")
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True)
    code, maxrss_kib, last_line = (res.stdout.rstrip("\n").split(" ", 2) + [""])[:3]
    if code != "0":
        return {"cmd": shown, "error": f"exit code {code}"}
    return {
        "cmd": shown,
        "peak_rss_mib": int(maxrss_kib) / 1024,  # Linux reports KiB
        "seconds": time.perf_counter() - start,
        "last_line": last_line,
    }


def accuracy(torch, x, y, xt, yt, seeds=(0, 1, 2), epochs: int = 5) -> dict[str, list[float]]:
    """Test accuracy after ``epochs`` epochs of Adam(1e-3), batch 128, each framework's default init."""
    import numpy as np

    import tinynn as tn
    from tinynn import layers as L

    res: dict[str, list[float]] = {"tinynn": [], "torch": []}
    for seed in seeds:
        tn.seed(seed)
        net = tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)])
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=1e-3))
        model.fit(x, y, epochs=epochs, batch_size=128, verbose=0)
        res["tinynn"].append(model.evaluate(xt, yt)["accuracy"])
        print(f"  accuracy seed {seed}: tinynn {res['tinynn'][-1]:.4f}", file=sys.stderr)
        if torch is None:
            continue
        torch.manual_seed(seed)
        run_epoch = torch_workload(torch, x, y, "Adam")
        for _ in range(epochs):
            run_epoch()
        with torch.no_grad():
            logits = run_epoch.model(torch.from_numpy(xt).float().div_(255))
        res["torch"].append(float((logits.argmax(1).numpy() == np.asarray(yt)).mean()))
        print(f"  accuracy seed {seed}: torch {res['torch'][-1]:.4f}", file=sys.stderr)
    if not res["torch"]:
        del res["torch"]
    return res


# --- report ----------------------------------------------------------------------------------


def table(results: dict) -> str:
    """Markdown table. Times are medians over rounds; every ratio is the median of the ratios
    of the SAME round (adjacent epochs), which cancels most of the machine's drift, and its
    spread (min-max over rounds) follows in brackets."""
    t: fair.Timings = results["timings"]
    med = {k: t.median(k) for k in t.times}

    def ratio(a: str, b: str, unit: str = "") -> str:
        if a not in t.times or b not in t.times:
            return "-"
        r = t.ratio(a, b)
        return f"{r.median:.2f}{unit} ({r.low:.2f}-{r.high:.2f})"

    def num(v: float | None, fmt: str = "{:.3f}") -> str:
        return "-" if v is None else fmt.format(v)

    workers = f"workers={results['args']['workers']}" if results["args"]["workers"] else "plain Net"
    rows = ["| measurement | tinynn | PyTorch | ratio (min-max) |", "|---|---:|---:|---:|"]
    for opt in ("Adam", "SGDm"):
        rows.append(f"| epoch, {opt}, {workers} (s); ratio tinynn / PyTorch | {med[f'tinynn {opt}']:.3f} | "
                    f"{num(med.get(f'torch {opt}'))} | {ratio(f'tinynn {opt}', f'torch {opt}')} |")
    for opt in ("Adam", "SGDm"):
        if f"tinynn {opt} workers=1" in med:
            rows.append(f"| epoch, {opt}, workers=1 (s); ratio tinynn / PyTorch | "
                        f"{med[f'tinynn {opt} workers=1']:.3f} | {num(med.get(f'torch {opt}'))} | "
                        f"{ratio(f'tinynn {opt} workers=1', f'torch {opt}')} |")
    if "tinynn Adam fit" in med:
        rows.append(f"| epoch, Adam, via `Model.fit(verbose=0)` (s); ratio fit / train_step loop | "
                    f"{med['tinynn Adam fit']:.3f} | | {ratio('tinynn Adam fit', 'tinynn Adam')} |")
    rows.append(f"| GEMM-only epoch: the 8 matmuls per step alone, numpy's BLAS (s) | {med['GEMM floor']:.3f} | | |")
    for opt in ("Adam", "SGDm"):
        rows.append(f"| epoch / GEMM-only epoch, {opt} | {ratio(f'tinynn {opt}', 'GEMM floor', 'x')} | "
                    f"{ratio(f'torch {opt}', 'GEMM floor', 'x')} | |")
    for name, r in results.get("optimizer_step", {}).items():
        for impl in [k for k in r if k.startswith("tinynn") and " / " not in k]:
            label = "" if impl == "tinynn" else f" ({impl[7:]})"
            if "torch" not in r:
                rows.append(f"| optimizer step {name}{label}, {N_PARAMS:,} params (ms) | {r[impl] * 1e3:.3f} | - | - |")
                continue
            vs, vs_foreach = r[impl + " / torch"], r[impl + " / torch foreach"]
            rows.append(f"| optimizer step {name}{label}, {N_PARAMS:,} params (ms); torch default impl. "
                        f"(foreach=True: {r['torch foreach'] * 1e3:.3f} ms, ratio {vs_foreach.median:.2f}) | "
                        f"{r[impl] * 1e3:.3f} | {r['torch'] * 1e3:.3f} | {vs.median:.2f} ({vs.low:.2f}-{vs.high:.2f})|")
    rss = results.get("rss")
    if rss:
        value = f"{rss['peak_rss_mib']:.0f}" if "peak_rss_mib" in rss else rss.get("error", "-")
        rows.append(f"| peak RSS, `{rss['cmd']}` (MiB) | {value} | | |")
    for what, mib in results.get("scratch_after_eval_mib", {}).items():
        rows.append(f"| layer scratch arrays held {what} (MiB) | {mib:.1f} | | |")
    acc = results.get("accuracy")
    if acc:
        def fmt(v):
            return f"{statistics.mean(v):.4f} ± {statistics.pstdev(v):.4f}"
        rows.append(f"| test accuracy, Adam 1e-3, 5 epochs, {len(acc['tinynn'])} seeds (mean ± sd) | "
                    f"{fmt(acc['tinynn'])} | {fmt(acc['torch']) if 'torch' in acc else '-'} | |")
    return "\n".join(rows)


def main() -> None:
    args = parse_args()
    fair.setup(args.threads)  # thread counts and OPENBLAS_THREAD_TIMEOUT, before numpy loads OpenBLAS
    load_before = fair.load()

    import numpy as np

    import tinynn as tn

    info = machine_info(args.threads)  # before torch joins the process: BLAS here is numpy's
    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
            info["torch"] = torch.__version__
        except ImportError:
            pass

    (x, y), (xt, yt) = tn.data.load_mnist(dtype=np.uint8)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    print(f"tinynn {tn.__version__}, numpy {info['numpy']}, {info['cpu']} ({info['cpus']} cpus), "
          f"threads={args.threads}" + (f", torch {torch.__version__}" if torch else ", torch not used"),
          file=sys.stderr)

    results: dict = {"machine": info, "args": vars(args)}
    workloads = {}
    for opt in ("Adam", "SGDm"):
        tn.seed(0)
        workloads[f"tinynn {opt}"] = tinynn_workload(x, y, opt, workers=args.workers)
        if torch is not None:
            torch.manual_seed(0)
            workloads[f"torch {opt}"] = torch_workload(torch, x, y, opt)
        if args.workers != 1:
            tn.seed(0)
            workloads[f"tinynn {opt} workers=1"] = tinynn_workload(x, y, opt)
    workloads["tinynn Adam fit"] = tinynn_workload(x, y, "Adam", via_fit=True, workers=args.workers)
    workloads["GEMM floor"] = gemm_workload(len(x))
    print("epochs, interleaved ...", file=sys.stderr)
    results["timings"] = fair.interleave(args.epochs, workloads, args.warmup)

    results["scratch_after_eval_mib"] = scratch_after_eval(x, y, xt, yt)
    print("optimizer steps ...", file=sys.stderr)
    results["optimizer_step"] = optimizer_steps(torch, args.optim_repeats, workers=args.workers or 1)
    load_after = fair.load()
    if not args.no_rss:  # after the timings: a long run right before them can tip the machine into its slow state
        print("peak RSS of `tinynn train` ...", file=sys.stderr)
        results["rss"] = peak_rss_mib(args.rss_args)
    if args.accuracy:
        print("accuracy ...", file=sys.stderr)
        results["accuracy"] = accuracy(torch, x, y, xt, yt)

    blas = ", ".join(f"{b.get('internal_api') or b.get('name')} {b.get('version')}"
                     f" ({b.get('architecture', '?')}, {b.get('num_threads', '?')} threads)" for b in info["blas"])
    print(f"\nMachine: {info['cpu']}, {info['cpus']} cpus; Python {info['python']}, numpy {info['numpy']} "
          f"with {blas}" + (f"; torch {info['torch']}" if "torch" in info else "")
          + f"; threads={args.threads}; OPENBLAS env: {info['openblas_env'] or 'none'}")
    print(f"Load before the timings: {load_before}\nLoad after them:        {load_after}")
    print(f"Medians of {args.epochs} epochs per workload after {args.warmup} warm-up round(s), interleaved; "
          "ratios: median of per-round ratios (min-max over rounds).\n")
    print(table(results))
    if args.docs:
        for opt in ("adam", "sgdm"):
            print(f"\n`python benchmarks/profile_step.py --optimizer {opt} --threads {args.threads} "
                  f"--workers 1 / {args.workers}`\n", flush=True)
            for workers in sorted({1, args.workers}):
                subprocess.run([sys.executable, str(HERE / "profile_step.py"), "--optimizer", opt,
                                "--threads", str(args.threads), "--workers", str(workers)], check=True)
    if args.json:
        results["timings"] = results["timings"].times
        for r in results["optimizer_step"].values():
            for k, v in r.items():
                if isinstance(v, fair.Ratio):
                    r[k] = vars(v) if hasattr(v, "__dict__") else [v.median, v.low, v.high, v.rounds]
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
