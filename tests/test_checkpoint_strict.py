"""Strict checkpoint loading (issue 11, "all or nothing"): crafted files, each refused with a
ValueError naming the file; sizes checked before anything is allocated; unknown entries refused unread."""

from __future__ import annotations

import io
import json
import math
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinynn as tn
from tinynn.layers import LAYERS, BatchNorm1d, Dense, Layer, ReLU
from tinynn.losses import SoftmaxCrossEntropy
from tinynn.optim.lr_scheduler import MultiStepLR, ReduceLROnPlateau

# --- building and editing checkpoints ----------------------------------------------------------


def save_small(path, optimizer="adam", scheduler="multistep", interval="epoch", mask=False):
    """A 2-epoch run of a tiny net on random data, saved to ``path``."""
    tn.seed(0)
    net = tn.Net([Dense(4, 8), BatchNorm1d(8), ReLU(), Dense(8, 3)])
    kw = {"decay_mask": tn.optim.decay_mask(net.named_params()), "weight_decay": 1e-2} if mask else {}
    opt = tn.optim.get(optimizer, lr=1e-2, **kw)
    sched = {
        None: None,
        "multistep": lambda: MultiStepLR(opt, milestones=[1], gamma=0.5),
        "plateau": lambda: ReduceLROnPlateau(opt, patience=0),
    }[scheduler]
    model = tn.Model(net, SoftmaxCrossEntropy(), opt, gradient_clip=1.0)
    r = np.random.default_rng(0)
    x, y = r.normal(size=(40, 4)).astype(np.float32), r.integers(0, 3, 40)
    model.fit(x, y, epochs=2, batch_size=10, scheduler=sched and sched(), scheduler_interval=interval, verbose=0)
    model.save(path)
    return model


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.npz"
    save_small(path)
    return path


def npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name.removesuffix(".npy"): z.read(name) for name in z.namelist()}


