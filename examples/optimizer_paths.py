"""Watch the optimizers of tinynn.optim walk over 2-D test functions.

Every optimizer starts from the same point. Each one except AdamW gets its own learning rate from
a grid search (see `tune`): on the grid 1e-4, 2e-4, 5e-4, ..., 5, the smallest rate whose final
loss f - f* is within a factor 10 of the best final loss on the grid (losses under 1e-8 all count
as converged). The best final loss alone would pick the most aggressive rate, whose path
zig-zags across the picture. AdamW is not tuned: it runs at Adam's rate with weight_decay=0.1, so
the only difference between the two is the decay. The optimizers are the very classes a Model
uses: `opt.step(params, grads)` on a 1-D float64 array of two entries; the gradients are written
by hand below.

One PNG per function: one small panel per optimizer with its path over the contours (the other
paths faint behind it), and f(x) - f* per step on a log scale, with a floor at 1e-12.

    python examples/optimizer_paths.py                        # into runs/figures
    python examples/optimizer_paths.py --quick --out /tmp/figs
    python tools/make_figures.py                              # the committed docs/figures
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

LOSS_FLOOR = 1e-12  # the log-scale loss plot draws f - f* below this at this value
STYLES = {  # colour, line style and marker: no curve can hide another that has the same values
    "SGD": ("tab:blue", "-", "o"),
    "SGDm": ("tab:orange", "--", "s"),
    "Adagrad": ("tab:green", "-.", "^"),
    "RMSProp": ("tab:red", ":", "D"),
    "Adam": ("tab:purple", "-", "v"),
    "AdamW": ("tab:brown", "--", "P"),
}


def view_box(problem: Problem, paths: dict[str, Array]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The problem's box, widened so every path that did not diverge stays inside the axes."""
    xs = [*problem.xlim, *(p[:, 0] for p in paths.values() if np.all(np.isfinite(p)))]
    ys = [*problem.ylim, *(p[:, 1] for p in paths.values() if np.all(np.isfinite(p)))]
    lo_x, hi_x = min(np.min(v) for v in xs), max(np.max(v) for v in xs)
    lo_y, hi_y = min(np.min(v) for v in ys), max(np.max(v) for v in ys)
    pad_x, pad_y = 0.03 * (hi_x - lo_x), 0.03 * (hi_y - lo_y)
    if (lo_x, hi_x) != problem.xlim:
        lo_x, hi_x = lo_x - pad_x * (lo_x < problem.xlim[0]), hi_x + pad_x * (hi_x > problem.xlim[1])
    if (lo_y, hi_y) != problem.ylim:
        lo_y, hi_y = lo_y - pad_y * (lo_y < problem.ylim[0]), hi_y + pad_y * (hi_y > problem.ylim[1])
    return (lo_x, hi_x), (lo_y, hi_y)


def draw_contours(ax, problem: Problem, xlim, ylim) -> None:
    gx, gy = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    gz = problem.f(gx, gy) - problem.f_min
    if problem.log_contours:
        levels = np.logspace(-2, math.log10(gz.max()), 24)
        ax.contourf(gx, gy, gz + 1e-12, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.45)
        ax.contour(gx, gy, gz + 1e-12, levels=levels, norm=LogNorm(), colors="grey", linewidths=0.3)
    else:
        levels = np.linspace(gz.min(), np.percentile(gz, 90), 20)
        ax.contourf(gx, gy, gz, levels=levels, cmap="Greys_r", alpha=0.45, extend="max")
        ax.contour(gx, gy, gz, levels=levels, colors="grey", linewidths=0.3)


