"""Wall time of a 12-run sweep: 1 vs 2 local workers, and Ray against the process executor.

    python benchmarks/bench_sweep.py                 # 2 rounds of: 1 worker, 2 workers, Ray (if installed)
    python benchmarks/bench_sweep.py --rounds 3 --no-ray --skip "2 BLAS threads"

The sweep: adam and sgdm x lr {1e-3, 1e-2} x seeds {0, 1, 2} = 12 runs of 2 epochs, the default MLP
(784-256-128-10) on 10,000 training images (1,000 held out). Every configuration starts from an empty
folder. The configurations take turns, round after round, so a busy machine slows them alike; the
table shows the median and the range, with `uptime` before and after (the machine is shared).
Ray's time includes starting the local Ray (ray.init), which is what a user waits for.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["--optimizer", "adam", "sgdm", "--lr", "1e-3", "1e-2", "--seed", "0", "1", "2", "--epochs", "2",
        "--limit", "10000", "--val-size", "1000"]  # fmt: skip


def run(config: list[str], out: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinynn", "sweep", *ARGS, *config, "--out", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"sweep {config} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--skip", action="append", default=[], metavar="TEXT",
                        help="leave out the configurations whose name contains TEXT (repeatable)")
    args = parser.parse_args()
    configs = {"process, 1 worker (2 BLAS threads)": ["--workers", "1"],
               "process, 1 worker (1 BLAS thread)": ["--workers", "1", "--threads", "1"],
               "process, 2 workers (1 BLAS thread each)": ["--workers", "2"]}  # fmt: skip
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray is not installed: skipping the Ray executor")
        else:
            configs["ray, local (2 CPUs, 1 BLAS thread each)"] = ["--executor", "ray", "--threads", "1"]
    configs = {k: v for k, v in configs.items() if not any(text in k for text in args.skip)}
    times: dict[str, list[float]] = {name: [] for name in configs}
    print(f"before: {uptime()}")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, config) in enumerate(configs.items()):
                seconds = run(config, Path(tmp) / f"round{r}-config{i}")  # a fresh folder: nothing to skip
                times[name].append(seconds)
                print(f"round {r + 1}: {name}: {seconds:.1f}s", flush=True)
    print(f"after: {uptime()}\n")
    base = statistics.median(times[next(iter(configs))])
    print(f"| executor | wall time of 12 runs (s), median | range (s) | vs {next(iter(configs))} |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.1f} | {min(ts):.1f}-{max(ts):.1f} | {base / med:.2f}x |")


if __name__ == "__main__":
    main()
