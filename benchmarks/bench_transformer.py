"""The language-model workload: training steps of the character-level transformer that writes names.

    python benchmarks/bench_transformer.py                     # 2 threads, 5 rounds of 50 steps
    python benchmarks/bench_transformer.py --threads 1 --workers 1
    python benchmarks/bench_transformer.py --rounds 9 --steps 100 --json out.json
    python benchmarks/bench_transformer.py --profile --threads 1 --workers 1   # where each step goes

Model (makemore's transformer recipe): Embedding(27, 64) + learned positions (16, 64), 4 pre-norm
blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))`` (4 heads, causal, MLP 64 -> 256 -> 64 with GELU
tanh), a final LayerNorm and a Dense(64, 27) head; softmax cross-entropy over the (N, T, V)
logits with ``ignore_index`` (the padding after a name does not count); AdamW(lr 5e-4, betas (0.9,
0.99), weight decay 0.01); batches of 32 names of 16 positions; float32.

PyTorch runs the same model with ``nn.Embedding``, an ``nn.Parameter`` position table,
``nn.LayerNorm``, ``nn.Linear`` and ``F.gelu(approximate="tanh")``; its attention is one
``nn.Linear(64, 192)`` for q, k, v and ``F.scaled_dot_product_attention(is_causal=True)`` (the
fused kernel ``nn.MultiheadAttention`` itself calls when it needs no weights; ``--torch-mha`` uses
``nn.MultiheadAttention(batch_first=True)`` with a causal mask instead), then
``F.cross_entropy(ignore_index=-100)`` and ``torch.optim.AdamW``.

Both frameworks train on the same batches (drawn once from ``tn.data.load_names()``), a round
being ``--steps`` steps of each in turn (``fair.interleave``: rotating order, per-round ratios,
so a shared machine's drift cancels). ``--threads`` sets BLAS and torch threads; ``--workers``
is tinynn's ``Net(workers=...)`` (its batch split over threads, default = threads).

``--profile`` times instead where a step goes: tinynn's forward and backward per layer type (summed
over the blocks), the loss and the optimizer, by timers around each call (``workers=1``); and
PyTorch's operators from ``torch.profiler`` on the same batches.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fair  # noqa: E402  (fair.setup must run before numpy is imported)

VOCAB, DIM, HEADS, BLOCKS, CONTEXT, BATCH = 27, 64, 4, 4, 16, 32
LR, BETAS, WEIGHT_DECAY, IGNORE = 5e-4, (0.9, 0.99), 0.01, -100


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--steps", type=int, default=50, help="training steps per round and framework (default 50)")
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads (default 2)")
    p.add_argument("--workers", type=int, default=None,
                   help="tinynn's Net(workers=...): the batch split over threads (default: --threads)")
    p.add_argument("--torch-mha", action="store_true",
                   help="torch attention as nn.MultiheadAttention with a causal mask (default: SDPA)")
    p.add_argument("--no-torch", action="store_true", help="do not import torch even if installed")
    p.add_argument("--profile", action="store_true", help="per-layer times (tinynn) and torch.profiler's table")
    p.add_argument("--json", metavar="PATH", help="also write all measurements as JSON")
    return p.parse_args()


def batches(steps: int):
    """``steps`` batches (x, y) of 32 encoded training names: int64 (32, 16), y padded with -100."""
    import numpy as np

    import tinynn as tn

    train, _ = tn.data.load_names()
    x, y = tn.data.encode_names(train, CONTEXT, IGNORE)
    rng = np.random.default_rng(0)
    picks = [rng.integers(0, len(x), BATCH) for _ in range(steps)]
    return [(x[i], y[i]) for i in picks]


def tinynn_model(workers: int):
    """``zoo.transformer()``, the names model of ``tinynn train --data names``, without dropout."""
    import tinynn as tn
    from tinynn import zoo

    tn.seed(0)
    net = zoo.transformer(DIM, HEADS, BLOCKS, CONTEXT, workers=workers)
    return tn.Model(net, tn.losses.SoftmaxCrossEntropy(ignore_index=IGNORE),
                    tn.optim.AdamW(lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY))


def tinynn_workload(data, workers: int) -> Callable[[], None]:
    model = tinynn_model(workers)

    def steps() -> None:
        for xb, yb in data:
            model.train_step(xb, yb)

    return steps


def tinynn_profile(data) -> list[str]:
    """Milliseconds per step in each layer type's forward and backward, the loss and the optimizer."""
    import time
    from collections import defaultdict

    model = tinynn_model(1)
    net, clock = model.net, time.perf_counter
    totals: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable) -> Callable:
        def call(arg):
            start = clock()
            out = fn(arg)
            totals[name] += clock() - start
            return out
        return call

    for _, layer in net.named_layers():
        if not layer.sublayers():  # leaves only: a block's time is its layers' time
            kind = type(layer).__name__
            layer.forward = timed(f"{kind} forward", layer.forward)
            layer.backward = timed(f"{kind} backward", layer.backward)
    for xb, yb in data[:2]:  # warm-up: scratch arrays allocated
        model.train_step(xb, yb)
    totals.clear()
    start = clock()
    for xb, yb in data:
        preds = net.forward(xb)
        t0 = clock()
        _, grad = model.loss.loss_and_grad(preds, yb)
        t1 = clock()
        net.backward(grad)
        t2 = clock()
        model.apply_grads(net.grads)
        totals["loss"] += t1 - t0
        totals["optimizer (AdamW)"] += clock() - t2
    total = (clock() - start) / len(data) * 1e3
    rows = ["| tinynn phase | ms / step | share |", "|---|---:|---:|"]
    for name, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        ms = sec / len(data) * 1e3
        rows.append(f"| {name} | {ms:.2f} | {ms / total:.0%} |")
    rows.append(f"| whole step (with the timers) | {total:.2f} | 100% |")
    return rows