def plot(problem: Problem, paths: dict[str, Array], lrs: dict[str, float], out: Path) -> Path:
    fig = plt.figure(figsize=(16, 7.6))
    grid = fig.add_gridspec(2, 5, width_ratios=[1, 1, 1, 0.12, 1.9])
    panels = [fig.add_subplot(grid[i // 3, i % 3]) for i in range(len(paths))]
    ax_loss = fig.add_subplot(grid[:, 4])
    xlim, ylim = view_box(problem, paths)

    for ax, (name, path) in zip(panels, paths.items(), strict=True):
        color, _, marker = STYLES[name]
        draw_contours(ax, problem, xlim, ylim)
        for other, other_path in paths.items():
            if other != name:
                ax.plot(other_path[:, 0], other_path[:, 1], "-", color="white", lw=0.8, alpha=0.7)
        ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.8)
        ax.plot(path[:, 0], path[:, 1], ".", color=color, ms=2.5, alpha=0.7)
        ax.plot(*problem.start, marker="o", color="black", ms=6, ls="none")
        for mx, my in problem.minima:
            ax.plot(mx, my, marker="*", color="gold", mec="black", ms=11, ls="none")
        for sx, sy in problem.saddles:
            ax.plot(sx, sy, marker="X", color="white", mec="black", ms=8, ls="none")
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_title(f"{name}, lr={lrs[name]:g}", fontsize=10, color=color, fontweight="bold")
        ax.tick_params(labelsize=7)

    for name, path in paths.items():
        color, style, marker = STYLES[name]
        raw = losses_along(problem, path)
        loss = np.maximum(raw, LOSS_FLOOR)
        end = f"{raw[-1]:.1e}" if np.isfinite(raw[-1]) else "diverged"
        every = max(1, len(loss) // 12)
        ax_loss.plot(np.arange(len(loss)), loss, color=color, ls=style, lw=1.8, marker=marker, ms=5,
                     markevery=(list(STYLES).index(name) * every // 6, every), label=f"{name}: ends at {end}")
    ax_loss.axhline(LOSS_FLOOR, color="black", lw=0.8, ls=(0, (1, 3)))
    ax_loss.text(0.01, 0.012, "floor of this plot: values below 1e-12 are drawn at 1e-12\n"
                 "(a clamp so the log scale can show 0; not float precision)",
                 transform=ax_loss.transAxes, ha="left", va="bottom", fontsize=8, color="0.25")
    ax_loss.set_yscale("log")
    ax_loss.set_ylim(LOSS_FLOOR / 10, None)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel(r"$f(x, y) - f^*$  (log scale)")
    ax_loss.set_title("Loss per step (legend: f - f* after the last step)")
    ax_loss.grid(True, which="major", alpha=0.3)
    ax_loss.legend(loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=2, fontsize=8.5)

    fig.suptitle(problem.title + "   (black dot: start, star: minimum)", fontsize=13)
    fig.tight_layout()
    path_png = out / f"optimizer_paths_{problem.name}.png"
    fig.savefig(path_png, dpi=100)
    plt.close(fig)
    return path_png


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/figures"), help="folder for the PNGs")
    parser.add_argument("--quick", action="store_true", help="fewer steps and a coarser grid (for tests)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    grid = LR_GRID[::2] if args.quick else LR_GRID

    print("learning rates (AdamW: Adam's rate) and, below each, f - f* after the last step")
    print("| function | " + " | ".join(OPTIMIZERS) + " |")
    print("|---" + "|---:" * len(OPTIMIZERS) + "|")
    for problem in PROBLEMS:
        steps = problem.steps // 5 if args.quick else problem.steps
        lrs = {name: tune(problem, make, steps, grid) for name, make in OPTIMIZERS.items() if name != "AdamW"}
        lrs["AdamW"] = lrs["Adam"]
        paths = {name: run(problem, make, lrs[name], steps) for name, make in OPTIMIZERS.items()}
        png = plot(problem, paths, lrs, args.out)
        finals = {name: final_loss(problem, path) for name, path in paths.items()}
        print(f"| {problem.name} ({steps} steps), lr | " + " | ".join(f"{lrs[n]:g}" for n in OPTIMIZERS) + " |")
        print(f"| {problem.name}, f - f* | " + " | ".join(f"{finals[n]:.1e}" for n in OPTIMIZERS) + " |")
        print(f"  wrote {png}")


if __name__ == "__main__":
    main()
