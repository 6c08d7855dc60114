"""Where the time of one training step goes: batching, each layer's forward and backward, the loss,
the optimizer. Manual timers around each phase of a reference workload (MNIST, batch 128: the
784-256-128-10 ReLU MLP, or ``--model cnn`` / ``--model lstm``, the zoo's LeNet-5 and row-LSTM),
summed over epochs and reported per step, beside the GEMM-only floor of the Dense layers: the same
phase's matrix products alone (same shapes, layouts and threads), timed in alternate epochs.

    python benchmarks/profile_step.py --optimizer adam --epochs 3 --threads 2 [--workers 2]
    python benchmarks/profile_step.py --model cnn --threads 1 --limit 6400   # LeNet-5, per layer

With ``--workers 2`` the net is ``Net(..., workers=2)``: forward and backward run split over two
threads (timed as one phase each) and the optimizer step in two slices (``tinynn.parallel``).

OpenBLAS's idle threads sleep at once (``fair.setup``), as in every benchmark here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("mlp", "cnn", "lstm"), default="mlp", help="the net (default mlp)")
    p.add_argument("--optimizer", choices=("adam", "sgdm", "sgd"), default="adam")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch (default 3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1,
                   help="Net(workers=...) (default 1; 0: the net's automatic choice, timed as it decides)")
    p.add_argument("--limit", type=int, default=0, help="epochs over the first N images only (per-step times)")
    args = p.parse_args()
    fair.setup(args.threads)

    import numpy as np

    import tinynn as tn
    from tinynn import layers as L
    from tinynn import parallel

    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    tn.seed(0)
    from tinynn import zoo

    workers = args.workers or None
    if args.model == "mlp":
        net = tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)], workers=workers)
    else:
        net = {"cnn": zoo.lenet5, "lstm": zoo.lstm}[args.model](workers=workers)
    opt = {
        "adam": lambda: tn.optim.Adam(lr=1e-3),
        "sgdm": lambda: tn.optim.SGDm(lr=0.1, momentum=0.9),
        "sgd": lambda: tn.optim.SGD(lr=0.1),
    }[args.optimizer]()
    loss = tn.losses.SoftmaxCrossEntropy()
    batches = tn.data.BatchIterator(128)(x, y)
    clock = time.perf_counter
    totals: dict[str, float] = defaultdict(float)
    floor: dict[str, float] = defaultdict(float)

    first = next(i for i, layer in enumerate(net.layers) if layer.params)

    def tinynn_epoch() -> int:
        steps = 0
        t = clock()
        for xb, yb in batches:
            t0 = clock()
            totals["batching (BatchIterator)"] += t0 - t
            h = net._check_input(xb)
            t1 = clock()
            totals["forward: input check"] += t1 - t0
            split = f"all layers, split over {net.workers} threads"
            was_split = net._split is not None  # a plain net decides after its first batch's forward
            if was_split:
                preds = net._split.forward(h)
                t2 = clock()
                totals[f"forward: {split}"] += t2 - t1
                t1 = t2
            else:
                for i, layer in enumerate(net.layers):
                    h = layer.forward(h)
                    t2 = clock()
                    totals[f"forward: {i} {layer!r}"] += t2 - t1
                    t1 = t2
                preds = h.copy()
                if net._undecided and net.training:  # workers=0: the net's automatic choice, as Net.forward
                    net._decide(len(h))
            value, g = loss.loss_and_grad(preds, yb)
            t2 = clock()
            totals["loss (softmax CE, loss + grad)"] += t2 - t1
            t1 = t2
            if was_split:
                net._split.backward(g, False, first)
                t2 = clock()
                totals[f"backward: {split}, + summing their gradients"] += t2 - t1
                t1 = t2
            else:
                for i, layer in enumerate(net.layers):  # as Net.backward: stop at the first layer with parameters
                    layer.input_grad = i > first
                for i in reversed(range(first, len(net.layers))):
                    layer = net.layers[i]
                    g = layer.backward(g)
                    t2 = clock()
                    totals[f"backward: {i} {layer!r}"] += t2 - t1
                    t1 = t2
            parallel.optimizer_step(opt, net.params, net.grads, net.workers)
            t = clock()
            sharded = f", {net.workers} slices in parallel" if net.workers > 1 else ""
            totals[f"optimizer ({type(opt).__name__}.step{sharded})"] += t - t1
            steps += 1
        return steps

    # The GEMM-only floor, phase by phase: Dense i's products on arrays of the same shapes.
    dense = [(i, layer) for i, layer in enumerate(net.layers) if isinstance(layer, L.Dense)]
    rng = np.random.default_rng(0)
    sizes = [len(xb) for xb, _ in batches]
    arrays = {
        b: [(rng.standard_normal((b, d.in_features), dtype=np.float32),
             rng.standard_normal((b, d.out_features), dtype=np.float32),
             np.empty((b, d.in_features), np.float32)) for _, d in dense]
        for b in set(sizes)
    }
    ws = [(d.params["w"].copy(), np.empty_like(d.params["w"])) for _, d in dense]

    def floor_epoch() -> None:
        for b in sizes:
            t1 = clock()
            for (i, d), (xa, ya, _), (w, _) in zip(dense, arrays[b], ws, strict=True):
                np.matmul(xa, w, out=ya)
                t2 = clock()
                floor[f"forward: {i} {d!r}"] += t2 - t1
                t1 = t2
            for (i, d), (xa, ya, dx), (w, dw) in reversed(list(zip(dense, arrays[b], ws, strict=True))):
                np.matmul(xa.T, ya, out=dw)
                if i:
                    np.matmul(ya, w.T, out=dx)
                t2 = clock()
                floor[f"backward: {i} {d!r}"] += t2 - t1
                t1 = t2

    load_before = fair.load()
    tinynn_epoch()  # warm-up
    floor_epoch()
    totals.clear()
    floor.clear()
    steps, wall = 0, 0.0
    for _ in range(args.epochs):
        start = clock()
        steps += tinynn_epoch()
        wall += clock() - start
        time.sleep(0.05)
        floor_epoch()
        time.sleep(0.05)

    per_step = {k: v / steps * 1e6 for k, v in totals.items()}
    floor_step = {k: v / steps * 1e6 for k, v in floor.items()}
    if net._split is not None:  # the split phases span all layers: so does their floor
        split = f"all layers, split over {net.workers} threads"
        floor_step = {f"forward: {split}": sum(v for k, v in floor_step.items() if k.startswith("forward")),
                      f"backward: {split}, + summing their gradients":
                          sum(v for k, v in floor_step.items() if k.startswith("backward"))}
    total = sum(per_step.values())
    print(f"{args.optimizer}, {args.threads} threads, workers={args.workers}: {steps} steps, "
          f"{wall / args.epochs:.3f} s/epoch, "
          f"{wall / steps * 1e6:.0f} us/step")
    print(f"load before: {load_before}\nload after:  {fair.load()}\n")
    print("| phase | us/step | share | GEMMs alone (us/step) |")
    print("|---|---:|---:|---:|")
    for k, v in per_step.items():
        f = f"{floor_step[k]:.0f}" if k in floor_step else ""
        print(f"| {k} | {v:.0f} | {v / total:.0%} | {f} |")
    print(f"| total | {total:.0f} | 100% | {sum(floor_step.values()):.0f} |")


if __name__ == "__main__":
    main()