def write(path, items: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for key, data in items.items():
            z.writestr(key + ".npy", data)
    return path


def text(path, key):
    return json.loads(str(np.load(io.BytesIO(entries(path)[key]))))


def craft(good, dst, drop=(), **put):
    """Copy ``good`` to ``dst`` without ``drop`` and with ``put`` entries ("__" stands for "/").

    A value is an array, raw bytes, or JSON-able data (stored as text), or a function of the
    entry's current JSON returning the new JSON.
    """
    items = {k: v for k, v in entries(good).items() if k not in drop}
    for key, value in put.items():
        key = key.replace("__", "/")
        if callable(value):
            value = value(text(good, key))
        if isinstance(value, np.ndarray):
            items[key] = npy(value)
        elif isinstance(value, bytes):
            items[key] = value
        else:
            items[key] = npy(np.array(value if isinstance(value, str) else json.dumps(value)))
    return write(dst, items)


def refused(path, match, **load_kw):
    with pytest.raises(ValueError, match=match) as info:
        tn.Model.load(path, **load_kw)
    assert f"cannot load checkpoint {path}" in str(info.value)
    return info.value


def edit(key, value, *path):
    """A function setting ``json[path...][key] = value``."""

    def f(d):
        inner = d
        for p in path:
            inner = inner[p]
        inner[key] = value
        return d

    return f


def layers_edit(i, key, value):
    return edit(key, value, "layers", i, "config")


# --- every entry present ---------------------------------------------------------------------

MISSING = {
    "optim-step-count": ({"drop": ["optim_state/t"]}, "step count 't'"),
    "optim-moments": ({"drop": ["optim_state/m", "optim_state/v"]}, "state names"),
    "optim-one-moment": ({"drop": ["optim_state/v"]}, "state names"),
    "sched-config": ({"drop": ["sched_config"]}, r"missing entries \['sched_config'\]"),
    "sched-state": ({"drop": ["sched_state/last_epoch"]}, "keys"),
    "sched-all-state": ({"drop": ["sched_state/last_epoch", "sched_state/base_lr"]}, "keys"),
    "sched-null-with-state": ({"sched_config": "null"}, "saved without a scheduler"),
    "net-buffers": ({"drop": ["net_buffers/1.BatchNorm1d.running_var"]}, "buffers do not match"),
    "training-key": ({"training": lambda d: {k: v for k, v in d.items() if k != "history"}}, "exactly the keys"),
    "loss-key": ({"loss_config": {"type": "SoftmaxCrossEntropy"}}, "exactly the keys"),
    "optim-mask-flag": ({"optim_config": lambda d: {k: v for k, v in d.items() if k != "decay_mask"}},
                        "exactly the keys"),
    "optim-mask-missing": ({"optim_config": edit("decay_mask", True)}, "'optim_decay_mask' is missing"),
}  # fmt: skip


@pytest.mark.parametrize("change, match", MISSING.values(), ids=MISSING.keys())
def test_every_entry_must_be_present(good, tmp_path, change, match):
    refused(craft(good, tmp_path / "bad.npz", **change), match)


def test_a_given_optimizer_of_the_saved_class_needs_the_saved_state(good, tmp_path):
    bad = craft(good, tmp_path / "bad.npz", drop=["optim_state/t"])
    refused(bad, "step count 't'", optimizer=tn.optim.Adam(lr=0.1))
    bad = craft(good, tmp_path / "bad2.npz", drop=["optim_state/m"])
    refused(bad, "state names", optimizer=tn.optim.Adam(lr=0.1))
    # Another class starts fresh, as documented: the saved state is not its state.
    assert tn.Model.load(bad, optimizer=tn.optim.SGD(lr=0.1)).optimizer.t == 0


def test_a_dropped_decay_mask_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    model = save_small(path, mask=True)
    assert np.array_equal(tn.Model.load(path).optimizer.decay_mask, model.optimizer.decay_mask)
    refused(craft(path, tmp_path / "bad.npz", drop=["optim_decay_mask"]), "'optim_decay_mask' is missing")
    refused(craft(path, tmp_path / "bad2.npz", optim_decay_mask=np.full(5, 1.0, np.float32)), "shape")
    refused(craft(path, tmp_path / "bad3.npz", optim_decay_mask=np.full(model.net.num_params, 0.5, np.float32)),
            "0s and 1s")  # fmt: skip


# --- every value by its constructor's rule ---------------------------------------------------

NAN = float("nan")
VALUES = {
    "lr-negative": ({"optim_config": edit("lr", -1.0, "config")}, "lr"),
    "lr-nan": ({"optim_config": edit("lr", NAN, "config")}, "lr"),
    "lr-text": ({"optim_config": edit("lr", "0.1", "config")}, "lr|optimizer config"),
    "lr-4000-digits": ({"optim_config": edit("lr", 10**4000, "config")}, "optimizer config"),
    "beta-one": ({"optim_config": edit("betas", [0.9, 1.0], "config")}, r"betas\[1\]"),
    "beta-negative": ({"optim_config": edit("betas", [-0.1, 0.99], "config")}, r"betas\[0\]"),
    "betas-number": ({"optim_config": edit("betas", 0.9, "config")}, "optimizer config"),
    "eps-zero": ({"optim_config": edit("eps", 0.0, "config")}, "eps"),
    "unknown-hyper": ({"optim_config": edit("momentum", 0.9, "config")}, "optimizer config"),
    "optim-config-list": ({"optim_config": edit("config", [1e-3])}, "optimizer config"),
    "epoch-negative": ({"training": edit("epoch", -1)}, "epoch"),
    "epoch-float": ({"training": edit("epoch", 2.0)}, "epoch"),
    "epoch-text": ({"training": edit("epoch", "2")}, "epoch"),
    "scheduler-interval": ({"training": edit("scheduler_interval", "weekly")}, "scheduler_interval"),
    "scheduler-interval-null": ({"training": edit("scheduler_interval", None)}, "scheduler_interval"),
    "clip-negative": ({"training": edit("gradient_clip", -1.0)}, "gradient_clip"),
    "clip-text": ({"training": edit("gradient_clip", "5")}, "gradient_clip"),
    "history-not-dict": ({"training": edit("history", 3)}, "History"),
    "history-text-value": ({"training": edit("loss", ["a", "b"], "history", "history")}, "numbers"),
    "t-negative": ({"optim_state__t": np.array(-3)}, "t must be"),
    "t-float": ({"optim_state__t": np.array(2.5)}, "t must be"),
    "moment-nan": ({"optim_state__m": "NAN"}, "NaN"),  # the saved array with one NaN
    "params-inf": ({"params": "NAN"}, "NaN or Inf"),  # the saved array with one Inf
    "last-epoch-negative": ({"sched_state__last_epoch": np.array(-5)}, "last_epoch"),
    "base-lr-nan": ({"sched_state__base_lr": np.array(NAN)}, "lr"),
    "sched-gamma-text": ({"sched_config": edit("gamma", "half", "config")}, "scheduler"),
    "sched-config-text": ({"sched_config": edit("config", "x")}, "scheduler"),
    "sched-milestones": ({"sched_config": edit("milestones", 5, "config")}, "scheduler"),
    "rng-empty": ({"rng_state": {}}, "rng_state"),
    "rng-other-generator": ({"rng_state": edit("bit_generator", "MT19937")}, "rng_state"),
    "rng-huge-int": ({"rng_state": edit("state", 10**4000, "state")}, "rng_state"),
    "loss-config-list": ({"loss_config": edit("config", [0.1])}, "loss"),
    "loss-smoothing": ({"loss_config": edit("label_smoothing", 2.0, "config")}, "loss"),
}


@pytest.mark.parametrize("change, match", VALUES.values(), ids=VALUES.keys())
def test_every_value_is_checked_by_its_constructors_rule(good, tmp_path, change, match):
    change = dict(change)
    for key, value in change.items():
        if isinstance(value, str) and value == "NAN":
            arr = np.load(io.BytesIO(entries(good)[key.replace("__", "/")]))
            arr[3] = np.nan if key != "params" else np.inf
            change[key] = arr
    refused(craft(good, tmp_path / "bad.npz", **change), match)


def test_a_plateau_schedule_saved_per_batch_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    save_small(path, scheduler="plateau")
    assert type(tn.Model.load(path).scheduler) is ReduceLROnPlateau
    refused(craft(path, tmp_path / "b.npz", training=edit("scheduler_interval", "batch")), "interval='epoch'")
    refused(craft(path, tmp_path / "c.npz", sched_state__num_bad_epochs=np.array(-1)), "num_bad_epochs")
    refused(craft(path, tmp_path / "d.npz", sched_state__lr=np.array(-1.0)), "lr")
    refused(craft(path, tmp_path / "e.npz", sched_state__best=np.array(NAN)), "best")


def test_without_a_scheduler_sched_config_is_null(tmp_path):
    path = tmp_path / "s.npz"
    save_small(path, optimizer="sgd", scheduler=None)
    assert tn.Model.load(path).scheduler is None
    assert text(path, "sched_config") is None
    refused(craft(path, tmp_path / "bad.npz", drop=["optim_state/t"]), "step count 't'")


# --- malformed configs ------------------------------------------------------------------------

MALFORMED = {
    "net-config-list": ({"net_config": []}, "should be a JSON dict"),
    "layers-not-list": ({"net_config": {"layers": {"type": "Dense"}}}, "'layers' list"),
    "layers-empty": ({"net_config": {"layers": []}}, "'layers' list"),
    "layer-not-dict": ({"net_config": edit(0, 5, "layers")}, "must be a dict"),
    "layer-type-list": ({"net_config": edit("type", ["Dense"], "layers", 0)}, "unknown layer type"),
    "layer-config-list": ({"net_config": edit("config", [4, 8], "layers", 0)}, "expected a dict"),
    "layer-size-text": ({"net_config": layers_edit(0, "in_features", "4")}, "in_features"),
    "layer-size-bool": ({"net_config": layers_edit(0, "in_features", True)}, "in_features"),
    "layer-size-missing": ({"net_config": edit("config", {"out_features": 8}, "layers", 0)}, "in_features"),
    "layer-unknown-arg": ({"net_config": layers_edit(2, "inplace", True)}, "ReLU"),
    "bn-eps-text": ({"net_config": layers_edit(1, "eps", "small")}, "BatchNorm1d"),
    "dtype-int": ({"net_config": edit("dtype", "int32")}, "dtype"),
    "dtype-number": ({"net_config": edit("dtype", 7)}, "dtype"),
    "dtype-nonsense": ({"net_config": edit("dtype", "float99")}, "dtype"),
    "deep-nesting": ({"net_config": '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}"}, "not valid JSON"),
    "deep-nesting-config": ({"optim_config": '{"type": "Adam", "decay_mask": false, "config": '
                                            + "[" * 100_000 + "]" * 100_000 + "}"}, "not valid JSON"),
    "4000-digit-size": ({"net_config": layers_edit(0, "in_features", 10**4000)}, "in_features must be below 2"),
    "4000-digit-epoch": ({"training": edit("epoch", 10**4000)}, "epoch must be below 2"),
    "4000-digit-history": ({"training": edit("epoch", [10**4000, 1], "history")}, "epoch must be below 2"),
    "4000-digit-t": ({"optim_state__t": np.array(2**63, np.uint64)}, "t must be below 2"),
    "not-json": ({"training": "{epoch: 2"}, "not valid JSON"),
    "json-nan-text": ({"training": "NaN"}, "should be a JSON dict"),
    "config-number-array": ({"loss_config": np.zeros(3)}, "should be text"),
    "text-as-bytes": ({"net_config": np.array(b"{}")}, "should be text"),
}  # fmt: skip


@pytest.mark.parametrize("change, match", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_configs_are_value_errors_naming_the_file(good, tmp_path, change, match):
    refused(craft(good, tmp_path / "bad.npz", **change), match)


# --- sizes checked before anything is allocated ----------------------------------------------


def peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 2**20


def test_tracemalloc_sees_numpy_allocations():  # else the peaks measured below would prove nothing
    assert peak_mib(lambda: np.empty(2**23)) >= 64


def test_a_huge_architecture_is_refused_before_it_is_built(good, tmp_path, monkeypatch):
    bad = craft(good, tmp_path / "bad.npz", net_config=layers_edit(0, "in_features", 10**6))
    bad = craft(bad, tmp_path / "bad2.npz", net_config=edit("out_features", 10**5, "layers", 0, "config"))
    assert bad.stat().st_size < 20_000

    def fail(*a, **k):
        raise AssertionError("a layer was built")

    monkeypatch.setattr(Dense, "__init__", fail)
    assert peak_mib(lambda: refused(bad, r"architecture needs \(100000\d+,\)")) < 16


def test_a_params_header_claiming_gigabytes_is_refused_unread(good, tmp_path):
    """The config and the header agree on ~4 GB, the file holds a few bytes: refused from the header."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**9 + 99,)})
    dense = {"type": "Dense", "config": {"in_features": 10**7, "out_features": 99}}
    net_config = {"dtype": "float32", "layers": [dense]}
    bad = craft(good, tmp_path / "bad.npz", net_config=net_config, params=header.getvalue() + b"\0" * 64)
    assert peak_mib(lambda: refused(bad, "'params' declares")) < 16


def zeros_entry(z: zipfile.ZipFile, name: str, header: bytes, mib: int) -> None:
    with z.open(name, "w", force_zip64=True) as f:
        f.write(header)
        chunk = bytes(2**20)
        for _ in range(mib):
            f.write(chunk)


@pytest.mark.parametrize("entry", ["junk", "training"])
def test_a_small_compressed_bomb_is_refused_without_being_decompressed(good, tmp_path, entry):
    """128 MiB of zeros deflate to ~128 KiB: an unknown entry is refused from the zip directory,
    a known one from its .npy header (a text of 128 MiB is far more than a 'training' entry may hold)."""
    mib = 128
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": f"<U{mib * 2**18}", "fortran_order": False, "shape": ()}
    )  # fmt: skip
    bad = tmp_path / "bomb.npz"
    items = {k: v for k, v in entries(good).items() if k != entry}
    write(bad, items)
    with zipfile.ZipFile(bad, "a", compression=zipfile.ZIP_DEFLATED) as z:
        zeros_entry(z, entry + ".npy", header.getvalue(), mib)
    assert bad.stat().st_size < 2**20
    match = r"unknown entries \['junk'\]" if entry == "junk" else "'training' declares"
    assert peak_mib(lambda: refused(bad, match)) < 16


def test_a_zip_directory_claiming_more_than_deflate_can_give_is_refused(good, tmp_path):
    """The zip directory's uncompressed size is checked against what the stored bytes can inflate to."""
    bad = write(tmp_path / "lie.npz", entries(good))
    data = bytearray(bad.read_bytes())
    pos = data.find(b"PK\x01\x02")  # each central directory record; params.npy is stored, not deflated
    while pos >= 0:
        name_len = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_len] == b"params.npy":
            data[pos + 24 : pos + 28] = (3 * 2**30).to_bytes(4, "little")  # its uncompressed size: 3 GiB
        pos = data.find(b"PK\x01\x02", pos + 4)
    bad.write_bytes(bytes(data))
    assert peak_mib(lambda: refused(bad, "not a readable .npz")) < 16


# --- the per-layer hook ----------------------------------------------------------------------

# Layers whose constructor allocates nothing sized by its config: the default param_shapes
# (build the layer) is safe for them. Every other registered layer must override param_shapes.
PARAM_FREE = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Dropout", "Flatten", "Reshape",
              "MaxPool2D", "AvgPool2D", "ContextWindow",
              "PatchesToTokens", "TokenMean"}


def test_every_layer_with_parameters_declares_their_shapes():
    for name, cls in LAYERS.items():
        if cls.__module__.startswith("tinynn.") and name not in PARAM_FREE:
            assert cls.param_shapes.__func__ is not Layer.param_shapes.__func__, (
                f"{name} must override Layer.param_shapes (see its docstring), or join PARAM_FREE if its "
                "constructor allocates nothing sized by its config"
            )


@pytest.mark.parametrize("layers", [
    lambda: [tn.layers.Reshape((2, 5)), tn.layers.Flatten(), Dense(10, 7), BatchNorm1d(7), ReLU(), Dense(7, 2),
             Dense(2, 3, bias=False)],
    lambda: [tn.layers.Reshape((1, 6, 6)), tn.layers.Conv2D(1, 3, (3, 2), padding=1), tn.layers.BatchNorm2d(3),
             tn.layers.MaxPool2D(2), tn.layers.Conv2D(3, 2, 2, bias=False), tn.layers.AvgPool2D(2)],
    lambda: [tn.layers.Reshape((4, 5)), tn.layers.RNN(5, 3, return_sequences=True), tn.layers.GRU(3, 4, True),
             tn.layers.LSTM(4, 2)],
    lambda: [tn.layers.Embedding(7, 6), tn.layers.PositionalEmbedding(5, 6), tn.layers.LayerNorm(6),
             tn.layers.MultiHeadAttention(6, 2, causal=True), tn.layers.MultiHeadAttention(6, 3, bias=False),
             tn.layers.LayerNorm((5, 6), elementwise_affine=False), tn.layers.LayerNorm([5, 6])],
    lambda: [Dense(4, 6), tn.layers.Residual([BatchNorm1d(6), tn.layers.Sequential([Dense(6, 6), ReLU()]),
             tn.layers.Residual([Dense(6, 6, bias=False)])]), Dense(6, 2)],
    lambda: [tn.layers.TransformerBlock(6, 2, causal=True), tn.layers.TransformerBlock(6, 3, 2, 0.1)],
])  # fmt: skip
def test_param_shapes_agree_with_the_built_net(layers):
    net = tn.Net(layers())
    named, dtype = tn.Net.config_params(net.get_config())
    assert named == net.named_params() and dtype == net.dtype
    assert sum(math.prod(s) for _, s in named) == net.num_params


def _nest(depth: int, inner: dict) -> dict:
    for _ in range(depth):
        inner = {"type": "Sequential", "config": {"layers": [inner]}}
    return inner


def test_nested_blocks_are_checked_before_anything_is_built(good, tmp_path):
    huge = {"type": "Dense", "config": {"in_features": 2**20, "out_features": 2**20}}  # 4 TiB if built
    config = lambda c: {**c, "layers": [_nest(5, huge), *c["layers"][1:]]}  # noqa: E731
    bad = craft(good, tmp_path / "huge.npz", net_config=config)
    assert peak_mib(lambda: refused(bad, "architecture needs")) < 16
    for n in (250, 5000):  # deep, then too deep for JSON (so written by hand): a clear ValueError either way
        nested = '{"type": "Sequential", "config": {"layers": [' * n + json.dumps(huge) + "]}}" * n
        deep = craft(good, tmp_path / "deep.npz", net_config='{"dtype": "float32", "layers": [' + nested + "]}")
        refused(deep, "architecture needs" if n == 250 else "net_config")
    empty = craft(good, tmp_path / "empty.npz", net_config=lambda c: {**c, "layers": [_nest(1, {})]})
    refused(empty, "unknown layer type None")


def test_a_layer_whose_param_shapes_lies_is_caught(good, monkeypatch):
    transposed = classmethod(lambda cls, c: {"w": (c["out_features"], c["in_features"]), "b": (c["out_features"],)})
    monkeypatch.setattr(Dense, "param_shapes", transposed)
    refused(good, "param_shapes said")


def test_round_trip_still_loads_and_the_rng_is_untouched(good):
    tn.seed(7)
    before = tn.rng.get_state()
    model = tn.Model.load(good, restore_rng=False)
    assert tn.rng.get_state() == before
    assert model.epoch == 2 and model.optimizer.t == 8 and model.scheduler.last_epoch == 2


# --- any JSON anywhere: a ValueError or a good load, never another exception -----------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10**4000, -(10**4000), 2**63, -1, 0])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
TEXTS = ["net_config", "loss_config", "optim_config", "sched_config", "training", "rng_state"]


def replace_somewhere(doc, value, choices):
    """``doc`` with one node (chosen by the ``choices`` walk) replaced by ``value``."""
    if not choices or not isinstance(doc, (dict, list)) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[choices[0] % len(keys)]
    doc[key] = replace_somewhere(doc[key], value, choices[1:])
    return doc


@pytest.fixture(scope="module")
def good_module(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "good.npz"
    save_small(path)
    return path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=st.sampled_from(TEXTS), value=JSON_VALUES, choices=st.lists(st.integers(0, 50), max_size=5))
def test_any_json_anywhere_is_a_value_error_or_a_good_load(good_module, tmp_path, entry, value, choices):
    doc = replace_somewhere(text(good_module, entry), value, choices)
    bad = craft(good_module, tmp_path / "fuzz.npz", **{entry: json.dumps(doc)})
    try:
        tn.Model.load(bad)
    except ValueError as e:
        assert f"cannot load checkpoint {bad}" in str(e)


ARRAY_ENTRIES = ["params", "net_buffers/1.BatchNorm1d.running_mean", "optim_state/t", "optim_state/m",
                 "sched_state/base_lr", "sched_state/last_epoch"]  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entry=st.sampled_from(ARRAY_ENTRIES),
    dtype=st.sampled_from(["int8", "uint64", "float16", "float32", "float64", "bool", "complex64", "<U3", "V4"]),
    shape=st.sampled_from([(), (0,), (3,), (2, 2), "same"]),
    fill=st.sampled_from([0, 1, -1, 2**62, "nan"]),
)
def test_any_array_anywhere_is_a_value_error_or_a_good_load(good_module, tmp_path, entry, dtype, shape, fill):
    old = np.load(io.BytesIO(entries(good_module)[entry]))
    shape = old.shape if shape == "same" else shape
    with np.errstate(all="ignore"):
        arr = np.full(shape, np.nan if fill == "nan" else fill)
        arr = arr.astype(dtype) if dtype != "V4" else np.zeros(shape, "V4")
    bad = craft(good_module, tmp_path / "fuzz.npz", **{entry.replace("/", "__"): arr})
    try:
        tn.Model.load(bad)
    except ValueError as e:
        assert f"cannot load checkpoint {bad}" in str(e)
