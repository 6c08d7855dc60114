"""Regenerate every committed figure under docs/figures, by running each example script.

    python tools/make_figures.py                     # all of them (full runs: several minutes)
    python tools/make_figures.py optimizer_paths     # only the named examples
    python tools/make_figures.py --list              # what would run

Each example writes into the folder given by `--out` (its own default is runs/figures, which git
ignores); this tool passes `--out docs/figures`, so it is the one command that changes tracked
figures. To add an example's figures to the docs, add one line to EXAMPLES.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures"

# script in examples/ -> extra arguments for the full run that draws the docs' figures
EXAMPLES: dict[str, list[str]] = {
    "optimizer_paths.py": [],
    "compare_optimizers.py": [],
    "initialization.py": [],
    "regularization.py": [],
    "learning_rate.py": [],
    "debugging.py": [],
    "mnist_cnn.py": [],
    "mnist_rnn.py": [],
    "names_transformer.py": [],
    "names_attention.py": ["--run", "runs/names"],  # after names_transformer.py (or tinynn train --data names)
    "mnist_vit.py": [],
    "residual_stream.py": [],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="examples to run (file names with or without .py); default all")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    args = parser.parse_args(argv)
    wanted = [n if n.endswith(".py") else f"{n}.py" for n in args.names] or list(EXAMPLES)
    unknown = [n for n in wanted if n not in EXAMPLES]
    if unknown:
        parser.error(f"not in EXAMPLES: {', '.join(unknown)} (known: {', '.join(EXAMPLES)})")
    if args.list:
        for name in wanted:
            status = "" if (ROOT / "examples" / name).is_file() else "  (script not in this checkout)"
            print(f"examples/{name} {' '.join(EXAMPLES[name])}{status}")
        return 0

    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}
    missing, failed = [], []
    for name in wanted:
        script = ROOT / "examples" / name
        if not script.is_file():
            # Some examples come from branches that may not be merged yet: say so, do not fail.
            print(f"-- skipping examples/{name}: not in this checkout", flush=True)
            missing.append(name)
            continue
        command = [sys.executable, str(script), "--out", str(FIGURES), *EXAMPLES[name]]
        print(f"-- {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        if subprocess.run(command, cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
        print(f"-- {name}: {time.perf_counter() - start:.0f}s", flush=True)
    if missing:
        print(f"skipped (missing): {', '.join(missing)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
