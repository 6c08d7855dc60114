"""Character-level language models on the bundled names: the loss per character, the counted bigram,
sampling, and the two commands ``tinynn train --data names`` and ``tinynn sample``.

A names model maps (N, T) character indices to (N, T, 27) logits; position t predicts character t+1
(:func:`tinynn.data.encode_names`). Its loss is the mean negative log-likelihood per character, in
nats, over the characters and stop tokens of the names (padding ignored)::

    NLL = -(1 / M) * sum over the M scored positions of log p(y_t | x_0 .. x_t),  perplexity = exp(NLL)
"""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import zoo
from .data.names import BLOCK_SIZE, STOP, VOCAB, encode_names, load_names
from .net import Net
from .run import Run
from .runs import CHECKPOINT, NAMES_DATA, names_defaults, read_run

SAMPLES_SHOWN = 10  # names printed at the end of a training run


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """``z - max(z) - log(sum(exp(z - max(z))))`` over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll_sum(net: Net, x: np.ndarray, y: np.ndarray, ignore_index: int = -100,
            batch_size: int = 1024) -> tuple[float, int]:
    """``(sum of -log p(y | x), count)`` over the targets of ``y`` that are not ``ignore_index``.

    In eval mode (dropout off), ``batch_size`` names at a time; the net's mode is restored. The mean
    per character is ``sum / count`` exactly (not a mean of batch means).
    """
    was_training = net.training
    net.eval()
    total, count = 0.0, 0
    try:
        for i in range(0, len(x), batch_size):
            yb = y[i : i + batch_size]
            logp = log_softmax(net.forward(x[i : i + batch_size]))
            keep = yb != ignore_index
            total -= float(np.take_along_axis(logp[keep], yb[keep][:, None], axis=1).sum())
            count += int(keep.sum())
    finally:
        net.free_scratch()
        if was_training:
            net.train()
    return total, count


def mean_nll(net: Net, names: Sequence[str]) -> float:
    """The mean negative log-likelihood per character (nats) of ``net`` on ``names``."""
    total, count = nll_sum(net, *encode_names(names))
    return total / count


def counted_bigram(names: Sequence[str], smoothing: float = 1.0) -> np.ndarray:
    """The bigram model in closed form: ``log P[a, b]``, the log-probability of ``b`` after ``a``.

    ``P[a, b] = (count(a b) + smoothing) / sum_c (count(a c) + smoothing)``, counted over
    ``. n a m e .`` for every name (makemore adds 1 to every count, so no bigram has probability 0).
    """
    counts = np.zeros((len(VOCAB), len(VOCAB)))
    x, y = encode_names(names)
    keep = y != -100
    np.add.at(counts, (x[keep], y[keep]), 1)
    counts += smoothing
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def table_nll(log_p: np.ndarray, names: Sequence[str]) -> float:
    """Mean negative log-likelihood per character of a bigram table ``log_p`` on ``names``."""
    x, y = encode_names(names)
    keep = y != -100
    return float(-log_p[x[keep], y[keep]].mean())


def sample(net: Net, n: int, temperature: float = 1.0, top_k: int | None = None, seed: int | None = None,
           prompt: str = "", context: int = BLOCK_SIZE) -> list[str]:
    """``n`` names drawn from ``net`` one character at a time, starting from the start token (and ``prompt``).

    At each step the logits of the next character are divided by ``temperature`` (< 1 sharpens the
    distribution, > 1 flattens it), all but the ``top_k`` largest are dropped (None keeps all), and
    a character is drawn from their softmax with ``np.random.default_rng(seed)``. A name ends at
    the stop token or when its input reaches ``context`` positions.
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"sample: temperature must be a number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"sample: top_k must be an integer >= 1 (or None for all), got {top_k!r}")
    if not isinstance(prompt, str) or not set(prompt) <= set(VOCAB[1:]):
        raise ValueError(f"sample: prompt must be letters a..z, got {prompt!r}")
    if len(prompt) >= context:
        raise ValueError(f"sample: prompt {prompt!r} is longer than the context of {context - 1} characters")
    rng = np.random.default_rng(seed)
    seqs = np.zeros((n, 1 + len(prompt)), dtype=np.int64)
    seqs[:, 1:] = [VOCAB.index(c) for c in prompt]
    done = np.zeros(n, dtype=bool)
    was_training = net.training
    net.eval()
    try:
        while not done.all():
            logits = np.asarray(net.forward(seqs)[:, -1], dtype=np.float64) / temperature
            if top_k is not None and top_k < logits.shape[1]:
                kth = np.sort(logits, axis=1)[:, -top_k][:, None]
                logits = np.where(logits < kth, -np.inf, logits)
            p = np.exp(log_softmax(logits))
            nxt = (p.cumsum(axis=1) < rng.random((n, 1)) * p.sum(axis=1, keepdims=True)).sum(axis=1)
            nxt = np.where(done, STOP, np.minimum(nxt, len(VOCAB) - 1))
            done |= nxt == STOP
            if seqs.shape[1] == context:  # the model sees no further: the name ends here
                break
            seqs = np.concatenate([seqs, nxt[:, None]], axis=1)
    finally:
        net.free_scratch()
        if was_training:
            net.train()
    return ["".join(VOCAB[i] for i in row[1:]).split(".")[0] for row in seqs.tolist()]


