"""makemore's names: the bundled file, its checksum, the split, the vocabulary and the encoding."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

import tinynn as tn
from tinynn.data import names as nm


@pytest.fixture(scope="module")
def split() -> tuple[list[str], list[str]]:
    return tn.data.load_names()


def test_sizes_and_vocabulary(split) -> None:
    train, test = split
    assert (len(train), len(test)) == (31_033, 1_000)
    everything = train + test
    assert sorted(everything) == sorted(nm.NAMES_FILE.read_text().split())  # a split, nothing lost or added
    assert len(set(everything)) == 29_494
    assert "".join(sorted(set("".join(everything)))) == "abcdefghijklmnopqrstuvwxyz"
    assert tn.data.VOCAB == "." + "abcdefghijklmnopqrstuvwxyz" and tn.data.VOCAB.index(".") == 0
    assert max(map(len, everything)) == nm.BLOCK_SIZE - 1 == 15


def test_the_split_is_deterministic(split) -> None:
    again = tn.data.load_names()
    assert again == split  # the same fixed-seed permutation, not tinynn's shared generator
    tn.seed(123)
    assert tn.data.load_names() == split
    other = tn.data.load_names(seed=1)
    assert other[1] != split[1] and sorted(other[0] + other[1]) == sorted(split[0] + split[1])


def test_encoding_round_trip(split) -> None:
    train, _ = split
    x, y = tn.data.encode_names(train)
    assert x.shape == y.shape == (31_033, 16) and x.dtype == y.dtype == np.int64
    assert np.all(x[:, 0] == 0)  # every input starts with the start token
    np.testing.assert_array_equal(x[:, 1:][y[:, :-1] != -100], y[:, :-1][y[:, :-1] != -100])  # y is x shifted
    for i in range(0, len(train), 997):
        assert tn.data.decode_name(x[i]) == train[i] == tn.data.decode_name(y[i])
    lengths = np.array([len(n) for n in train])
    assert np.array_equal((y != -100).sum(axis=1), lengths + 1)  # characters and the stop token count
    assert x.max() == 26 and y[y != -100].min() == 0


def test_encoding_of_one_name() -> None:
    x, y = tn.data.encode_names(["emma"], block_size=8, ignore_index=-1)
    assert x.tolist() == [[0, 5, 13, 13, 1, 0, 0, 0]]
    assert y.tolist() == [[5, 13, 13, 1, 0, -1, -1, -1]]
    with pytest.raises(ValueError, match=r"name 1 \('abcdefgh'\) has 8 characters; block_size=8 holds at most 7"):
        tn.data.encode_names(["ok", "abcdefgh"], block_size=8)
    with pytest.raises(ValueError, match=r"name 0 \('Emma'\) must be a string of letters a..z"):
        tn.data.encode_names(["Emma"])
    with pytest.raises(ValueError, match="decode_name: index 27"):
        tn.data.decode_name([0, 27])


def test_a_model_trains_on_the_encoding() -> None:
    """x and y feed an Embedding net and the masked loss directly: padding never counts."""
    tn.seed(0)
    x, y = tn.data.encode_names(["ava", "bob", "eve"], block_size=6)
    net = tn.Net([tn.layers.Embedding(27, 27)])
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), tn.optim.Adam(lr=0.1))
    first = model.train_step(x, y)
    for _ in range(50):
        last = model.train_step(x, y)
    assert last < first / 2


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"names file not found: .*nope\.txt"):
        tn.data.load_names(tmp_path / "nope.txt")


def test_altered_file_fails_its_checksum(tmp_path: Path) -> None:
    copy = tmp_path / "names.txt"
    shutil.copy(nm.NAMES_FILE, copy)
    assert len(tn.data.load_names(copy)[0]) == 31_033  # the intact copy passes
    data = bytearray(copy.read_bytes())
    data[100] = ord("q") if data[100] != ord("q") else ord("r")
    copy.write_bytes(bytes(data))
    with pytest.raises(tn.data.ChecksumError, match=rf"{copy}.*altered or corrupt.*expected {nm.NAMES_SHA256}"):
        tn.data.load_names(copy)
    # Another file of names loads with its own checksum, or none.
    own = tmp_path / "mine.txt"
    own.write_text("ann\nbo\n\ncy\nd\n")
    train, test = tn.data.load_names(own, sha256=hashlib.sha256(own.read_bytes()).hexdigest(), test_size=1)
    assert sorted(train + test) == ["ann", "bo", "cy", "d"] and len(test) == 1
    own.write_text("ann\nZoe\n")
    with pytest.raises(ValueError, match=r"mine.txt: name 2 \('Zoe'\) has a character outside a..z"):
        tn.data.load_names(own, sha256=None)


def test_bundled_sha256sums_matches_the_code() -> None:
    listed = (nm.NAMES_FILE.parent / "SHA256SUMS").read_text().split()
    assert listed == [nm.NAMES_SHA256, "names.txt"]
    assert hashlib.sha256(nm.NAMES_FILE.read_bytes()).hexdigest() == nm.NAMES_SHA256
