"""PyTorch's side of the per-layer profile: where one training step of the same net goes in torch.

    python benchmarks/profile_torch.py --model cnn --threads 1 --steps 50
    python benchmarks/profile_torch.py --model lstm --threads 1 --steps 50

Runs ``--steps`` training steps (batch 128, Adam, float32, random MNIST-shaped data) of LeNet-5 or
the row-LSTM-128 under ``torch.profiler`` after a few untimed ones, and prints torch's operators
by self CPU time per step (forward ops such as ``aten::mkldnn_convolution``, their backward ops
such as ``ConvolutionBackward0``, and ``Optimizer.step``). Put it beside
``profile_step.py --model cnn|lstm`` at the same thread count: the two tables name the same
layers' forward and backward, so the line where tinynn loses most is the one to work on.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("cnn", "lstm"), default="cnn")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rows", type=int, default=25, help="operators shown (default 25)")
    args = p.parse_args()
    fair.setup(args.threads)

    import torch
    from torch import nn
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = fair.torch_lenet5() if args.model == "cnn" else fair.torch_row_lstm()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"torch {torch.__version__}, {args.model}, threads={args.threads}, {args.steps} steps; "
          f"CPU: {fair.cpu_name()}; load: {fair.load()}\n")
    print("| operator | calls/step | self CPU us/step | share |\n|---|---:|---:|---:|")
    for e in events[: args.rows]:
        print(f"| {e.key} | {e.count / args.steps:.0f} | {e.self_cpu_time_total / args.steps:.0f} | "
              f"{e.self_cpu_time_total / total:.0%} |")
    print(f"| total (all operators) | | {total / args.steps:.0f} | 100% |")


if __name__ == "__main__":
    main()
