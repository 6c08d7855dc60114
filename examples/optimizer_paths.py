"""Watch the optimizers of tinynn.optim walk over 2-D test functions.

Each optimizer gets the same start point and its own learning rate, picked by a small grid
search (the one with the lowest mean log-loss along the path, i.e. fast *and* accurate). The
optimizers are the very classes a Model uses: `opt.step(params, grads)` on a 1-D float64
array of two entries. The gradients are written by hand below.

One PNG per function: the paths over the contours (left) and f(x) - f* per step (right).

    python examples/optimizer_paths.py                  # into docs/figures
    python examples/optimizer_paths.py --quick --out /tmp/figs
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

import tinynn as tn  # noqa: E402

Array = np.ndarray


# --- the test functions, each with its gradient by hand -------------------------------------


@dataclass
class Problem:
    name: str  # also the PNG's file name
    title: str
    f: Callable[[Array, Array], Array]  # works on scalars and on meshgrids
    grad: Callable[[float, float], tuple[float, float]]
    start: tuple[float, float]
    minima: list[tuple[float, float]]
    f_min: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steps: int
    log_contours: bool  # log-spaced contour levels for functions with a deep narrow valley
    saddles: tuple[tuple[float, float], ...] = ()


def quadratic_f(x, y):
    return 0.1 * x**2 + 2.0 * y**2


def quadratic_grad(x, y):
    return 0.2 * x, 4.0 * y


def rosenbrock_f(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def rosenbrock_grad(x, y):
    return -2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)


def beale_f(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def beale_grad(x, y):
    a, b, c = 1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3
    dx = 2 * a * (y - 1) + 2 * b * (y**2 - 1) + 2 * c * (y**3 - 1)
    dy = 2 * a * x + 2 * b * 2 * x * y + 2 * c * 3 * x * y**2
    return dx, dy


def saddle_f(x, y):
    # A saddle at the origin (f = 1/4) between two valleys at (0, +-1) (f = 0). Unlike x^2 - y^2
    # it is bounded below, so "escaping the saddle" ends somewhere instead of running off.
    return x**2 + 0.25 * (y**2 - 1) ** 2


def saddle_grad(x, y):
    return 2 * x, y * (y**2 - 1)


PROBLEMS = [
    Problem("quadratic", r"Ill-conditioned quadratic  $f = 0.1x^2 + 2y^2$  (condition number 20)",
            quadratic_f, quadratic_grad, (-4.5, 1.5), [(0.0, 0.0)], 0.0, (-5, 1.5), (-2, 2), 100, False),
    Problem("rosenbrock", r"Rosenbrock  $f = (1-x)^2 + 100(y-x^2)^2$",
            rosenbrock_f, rosenbrock_grad, (-1.2, 1.0), [(1.0, 1.0)], 0.0, (-2, 2), (-1, 3), 1000, True),
    Problem("beale", r"Beale  $f = \sum_i (c_i - x + xy^i)^2$,  $c = (1.5, 2.25, 2.625)$",
            beale_f, beale_grad, (1.0, 1.5), [(3.0, 0.5)], 0.0, (-1, 4), (-1.5, 2), 1000, True),
    Problem("saddle", r"Saddle  $f = x^2 + (y^2-1)^2/4$,  start near the saddle at the origin",
            saddle_f, saddle_grad, (-1.5, 1e-3), [(0.0, 1.0), (0.0, -1.0)], 0.0, (-2, 2), (-1.6, 1.6), 100, False,
            saddles=((0.0, 0.0),)),
]


# --- the optimizers ----------------------------------------------------------------------------

OPTIMIZERS: dict[str, Callable[[float], tn.optim.Optimizer]] = {
    "SGD": lambda lr: tn.optim.SGD(lr=lr),
    "SGDm": lambda lr: tn.optim.SGDm(lr=lr, momentum=0.9),
    "Adagrad": lambda lr: tn.optim.Adagrad(lr=lr),
    "RMSProp": lambda lr: tn.optim.RMSProp(lr=lr),
    "Adam": lambda lr: tn.optim.Adam(lr=lr),
    "AdamW": lambda lr: tn.optim.AdamW(lr=lr, weight_decay=0.1),
}
PALETTE = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
COLORS = dict(zip(OPTIMIZERS, PALETTE, strict=True))
LR_GRID = [m * 10.0**e for e in range(-4, 1) for m in (1, 2, 5)]  # 1e-4, 2e-4, 5e-4, ..., 5
DIVERGED = 1e6  # a coordinate beyond this counts as diverged


def run(problem: Problem, make_opt: Callable[[float], tn.optim.Optimizer], lr: float, steps: int) -> Array:
    """The path, shape (steps + 1, 2): the start and the point after every step."""
    params = np.array(problem.start, dtype=np.float64)
    grads = np.empty_like(params)
    opt = make_opt(lr)
    path = np.empty((steps + 1, 2))
    path[0] = params
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            grads[:] = problem.grad(*params)
            opt.step(params, grads)  # in place, exactly as Model.apply_grads does
            path[t] = params
            if not np.all(np.abs(params) < DIVERGED):
                path[t:] = np.nan
                break
    return path


def losses_along(problem: Problem, path: Array) -> Array:
    with np.errstate(all="ignore"):
        return problem.f(path[:, 0], path[:, 1]) - problem.f_min


def final_loss(problem: Problem, path: Array) -> float:
    """f - f* at the end of the path; inf if the run diverged."""
    loss = losses_along(problem, path)
    return float(loss[-1]) if np.all(np.isfinite(loss)) else math.inf


def tune(problem: Problem, make_opt: Callable[[float], tn.optim.Optimizer], steps: int, grid: list[float]) -> float:
    """The smallest learning rate of `grid` that ends within 10x of the best final loss.

    The best final loss alone would pick the most aggressive rate, whose path is a zig-zag;
    the smallest rate that does (nearly) as well gives a path a reader can follow.
    Losses under 1e-8 all count as "converged".
    """
    finals = [final_loss(problem, run(problem, make_opt, lr, steps)) for lr in grid]
    target = 10 * max(min(finals), 1e-8)
    return next(lr for lr, final in zip(grid, finals, strict=True) if final <= target)


# --- drawing -------------------------------------------------------------------------------------


def plot(problem: Problem, paths: dict[str, Array], lrs: dict[str, float], out: Path) -> Path:
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(14, 5.6), gridspec_kw={"width_ratios": [1.15, 1]})

    xs = np.linspace(*problem.xlim, 400)
    ys = np.linspace(*problem.ylim, 400)
    gx, gy = np.meshgrid(xs, ys)
    gz = problem.f(gx, gy) - problem.f_min
    if problem.log_contours:
        levels = np.logspace(-2, math.log10(gz.max()), 28)
        ax.contourf(gx, gy, gz + 1e-12, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.55)
        ax.contour(gx, gy, gz + 1e-12, levels=levels, norm=LogNorm(), colors="grey", linewidths=0.4)
    else:
        levels = np.linspace(gz.min(), np.percentile(gz, 90), 25)
        ax.contourf(gx, gy, gz, levels=levels, cmap="Greys_r", alpha=0.55, extend="max")
        ax.contour(gx, gy, gz, levels=levels, colors="grey", linewidths=0.4)

    for name, path in paths.items():
        label = f"{name} (lr={lrs[name]:g})"
        ax.plot(path[:, 0], path[:, 1], "-", color=COLORS[name], lw=1.8, alpha=0.9, label=label)
        ax.plot(path[:, 0], path[:, 1], ".", color=COLORS[name], ms=2.5, alpha=0.6)
        loss = np.maximum(losses_along(problem, path), 1e-12)
        ax_loss.plot(np.arange(len(loss)), loss, color=COLORS[name], lw=1.8, label=label)

    ax.plot(*problem.start, marker="o", color="black", ms=9, ls="none", label="start")
    for i, (mx, my) in enumerate(problem.minima):
        ax.plot(mx, my, marker="*", color="gold", mec="black", ms=16, ls="none", label="minimum" if i == 0 else None)
    for sx, sy in problem.saddles:
        ax.plot(sx, sy, marker="X", color="white", mec="black", ms=11, ls="none", label="saddle point")
    ax.set_xlim(problem.xlim)
    ax.set_ylim(problem.ylim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Paths over the contours of f")
    ax.legend(loc="best", fontsize=8.5, framealpha=0.9)

    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel(r"$f(x, y) - f^*$  (log scale)")
    ax_loss.set_title("Loss per step")
    ax_loss.grid(True, which="major", alpha=0.3)
    ax_loss.legend(loc="best", fontsize=8.5)

    fig.suptitle(problem.title, fontsize=13)
    fig.tight_layout()
    path_png = out / f"optimizer_paths_{problem.name}.png"
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return path_png


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="fewer steps and a coarser grid (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    grid = LR_GRID[::2] if args.quick else LR_GRID

    print("| function | " + " | ".join(OPTIMIZERS) + " |")
    print("|---" * (len(OPTIMIZERS) + 1) + "|")
    for problem in PROBLEMS:
        steps = problem.steps // 5 if args.quick else problem.steps
        lrs = {name: tune(problem, make, steps, grid) for name, make in OPTIMIZERS.items()}
        paths = {name: run(problem, make, lrs[name], steps) for name, make in OPTIMIZERS.items()}
        png = plot(problem, paths, lrs, args.out)
        print(f"| {problem.name} ({steps} steps) | " + " | ".join(f"{lrs[n]:g}" for n in OPTIMIZERS) + " |")
        print(f"  wrote {png}")


if __name__ == "__main__":
    main()