def torch_workload(torch, data, mha: bool) -> Callable[[], None]:
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
            if mha:
                self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
                self.register_buffer("mask", torch.triu(torch.ones(CONTEXT, CONTEXT, dtype=torch.bool), 1))
            else:
                self.qkv, self.proj = nn.Linear(DIM, 3 * DIM), nn.Linear(DIM, DIM)
            self.fc, self.out = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

        def attend(self, h):
            n, t, e = h.shape
            if mha:
                return self.attn(h, h, h, attn_mask=self.mask[:t, :t], need_weights=False)[0]
            q, k, v = (p.view(n, t, HEADS, e // HEADS).transpose(1, 2) for p in self.qkv(h).split(e, dim=2))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(a.transpose(1, 2).reshape(n, t, e))

        def forward(self, x):
            x = x + self.attend(self.ln_1(x))
            return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))

    class Transformer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(VOCAB, DIM)
            self.pos = nn.Parameter(torch.randn(CONTEXT, DIM))
            self.blocks = nn.Sequential(*[Block() for _ in range(BLOCKS)])
            self.ln_f, self.head = nn.LayerNorm(DIM), nn.Linear(DIM, VOCAB)

        def forward(self, idx):
            x = self.tok(idx) + self.pos[: idx.shape[1]]
            return self.head(self.ln_f(self.blocks(x)))

    model = Transformer()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)
    tensors = [(torch.from_numpy(xb), torch.from_numpy(yb)) for xb, yb in data]

    def steps() -> None:
        for xb, yb in tensors:
            logits = model(xb)
            loss = F.cross_entropy(logits.view(-1, VOCAB), yb.view(-1), ignore_index=IGNORE)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return steps


def main() -> None:
    args = parse_args()
    workers = args.threads if args.workers is None else args.workers
    fair.setup(args.threads)  # thread counts and OPENBLAS_THREAD_TIMEOUT, before numpy loads OpenBLAS

    import numpy as np

    limiter, torch = fair.limit_threads(args.threads, use_torch=not args.no_torch)

    data = batches(args.steps)
    cpu, load = fair.cpu_name(), fair.load()
    if args.profile:
        print(f"{cpu}; {args.steps} steps, {args.threads} threads; uptime: {load}\n")
        print("\n".join(tinynn_profile(data)))
        if torch is not None:
            steps = torch_workload(torch, data, args.torch_mha)
            steps()  # warm-up
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                steps()
            print(f"\nPyTorch, {args.steps} steps (self CPU time: the operators, not their callers):\n")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        del limiter
        return
    attn = "nn.MultiheadAttention" if args.torch_mha else "scaled_dot_product_attention"
    print(f"{cpu}; numpy {np.__version__}" + (f", torch {torch.__version__} ({attn})" if torch else "") +
          f"; threads={args.threads}, workers={workers}; uptime: {load}", file=sys.stderr)

    workloads = {"tinynn": tinynn_workload(data, workers)}
    if torch is not None:
        workloads["torch"] = torch_workload(torch, data, args.torch_mha)
    t = fair.interleave(args.rounds, workloads, warmup=args.warmup)
    load_after = fair.load()

    rows = ["| workload | median ms / step | rounds (ms / step) |", "|---|---:|---|"]
    for k, v in t.times.items():
        per = [s / args.steps * 1e3 for s in v]
        rows.append(f"| {k} | {t.median(k) / args.steps * 1e3:.1f} | {', '.join(f'{s:.1f}' for s in per)} |")
    result: dict = {"cpu": cpu, "times": t.times, "steps": args.steps, "threads": args.threads, "workers": workers,
                    "torch_attention": attn if torch else None, "uptime_before": load, "uptime_after": load_after}
    if "torch" in t.times:
        r = t.ratio("tinynn", "torch")
        result["tinynn / torch"] = t.ratios("tinynn", "torch")
        rows.append(f"| tinynn / torch, per-round ratio | **{r.median:.2f}x** | {r.low:.2f}x .. {r.high:.2f}x |")
    print(f"\n{cpu}: {args.steps} steps of batch {BATCH}x{CONTEXT} per round, {args.threads} threads "
          f"(tinynn workers={workers}), medians of {args.rounds} rounds after {args.warmup} warm-up; "
          f"uptime before: {load}; after: {load_after}\n")
    print("\n".join(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    del limiter


if __name__ == "__main__":
    main()
