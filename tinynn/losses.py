"""Losses: ``loss(preds, targets) -> float`` and ``grad(preds, targets) -> dL/dpreds``.

Every loss is a mean (over the batch, and over outputs where torch averages them too), so the
gradient carries the matching ``1 / N`` factor. ``loss_and_grad`` returns both and is what
:class:`tinynn.Model` calls; losses that can share work between the two override it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from .registry import Registry


class Loss:
    """Base class: subclasses implement ``loss_and_grad`` (or ``loss`` and ``grad``)."""

    def loss(self, preds: np.ndarray, targets: np.ndarray) -> float:
        return self.loss_and_grad(preds, targets)[0]

    def grad(self, preds: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self.loss_and_grad(preds, targets)[1]

    def loss_and_grad(self, preds: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def __call__(self, preds: np.ndarray, targets: np.ndarray) -> float:
        return self.loss(preds, targets)

    def count_correct(self, preds: np.ndarray, targets: np.ndarray) -> tuple[int, int] | None:
        """``(correct, scored)`` predictions of a batch, for accuracy; None if the loss is not a classifier's."""
        return None

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able data (``from_config`` rebuilds the loss)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _check_preds(self, preds: np.ndarray) -> np.ndarray:
        preds = np.asarray(preds)
        if preds.dtype.kind != "f":
            raise TypeError(f"{self!r}: preds must be floating point, got dtype {preds.dtype}")
        if preds.ndim == 0 or preds.shape[0] == 0:
            raise ValueError(f"{self!r} got an empty batch: preds of shape {preds.shape}")
        if not np.isfinite(preds).all():
            raise ValueError(f"{self!r}: preds contain NaN or Inf (did training diverge? try a lower lr)")
        return preds

    def _check_same_shape(self, preds: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Float targets shaped like preds; (N,) targets are accepted for (N, 1) preds."""
        preds = self._check_preds(preds)
        targets = np.asarray(targets)
        if targets.shape != preds.shape and targets.shape + (1,) == preds.shape:
            targets = targets.reshape(preds.shape)
        if targets.shape != preds.shape:
            raise ValueError(
                f"{self!r}: preds of shape {preds.shape} and targets of shape {targets.shape} differ"
            )
        if targets.dtype != preds.dtype:
            targets = targets.astype(preds.dtype)
        self._check_finite_targets(targets)
        return preds, targets

    def _check_finite_targets(self, targets: np.ndarray) -> None:
        """A ValueError saying which non-finite value (NaN or Inf) comes first, and where."""
        if targets.dtype.kind == "f" and not np.isfinite(targets).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(targets))[0])
            value = targets[where]
            raise ValueError(
                f"{self!r}: targets contain {'NaN' if np.isnan(value) else value} "
                f"(first at index {where[0] if len(where) == 1 else where})"
            )


LOSSES: Registry = Registry("loss", Loss, "tn.losses.register_loss")
"""Every loss class a checkpoint may name: class name -> class. Fill it with ``register_loss``."""

T = TypeVar("T", bound=type[Loss])


def register_loss(cls: T) -> T:
    """Class decorator: make ``cls`` loadable by name from a checkpoint (``cls.from_config(cls().get_config())``)."""
    return LOSSES.register(cls)


@register_loss
class MSE(Loss):
    """Mean squared error ``mean((p - t)^2)``; ``dL/dp = 2 (p - t) / n`` (n = number of entries)."""

    def loss_and_grad(self, preds, targets):
        preds, targets = self._check_same_shape(preds, targets)
        diff = preds - targets
        loss = float(np.vdot(diff, diff)) / diff.size
        diff *= 2.0 / diff.size
        return loss, diff


@register_loss
class MAE(Loss):
    """Mean absolute error ``mean(|p - t|)``; ``dL/dp = sign(p - t) / n``."""

    def loss_and_grad(self, preds, targets):
        preds, targets = self._check_same_shape(preds, targets)
        diff = preds - targets
        loss = float(np.abs(diff).sum()) / diff.size
        np.sign(diff, out=diff)
        diff /= diff.size
        return loss, diff


@register_loss
class Huber(Loss):
    """Huber loss with threshold ``delta`` (as torch's ``HuberLoss``), averaged over entries.

    With ``d = p - t``: ``d^2 / 2`` where ``|d| <= delta``, else ``delta (|d| - delta/2)``.
    ``dL/dp = clip(d, -delta, delta) / n``.
    """

    def __init__(self, delta: float = 1.0) -> None:
        if not delta > 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def loss_and_grad(self, preds, targets):
        preds, targets = self._check_same_shape(preds, targets)
        d = preds - targets
        a = np.abs(d)
        small = a <= self.delta
        loss = float(np.where(small, 0.5 * d * d, self.delta * (a - 0.5 * self.delta)).sum()) / d.size
        np.clip(d, -self.delta, self.delta, out=d)
        d /= d.size
        return loss, d

    def get_config(self):
        return {"delta": self.delta}


@register_loss
class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of ``softmax(logits)`` against labels, averaged over the labels that count.

    Logits are (N, C), or (N, T, C) for a sequence (any (N, ..., C): the classes are on the LAST
    axis, as a layer's output has them; torch's ``cross_entropy`` wants them on axis 1). Targets
    are integer labels shaped like the logits without their last axis, or probability rows shaped
    like the logits (e.g. one-hot). With label smoothing ``eps`` the target becomes
    ``(1 - eps) * onehot + eps / C`` (as torch).
    ``L = -mean_i sum_c t_ic log softmax(z_i)_c``, computed as a stable log-softmax:
    ``log softmax(z) = z - max(z) - log(sum(exp(z - max(z))))``.
    ``dL/dz_i = (softmax(z_i) - t_i) / M`` (derivation in docs/losses.md), M the number of terms.

    ``ignore_index`` (torch's semantics and default, -100): a label equal to it contributes neither
    loss nor gradient, and the mean runs over the M labels that are not ignored (padding after the
    end of a name must not count). If every label of a batch is ignored there is nothing to average:
    torch returns NaN, tinynn raises a ValueError (a NaN would silently spread into the parameters,
    and such a batch is a data bug). Probability targets have no ignore_index (as torch).
    """

    def __init__(self, label_smoothing: float = 0.0, ignore_index: int = -100) -> None:
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"SoftmaxCrossEntropy: label_smoothing must be in [0, 1], got {label_smoothing}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(f"SoftmaxCrossEntropy: ignore_index must be an integer, got {ignore_index!r}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(ignore_index)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing, "ignore_index": self.ignore_index}

    def count_correct(self, preds, targets):
        """A prediction is correct when the largest logit is the target class (argmax of probability rows);
        ignored labels are not scored."""
        targets = np.asarray(targets)
        guess = np.asarray(preds).argmax(axis=-1)
        if targets.shape == np.shape(preds):
            return int(np.count_nonzero(guess == targets.argmax(axis=-1))), guess.size
        scored = targets != self.ignore_index
        return int(np.count_nonzero((guess == targets) & scored)), int(np.count_nonzero(scored))

    def _targets(self, preds: np.ndarray, targets: Any) -> np.ndarray:
        """Validate targets; return int labels shaped ``preds.shape[:-1]`` or float probabilities like preds."""
        targets = np.asarray(targets)
        n, c = preds.shape[0], preds.shape[-1]
        if targets.shape[:1] != (n,):
            raise ValueError(
                f"{self!r}: preds have batch size {n} (shape {preds.shape}) but targets have "
                f"shape {targets.shape}"
            )
        if targets.ndim == preds.ndim:
            if targets.shape != preds.shape:
                raise ValueError(f"{self!r}: one-hot targets of shape {targets.shape} do not match preds {preds.shape}")
            targets = targets.astype(preds.dtype, copy=False)
            self._check_finite_targets(targets)
            self._check_rows_sum_to_one(targets.reshape(-1, c))
            return targets
        if targets.shape != preds.shape[:-1]:
            want = "labels (N,) or one-hot (N, C)" if preds.ndim == 2 else f"labels {preds.shape[:-1]} or one-hot"
            raise ValueError(f"{self!r}: targets must be {want} for preds of shape {preds.shape}, "
                             f"got shape {targets.shape}")
        if targets.dtype.kind == "f":
            bad = ~np.isfinite(targets) | (targets != np.round(targets))
            if bad.any():
                i = np.unravel_index(int(np.argmax(bad)), bad.shape)
                i = i[0] if len(i) == 1 else tuple(int(k) for k in i)
                what = "NaN label" if np.isnan(targets[i]) else f"non-integer label {targets[i]}"
                raise ValueError(f"{self!r}: {what} at index {i}; labels must be integers 0..{c - 1}")
            targets = targets.astype(np.int64)
        elif targets.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: labels must be integers, got dtype {targets.dtype}")
        counted = targets[targets != self.ignore_index]
        if counted.size == 0:
            raise ValueError(
                f"{self!r}: every label of the batch equals ignore_index={self.ignore_index}: there is no loss "
                "to average (torch would return NaN)"
            )
        lo, hi = int(counted.min()), int(counted.max())
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{self!r}: label {bad} out of range for {c} classes (expected 0..{c - 1})")
        return targets

    def _check_rows_sum_to_one(self, t: np.ndarray) -> None:
        """Soft targets must be probability rows: ``dL/dz = softmax(z) - t`` holds only if each row sums to 1
        (in general it is ``softmax(z) * sum(t) - t``), so anything else would get a wrong gradient."""
        tol = np.sqrt(np.finfo(t.dtype).eps)  # 3.5e-4 in float32, 1.5e-8 in float64
        sums = t.sum(axis=1)
        off = np.abs(sums - 1) > tol
        if off.any() or (t < 0).any():
            i = int(np.argmax(off)) if off.any() else int(np.argwhere(t < 0)[0, 0])
            raise ValueError(
                f"{self!r}: target rows must be probabilities (entries >= 0, each row summing to 1); "
                f"row {i} sums to {sums[i]:.6g} and its smallest entry is {t[i].min():.6g}"
            )

    def loss_and_grad(self, preds, targets):
        preds = self._check_preds(preds)
        if preds.ndim < 2:
            raise ValueError(f"{self!r}: preds must be logits of shape (N, C) or (N, T, C), got {preds.shape}")
        targets = self._targets(preds, targets)
        shape, c = preds.shape, preds.shape[-1]
        eps = self.label_smoothing

        z = preds.reshape(-1, c)  # one row per prediction (per time step of a sequence)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        sum_exp = p.sum(axis=1, keepdims=True)
        log_sum = np.log(sum_exp)
        p /= sum_exp  # softmax
        # log softmax = z - log_sum; only the entries the targets weight are needed.
        if targets.ndim == preds.ndim - 1:
            labels = targets.reshape(-1)
            keep = labels != self.ignore_index
            rows, labels = np.flatnonzero(keep), labels[keep]
            m = len(rows)
            nll = log_sum[rows, 0] - z[rows, labels]
            loss = (1 - eps) * nll.sum()
            if eps:
                loss += eps * (log_sum[rows, 0] - z[rows].mean(axis=1)).sum()
                p -= eps / c
            p[rows, labels] -= 1 - eps
            if m < len(p):
                p[~keep] = 0  # an ignored label: no gradient
        else:
            t = targets.reshape(-1, c)
            m = len(t)
            if eps:
                t = (1 - eps) * t + eps / c
            loss = (t * (log_sum - z)).sum()
            p -= t
        p /= m
        return float(loss) / m, p.reshape(shape)


@register_loss
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on logits (as torch's ``BCEWithLogitsLoss``), averaged over entries.

    ``L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))`` is ``-t log s - (1 - t) log(1 - s)``
    with ``s = sigmoid(z)``, rewritten so no exp overflows for large |z|. ``dL/dz = (s - t) / n``.
    With ``e = exp(-|z|)`` (shared with the loss), ``s = 1 / (1 + e)`` for ``z >= 0`` and
    ``e / (1 + e)`` for ``z < 0``: full relative precision in the far tails, no overflow.
    """

    def loss_and_grad(self, preds, targets):
        z, t = self._check_same_shape(preds, targets)
        if ((t < 0) | (t > 1)).any():
            raise ValueError(f"{self!r}: targets must be in [0, 1], got values in [{t.min()}, {t.max()}]")
        e = np.exp(-np.abs(z))  # in (0, 1]: cannot overflow
        loss = float((np.maximum(z, 0) - z * t + np.log1p(e)).sum()) / z.size
        s = np.greater_equal(z, 0, out=np.empty_like(z))  # 1.0 / 0.0, straight into a float array
        np.maximum(s, e, out=s)  # numerator: 1 where z >= 0, e where z < 0
        e += 1
        s /= e  # sigmoid(z) = 1 / (1 + e) or e / (1 + e): tiny but exact far left
        s -= t
        s /= z.size
        return loss, s

    def count_correct(self, preds, targets):
        """Correct when the logit's sign matches the target's side of 0.5 (logit > 0 <=> p > 0.5)."""
        hit = (preds > 0) == (np.reshape(targets, np.shape(preds)) > 0.5)
        return int(np.count_nonzero(hit)), hit.size


def from_config(config: dict[str, Any]) -> Loss:
    """Rebuild a registered loss from ``{"type": name, "config": {...}}``."""
    return LOSSES.lookup(config.get("type")).from_config(config.get("config", {}))
