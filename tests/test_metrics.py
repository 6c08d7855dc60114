"""tinynn.metrics on small hand-computed examples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tinynn.metrics import accuracy, classification_report, confusion_matrix, precision_recall_f1

# true:  0 1 2 2 1 0 2
# pred:  0 2 2 2 1 1 0   -> 4 right out of 7
Y_TRUE = np.array([0, 1, 2, 2, 1, 0, 2])
Y_PRED = np.array([0, 2, 2, 2, 1, 1, 0])
CM = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 2]])


def test_accuracy_labels_scores_and_one_hot():
    assert accuracy(Y_PRED, Y_TRUE) == pytest.approx(4 / 7)
    logits = np.eye(3)[Y_PRED] * 5 - 1  # argmax = Y_PRED
    one_hot = np.eye(3, dtype=np.float32)[Y_TRUE]
    assert accuracy(logits, Y_TRUE) == pytest.approx(4 / 7)
    assert accuracy(logits, one_hot) == pytest.approx(4 / 7)
    assert accuracy(Y_TRUE, Y_TRUE) == 1.0
    assert isinstance(accuracy(Y_PRED, Y_TRUE), float)


def test_confusion_matrix():
    cm = confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM)
    cm5 = confusion_matrix(Y_TRUE, Y_PRED, num_classes=5)
    assert cm5.shape == (5, 5) and cm5[:3, :3].tolist() == CM.tolist() and cm5[3:].sum() == 0
    # rows are the true class: one sample of class 1 predicted as 0
    np.testing.assert_array_equal(confusion_matrix([1], [0], num_classes=2), [[0, 0], [1, 0]])


def test_precision_recall_f1():
    r = precision_recall_f1(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(r["precision"], [1 / 2, 1 / 2, 2 / 3])
    np.testing.assert_allclose(r["recall"], [1 / 2, 1 / 2, 2 / 3])
    np.testing.assert_allclose(r["f1"], [1 / 2, 1 / 2, 2 / 3])
    np.testing.assert_array_equal(r["support"], [2, 2, 3])
    assert r["support"].dtype == np.int64


def test_precision_recall_f1_undefined_is_zero_without_warnings():
    # class 1: never predicted (precision 0/0); class 2: never present nor predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = precision_recall_f1([0, 0, 1], [0, 0, 0], num_classes=3)
    np.testing.assert_allclose(r["precision"], [2 / 3, 0, 0])
    np.testing.assert_allclose(r["recall"], [1, 0, 0])
    np.testing.assert_allclose(r["f1"], [0.8, 0, 0])
    np.testing.assert_array_equal(r["support"], [2, 1, 0])


def test_classification_report():
    text = classification_report(Y_TRUE, Y_PRED, class_names=["cat", "dog", "bird"])
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1", "support"]
    bird = next(line for line in lines if line.strip().startswith("bird"))
    assert bird.split() == ["bird", "0.667", "0.667", "0.667", "3"]
    acc = next(line for line in lines if "accuracy" in line)
    assert acc.split() == ["accuracy", "0.571", "7"]
    macro = next(line for line in lines if "macro avg" in line)
    assert macro.split()[2:] == ["0.556", "0.556", "0.556", "7"]
    weighted = next(line for line in lines if "weighted avg" in line)
    assert weighted.split()[2:] == ["0.571", "0.571", "0.571", "7"]  # (2*.5+2*.5+3*2/3)/7
    short = classification_report(Y_TRUE, Y_PRED, digits=2).splitlines()
    assert next(line for line in short if line.strip().startswith("2")).split() == ["2", "0.67", "0.67", "0.67", "3"]
    with pytest.raises(ValueError, match="2 names for 3 classes"):
        classification_report(Y_TRUE, Y_PRED, class_names=["a", "b"])


@pytest.mark.parametrize("fn", [accuracy, confusion_matrix, precision_recall_f1, classification_report])
def test_errors(fn):
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        fn([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="differ in length: 1 vs 2"):
        fn([[0.2, 0.8]], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        fn(np.array([], dtype=int), np.array([], dtype=int))


def test_label_errors():
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=">= 0"):
        confusion_matrix([0, -1], [0, 1])
    with pytest.raises(ValueError, match="integer class labels"):
        confusion_matrix([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="ambiguous"):
        accuracy(np.zeros((4, 1)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros((2, 2, 2)), [0, 1])
