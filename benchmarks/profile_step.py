"""Where the time of one training step goes: batching, each layer's forward and backward, the loss,
the optimizer. Manual timers around each phase of the reference workload (MNIST, 784-256-128-10
ReLU MLP, batch 128), summed over epochs and reported per step.

    python benchmarks/profile_step.py --optimizer adam --epochs 3 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--optimizer", choices=("adam", "sgdm", "sgd"), default="adam")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch (default 3)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np

    import tinynn as tn
    from tinynn import layers as L

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass

    (x, y), _ = tn.data.load_mnist(dtype=np.uint8)
    tn.seed(0)
    net = tn.Net([L.Dense(784, 256), L.ReLU(), L.Dense(256, 128), L.ReLU(), L.Dense(128, 10)])
    opt = {
        "adam": lambda: tn.optim.Adam(lr=1e-3),
        "sgdm": lambda: tn.optim.SGDm(lr=0.1, momentum=0.9),
        "sgd": lambda: tn.optim.SGD(lr=0.1),
    }[args.optimizer]()
    loss = tn.losses.SoftmaxCrossEntropy()
    batches = tn.data.BatchIterator(128)(x, y)

    clock = time.perf_counter
    totals: dict[str, float] = defaultdict(float)
    steps = 0
    for epoch in range(args.epochs + 1):
        if epoch == 1:  # epoch 0 warms up
            totals.clear()
            steps = 0
            start_all = clock()
        t = clock()
        for xb, yb in batches:
            t0 = clock()
            totals["batching (BatchIterator)"] += t0 - t
            h = net._check_input(xb)
            t1 = clock()
            totals["forward: input check"] += t1 - t0
            for i, layer in enumerate(net.layers):
                h = layer.forward(h)
                t2 = clock()
                totals[f"forward: {i} {layer!r}"] += t2 - t1
                t1 = t2
            preds = h.copy()
            value, g = loss.loss_and_grad(preds, yb)
            t2 = clock()
            totals["loss (softmax CE, loss + grad)"] += t2 - t1
            t1 = t2
            net.layers[0].input_grad = False
            for i in reversed(range(len(net.layers))):
                layer = net.layers[i]
                g = layer.backward(g)
                t2 = clock()
                totals[f"backward: {i} {layer!r}"] += t2 - t1
                t1 = t2
            opt.step(net.params, net.grads)
            t = clock()
            totals[f"optimizer ({type(opt).__name__}.step)"] += t - t1
            steps += 1
    wall = clock() - start_all

    per_step = {k: v / steps * 1e6 for k, v in totals.items()}
    total = sum(per_step.values())
    print(f"{args.optimizer}, {args.threads} threads: {steps} steps, {wall / args.epochs:.3f} s/epoch, "
          f"{wall / steps * 1e6:.0f} us/step\n")
    print("| phase | us/step | share |")
    print("|---|---:|---:|")
    for k, v in per_step.items():
        print(f"| {k} | {v:.0f} | {v / total:.0%} |")
    print(f"| total | {total:.0f} | 100% |")


if __name__ == "__main__":
    main()
