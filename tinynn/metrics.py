"""Classification metrics on numpy arrays: accuracy, confusion matrix, precision/recall/F1.

Wherever labels are expected, ``(N,)`` integer labels or ``(N, C)`` scores / probabilities /
one-hot rows (reduced by argmax) are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def _labels(a: ArrayLike, what: str) -> np.ndarray:
    """``(N,)`` int labels from labels or ``(N, C)`` scores; clear errors otherwise."""
    a = np.asarray(a)
    if a.ndim == 2:
        if a.shape[1] == 1:
            raise ValueError(
                f"{what} has shape {a.shape}: one score column is ambiguous (threshold it yourself "
                "and pass labels, or pass two columns)"
            )
        return a.argmax(axis=1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be (N,) labels or (N, C) scores, got shape {a.shape}")
    if a.dtype.kind not in "iub":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            return a.astype(np.int64)
        raise ValueError(f"{what} must hold integer class labels, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _pair(
    a: ArrayLike, b: ArrayLike, names: tuple[str, str] = ("y_true", "y_pred")
) -> tuple[np.ndarray, np.ndarray]:
    """Both as ``(N,)`` int labels of equal, nonzero length."""
    t, p = _labels(a, names[0]), _labels(b, names[1])
    if len(t) != len(p):
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {len(t)} vs {len(p)}")
    if len(t) == 0:
        raise ValueError("empty input: no samples to score")
    return t, p


def accuracy(preds_or_logits: ArrayLike, targets: ArrayLike) -> float:
    """Fraction of samples whose predicted class equals the target class."""
    p, t = _pair(preds_or_logits, targets, ("preds", "targets"))
    return float(np.mean(t == p))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """``(C, C)`` int64 counts: row = true class, column = predicted class.

    ``num_classes`` defaults to the largest label seen + 1.
    """
    t, p = _pair(y_true, y_pred)
    lo = min(t.min(), p.min())
    if lo < 0:
        raise ValueError(f"class labels must be >= 0, got {lo}")
    hi = int(max(t.max(), p.max()))
    if num_classes is None:
        num_classes = hi + 1
    elif hi >= num_classes:
        raise ValueError(f"label {hi} out of range for num_classes={num_classes}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float64, 0 where ``den == 0`` (no warning)."""
    out = np.zeros(np.shape(num), dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> dict[str, np.ndarray]:
    """Per-class ``precision``, ``recall``, ``f1`` (float64, 0 where undefined) and ``support``
    (int64, number of true samples of each class)."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(cm).astype(np.float64)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    digits: int = 3,
) -> str:
    """A text table: precision, recall, F1 and support per class, then accuracy and the
    macro (plain mean) and weighted (by support) averages."""
    t, p = _pair(y_true, y_pred)
    stats = precision_recall_f1(t, p, num_classes)
    n_cls = len(stats["support"])
    if class_names is None:
        class_names = [str(i) for i in range(n_cls)]
    elif len(class_names) != n_cls:
        raise ValueError(f"class_names has {len(class_names)} names for {n_cls} classes")

    support = stats["support"]
    total = int(support.sum())
    width = max(12, *(len(name) for name in class_names))
    num = f"{{:>10.{digits}f}}"
    header = f"{'':>{width}}" + "".join(f"{h:>10}" for h in ("precision", "recall", "f1", "support"))
    lines = [header, ""]
    for i, name in enumerate(class_names):
        row = "".join(num.format(stats[k][i]) for k in ("precision", "recall", "f1"))
        lines.append(f"{name:>{width}}{row}{support[i]:>10d}")
    lines.append("")
    acc = accuracy(p, t)
    lines.append(f"{'accuracy':>{width}}{'':>20}{num.format(acc)}{total:>10d}")
    weights = support / total
    for label, avg in (("macro avg", np.mean), ("weighted avg", lambda v: np.sum(v * weights))):
        row = "".join(num.format(avg(stats[k])) for k in ("precision", "recall", "f1"))
        lines.append(f"{label:>{width}}{row}{total:>10d}")
    return "\n".join(lines)