def marked(names: Sequence[str], training: set[str]) -> list[str]:
    """Each name, followed by ``*`` if it occurs in ``training`` (the model may have memorised it)."""
    return [f"{name}{' *' if name in training else ''}" for name in names]


# --- tinynn train --data names -----------------------------------------------------------------


def build_net(args: argparse.Namespace) -> Net:
    """The ``--model`` builder of :data:`tinynn.zoo.NAMES_NETS`, with ``--dropout`` if it takes one."""
    build = zoo.NAMES_NETS[args.model]
    accepted = inspect.signature(build).parameters
    return build(**({"dropout": args.dropout} if "dropout" in accepted else {}))


def _optimizer_and_scheduler(args: argparse.Namespace, steps: int) -> tuple[Any, Any, str]:
    import tinynn as tn

    own = names_defaults(args.model)
    kwargs: dict[str, Any] = {"lr": args.lr}
    if args.optimizer in ("adam", "adamw"):
        kwargs["betas"] = tuple(own["betas"])
        kwargs["weight_decay"] = args.weight_decay
    elif args.weight_decay:
        kwargs["weight_decay"] = args.weight_decay
    optimizer = tn.optim.get(args.optimizer, **kwargs)
    sched = tn.optim.lr_scheduler
    if args.scheduler in ("cosine", "warmup-cosine"):  # names runs always warm up first
        warmup = min(int(own["warmup"]), steps // 10)  # a short run warms up over a tenth of it
        cosine = sched.CosineAnnealingLR(optimizer, T_max=steps - warmup)
        if not warmup:
            return optimizer, cosine, "batch"
        ramp = sched.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup)
        return optimizer, sched.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup]), "batch"
    if args.scheduler == "step":
        milestones = sorted({max(1, args.epochs // 2), max(1, 3 * args.epochs // 4)})
        return optimizer, sched.MultiStepLR(optimizer, milestones, gamma=0.1), "epoch"
    return optimizer, None, "epoch"


class NamesRun(Run):
    """``tinynn train --data names``: a language model of :data:`tinynn.zoo.NAMES_NETS` on the bundled names, in
    the run folder of :mod:`tinynn.runs`, through the steps of :mod:`tinynn.run`; validated and scored on the test
    names (mean NLL per character)."""

    nets = zoo.NAMES_NETS
    input_shape = (BLOCK_SIZE,)

    def wrong_model(self, model: str) -> str:
        return f"--model {model} is an MNIST net; --data names trains {', '.join(zoo.NAMES_NETS)}"

    def results_line(self, results: dict) -> str:
        return f"test loss: {results['test_loss']:.4f} nats per character"

    def data(self) -> tuple[np.ndarray, np.ndarray, tuple]:
        self.train_names, self.test_names = load_names()
        if self.args.limit is not None:
            self.train_names = self.train_names[: self.args.limit]
        x, y = encode_names(self.train_names)
        return x, y, encode_names(self.test_names)  # validation: the test names

    def new_model(self, n_train: int) -> Any:
        import tinynn as tn

        args = self.args
        try:
            net = build_net(args)
        except (ValueError, MemoryError, ImportError) as e:
            self.parser.error(f"cannot build --model {args.model}: {e}")
        optimizer, scheduler, interval = _optimizer_and_scheduler(args, args.epochs * -(-n_train // args.batch_size))
        model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer, gradient_clip=args.gradient_clip)
        model.scheduler, model.scheduler_interval = scheduler, interval
        return model

    def intro(self, n_train: int) -> str:
        args = self.args
        return (f"training on {len(self.train_names):,} names ({-(-n_train // args.batch_size)} steps an epoch), "
                f"val = the {len(self.test_names):,} test names; {args.optimizer} lr={args.lr:g}, "
                f"scheduler={args.scheduler}, batch size {args.batch_size}, {args.epochs} epochs")

    def score(self) -> dict:
        return {"test_loss": mean_nll(self.model.net, self.test_names),
                "train_loss": mean_nll(self.model.net, self.train_names)}

    def title(self) -> str:
        return f"{self.args.model} on names (validation = test names)"

    def report(self, results: dict, verbose: int) -> None:
        if verbose:
            names = sample(self.model.net, SAMPLES_SHOWN, seed=self.args.seed)
            print("samples (* = in the training set): " + ", ".join(marked(names, set(self.train_names))))
        print(f"train loss: {results['train_loss']:.4f}   test loss: {results['test_loss']:.4f} nats per character "
              f"(perplexity {math.exp(results['test_loss']):.2f})")


# --- tinynn sample -----------------------------------------------------------------------------


def add_sample_parser(sub: Any) -> None:
    """Add ``tinynn sample`` to the ``tinynn`` command's subparsers."""
    from .runs import nonneg_int, positive_int

    sp = sub.add_parser(
        "sample",
        help="sample names from a language model trained with 'tinynn train --data names'",
        description="Draw names from the model of a names run, one character at a time. A name that occurs "
        "in the training set is marked with '*'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sp.add_argument("run_dir", metavar="RUN", help="run folder of 'tinynn train --data names'")
    sp.add_argument("-n", type=positive_int, default=20, help="how many names")
    sp.add_argument("--temperature", type=float, default=1.0,
                    help="divide the logits by it: < 1 more typical names, > 1 more surprising ones (> 0)")
    sp.add_argument("--top-k", type=int, default=None, metavar="K", help="draw among the K likeliest characters")
    sp.add_argument("--seed", type=nonneg_int, default=None, help="random seed (default: a fresh one)")
    sp.add_argument("--prompt", default=None, help="the first letters of every name")
    sp.set_defaults(run=sample_command)


def sample_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    import tinynn as tn

    if not (math.isfinite(args.temperature) and args.temperature > 0):
        parser.error(f"--temperature must be > 0, got {args.temperature:g}")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    if args.prompt is not None and not args.prompt:
        parser.error("--prompt is empty: give the first letters of the names, or leave --prompt out")
    if args.prompt and not set(args.prompt) <= set(VOCAB[1:]):
        parser.error(f"--prompt must be lowercase letters a..z, got {args.prompt!r}")
    folder = Path(args.run_dir)
    try:
        record = read_run(folder)
    except ValueError as e:
        parser.error(str(e))
    if record.get("data") != NAMES_DATA:
        parser.error(f"{folder} is not a names run (it was trained on {record.get('data') or 'MNIST'}); "
                     "train one with 'tinynn train --data names'")
    path = folder / CHECKPOINT
    if not path.is_file():
        parser.error(f"{folder} has no {CHECKPOINT} (no epoch finished yet?)")
    try:
        model = tn.Model.load(path, restore_rng=False)
    except (ValueError, OSError) as e:
        parser.error(f"cannot load {path}: {e}")
    try:
        names = sample(model.net, args.n, args.temperature, args.top_k, args.seed, args.prompt or "")
    except ValueError as e:
        parser.error(str(e))
    train, _ = load_names()
    for line in marked(names, set(train)):
        print(line)
