"""Every layer and loss against central differences in float64 (relative error < 1e-6)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinynn as tn
from tinynn import layers as L
from tinynn import losses

TOL = 1e-6


def make_layer(name: str, width: int) -> tn.layers.Layer:
    return {
        "Dense": lambda: L.Dense(width, 3),
        "Dense_xavier": lambda: L.Dense(width, 4, w_init="xavier_normal", b_init=tn.init.normal(0, 0.5)),
        "ReLU": L.ReLU,
        "LeakyReLU": lambda: L.LeakyReLU(0.2),
        "Sigmoid": L.Sigmoid,
        "Tanh": L.Tanh,
        "GELU": L.GELU,
        "Softmax": L.Softmax,
        "Dropout": lambda: L.Dropout(0.4),
        "Flatten": L.Flatten,
        "Reshape": lambda: L.Reshape((-1, 1)),
        "BatchNorm1d": lambda: L.BatchNorm1d(width),
    }[name]()


LAYER_NAMES = ["Dense", "Dense_xavier", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout",
               "Flatten", "Reshape", "BatchNorm1d"]


@pytest.mark.parametrize("name", LAYER_NAMES)
@settings(max_examples=8, deadline=None)
@given(batch=st.integers(2, 6), width=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_layer_gradients_random_shapes(name, batch, width, seed):
    if name == "BatchNorm1d":
        # With 2-3 samples the normalised output hardly depends on x (two samples always map to
        # -1 and +1), so dL/dx is ~1e-6 and differencing noise dominates; that is not a bug.
        batch += 2
    tn.seed(seed)
    layer = make_layer(name, width)
    x = np.random.default_rng(seed).standard_normal((batch, width)) * 2
    report = tn.gradcheck.check_layer(layer, x)
    assert report.passed, f"{layer!r}\n{report}"
    # Every parameter was checked, not just the input.
    assert set(report) == {"input"} | {f"0.{type(layer).__name__}.{p}" for p in layer.params}


def test_batchnorm_eval_mode_gradients():
    tn.seed(1)
    bn = L.BatchNorm1d(4)
    net = tn.Net([bn], dtype=np.float64)
    net.train()
    net.forward(np.random.default_rng(0).standard_normal((16, 4)) + 3)  # move the running stats
    net.eval()
    assert tn.gradcheck.check_net(net, np.random.default_rng(1).standard_normal((5, 4))).passed


def test_reshape_to_images_and_back():
    x = np.random.default_rng(0).standard_normal((3, 12))
    net = tn.Net([L.Reshape((3, 2, 2)), L.Flatten(), L.Dense(12, 2)], dtype=np.float64)
    assert net.layers[0].output_shape((None, 12)) == (None, 3, 2, 2)
    assert L.Reshape((2, -1)).output_shape((None, 12)) == (None, 2, 6)
    report = tn.gradcheck.check_net(net, x)
    assert report.passed, str(report)


def test_flatten_on_images():
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    report = tn.gradcheck.check_net(tn.Net([L.Flatten(), L.Dense(8, 2)], dtype=np.float64), x)
    assert report.passed, str(report)


def test_whole_net_gradients():
    tn.seed(0)
    net = tn.Net([L.Dense(7, 6), L.BatchNorm1d(6), L.GELU(), L.Dropout(0.3), L.Dense(6, 5), L.LeakyReLU(0.1),
                  L.Dense(5, 5), L.Tanh(), L.Dense(5, 4), L.Sigmoid(), L.Dense(4, 3), L.ReLU(), L.Dense(3, 3),
                  L.Softmax()], dtype=np.float64)
    report = tn.gradcheck.check_net(net, np.random.default_rng(0).standard_normal((9, 7)))
    assert report.passed, str(report)
    assert len(report) == 1 + len(net.named_params())


def test_whole_net_through_loss():
    """Net + SoftmaxCrossEntropy: dL/dparams from Model.backward against differences of the loss."""
    tn.seed(3)
    net = tn.Net([L.Dense(5, 8), L.ReLU(), L.Dense(8, 4)], dtype=np.float64)
    model = tn.Model(net, losses.SoftmaxCrossEntropy(label_smoothing=0.1), optimizer=tn.optim.SGD(lr=0.1))
    x = np.random.default_rng(0).standard_normal((6, 5))
    y = np.array([0, 1, 2, 3, 1, 0])
    _, grads = model.backward(model.forward(x), y)
    analytic = grads.copy()
    numeric = tn.gradcheck.numerical_grad(lambda: model.loss.loss(net.forward(x), y), net.params)
    assert tn.gradcheck.rel_error(analytic, numeric) < TOL


rng = np.random.default_rng(7)
LOSS_CASES = {
    "MSE": (losses.MSE(), lambda n, c: rng.standard_normal((n, c))),
    "MAE": (losses.MAE(), lambda n, c: rng.standard_normal((n, c))),
    "Huber": (losses.Huber(0.7), lambda n, c: rng.standard_normal((n, c)) * 2),
    "CE_labels": (losses.SoftmaxCrossEntropy(), lambda n, c: rng.integers(0, c, n)),
    "CE_onehot": (losses.SoftmaxCrossEntropy(), lambda n, c: np.eye(c)[rng.integers(0, c, n)]),
    "CE_soft": (losses.SoftmaxCrossEntropy(), lambda n, c: rng.dirichlet(np.ones(c), n)),
    "CE_smoothing_labels": (losses.SoftmaxCrossEntropy(0.2), lambda n, c: rng.integers(0, c, n)),
    "CE_smoothing_onehot": (losses.SoftmaxCrossEntropy(0.2), lambda n, c: np.eye(c)[rng.integers(0, c, n)]),
    "BCE": (losses.BinaryCrossEntropy(), lambda n, c: rng.random((n, c))),
    "BCE_binary": (losses.BinaryCrossEntropy(), lambda n, c: rng.integers(0, 2, (n, c)).astype(float)),
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 7), c=st.integers(2, 6), scale=st.sampled_from([0.1, 1.0, 5.0]))
def test_loss_gradients(case, n, c, scale):
    loss, make_targets = LOSS_CASES[case]
    preds = rng.standard_normal((n, c)) * scale
    report = tn.gradcheck.check_loss(loss, preds, make_targets(n, c))
    assert report.passed, f"{loss!r}\n{report}"


def test_gradcheck_catches_a_wrong_backward():
    class BadSquare(L.Layer):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, grad):
            return grad * self.x  # should be 2 * x

    report = tn.gradcheck.check_layer(BadSquare(), np.random.default_rng(0).standard_normal((3, 4)))
    assert not report.passed
    assert report["input"] > 0.1
    assert "FAIL" in str(report)


def test_gradcheck_refuses_float32_net():
    with pytest.raises(ValueError, match="float64"):
        tn.gradcheck.check_net(tn.Net([L.Tanh()]), np.ones((2, 2)))


def test_gradcheck_restores_the_rng():
    tn.seed(5)
    expected = tn.get_rng().random()
    tn.seed(5)
    tn.gradcheck.check_layer(L.Dropout(0.5), np.ones((3, 3)))
    assert tn.get_rng().random() == expected


# Every registered layer type -> the test that gradient-checks it. A new layer that is not listed
# here fails the test below, so no layer can skip its gradient check.
GRADCHECK_TABLE = {name: "tests/test_gradients.py::test_layer_gradients_random_shapes" for name in
                   ["Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout", "Flatten",
                    "Reshape", "BatchNorm1d"]}
GRADCHECK_TABLE.update({name: "tests/test_recurrent.py::test_recurrent_gradients" for name in ["RNN", "LSTM", "GRU"]})
GRADCHECK_TABLE |= {
    "Conv2D": "tests/test_conv.py::test_conv2d_gradients",
    "MaxPool2D": "tests/test_conv.py::test_pooling_gradients",
    "AvgPool2D": "tests/test_conv.py::test_pooling_gradients",
    "BatchNorm2d": "tests/test_conv.py::test_batchnorm2d_gradients",
    "Embedding": "tests/test_attention.py::test_embedding_gradients_with_repeated_indices",
    "PositionalEmbedding": "tests/test_attention.py::test_positional_embedding_gradients",
    "LayerNorm": "tests/test_attention.py::test_layer_norm_gradients",
    "MultiHeadAttention": "tests/test_attention.py::test_attention_gradients",
    "PatchesToTokens": "tests/test_vit.py::test_patches_to_tokens_gradients",
    "TokenMean": "tests/test_vit.py::test_token_mean_gradients",
    "Sequential": "tests/test_blocks.py::test_gradcheck_of_one_block",
    "Residual": "tests/test_blocks.py::test_gradcheck_through_nested_blocks",
    "TransformerBlock": "tests/test_transformer_block.py::test_gradcheck",
    "ContextWindow": "tests/test_language_models.py::test_names_nets_gradients",
}


def test_every_registered_layer_is_gradient_checked():
    import importlib
    from pathlib import Path

    missing = sorted(set(L.LAYERS) - set(GRADCHECK_TABLE))
    assert not missing, f"layers without a gradient check in GRADCHECK_TABLE: {missing}"
    root = Path(__file__).resolve().parent.parent
    for name, where in GRADCHECK_TABLE.items():
        path, func = where.split("::")
        module = importlib.import_module(Path(path).stem)
        assert callable(getattr(module, func, None)), f"{name}: {where} does not exist"
        assert (root / path).is_file()
    # The random-shape test really builds each layer it claims to check.
    built = {type(make_layer(n, 2)).__name__ for n in LAYER_NAMES}
    claimed = {n for n, w in GRADCHECK_TABLE.items() if w.endswith("test_layer_gradients_random_shapes")}
    assert claimed <= built
