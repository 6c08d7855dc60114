"""Time the Sigmoid layer: tinynn's exp(x) / (1 + exp(x)) vs the old (1 + tanh(x / 2)) / 2 vs torch.

    python benchmarks/bench_sigmoid.py --rounds 30

The old formula is kept here only as a yardstick: it cancels to 0 in the negative tail
(sigmoid(-40) = 0 instead of 4.2e-18) and its backward ``s * (1 - s)`` does the same in the
positive one. In float32 numpy's tanh is cheaper than its exp, so the accurate forward costs a
little more; the accurate backward is one pass shorter. Interleaved in one process, median of
per-round ratios; torch on one thread (numpy's ufuncs use one).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from tinynn.layers import Sigmoid  # noqa: E402


class TanhSigmoid(Sigmoid):
    """The Sigmoid tinynn had before: same buffers and call overhead, the tanh formula."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        s = self.scratch_array("out", x.shape, x.dtype)
        np.multiply(x, 0.5, out=s)
        np.tanh(s, out=s)
        s += 1
        s *= 0.5
        self._s = s
        return s

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self.scratch_array("dx", grad.shape, grad.dtype)
        np.subtract(1, self._s, out=dx)
        dx *= self._s
        dx *= grad
        return dx


def _ratio(a: list[float], b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    print("| dtype | shape | forward | old forward | torch forward | fwd new/old | fwd new/torch | fwd+bwd new/old |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dtype in (np.float32, np.float64):
        for shape in [(128, 256), (128, 1024), (512, 2048)]:
            x = (rng.standard_normal(shape) * 4).astype(dtype)
            g = rng.standard_normal(shape).astype(dtype)
            new, old = Sigmoid(), TanhSigmoid()
            fns = {
                "new": lambda: new.forward(x),  # noqa: B023
                "old": lambda: old.forward(x),  # noqa: B023
                "new_fb": lambda: (new.forward(x), new.backward(g)),  # noqa: B023
                "old_fb": lambda: (old.forward(x), old.backward(g)),  # noqa: B023
            }
            if torch is not None:
                xt, st = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
                fns["torch"] = lambda: torch.sigmoid(xt, out=st)  # noqa: B023
            reps = max(1, 1_000_000 // x.size)
            times: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        fn()
                    times[name].append((time.perf_counter() - t0) / reps)
            med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
            vs_torch = f"{_ratio(times['new'], times['torch']):.2f}" if torch is not None else "-"
            print(f"| {np.dtype(dtype).name} | {shape} | {med['new']:.1f} us | {med['old']:.1f} us | "
                  f"{med.get('torch', float('nan')):.1f} us | {_ratio(times['new'], times['old']):.2f} | "
                  f"{vs_torch} | {_ratio(times['new_fb'], times['old_fb']):.2f} |")


if __name__ == "__main__":
    main()
