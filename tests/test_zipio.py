"""tinynn.zipio.NpzReader on its own: any .npz, each entry read within the bound its caller gives, never pickled."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from tinynn.zipio import FileError, NpzReader


def test_reads_entries_within_their_bounds(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, w=np.arange(6, dtype=np.float32), note=np.array('{"k": 1}'), s_a=np.float64(2.5), s_b=np.ones(2))
    with NpzReader(path, "table") as r:
        assert set(r.names) == {"w", "note", "s_a", "s_b"}
        np.testing.assert_array_equal(r.array("w", max_bytes=24), np.arange(6, dtype=np.float32))
        assert r.json("note") == {"k": 1}
        group = r.group("s_", max_bytes=16)
        assert group["a"] == 2.5 and isinstance(group["a"], float) and group["b"].shape == (2,)
        with pytest.raises(FileError, match=r"cannot load table .*a\.npz: entry 'w' declares a float32 array"):
            r.array("w", max_bytes=23)  # one byte short: refused from the header, unread
        with pytest.raises(FileError, match="should be a JSON list"):
            r.json("note", kinds=(list,))


def test_refuses_pickle_garbage_and_bombs(tmp_path):
    pickled = tmp_path / "p.npz"
    np.savez(pickled, o=np.array([{"a": 1}], dtype=object))
    with NpzReader(pickled) as r, pytest.raises(FileError, match="pickled"):
        r.array("o", max_bytes=10**6)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip at all")
    with pytest.raises(FileError, match="not a zip file"):
        NpzReader(garbage)
    bomb = tmp_path / "b.npz"  # a stored entry claiming more bytes than it holds
    with zipfile.ZipFile(bomb, "w") as z:
        z.writestr("x.npy", b"\x00" * 100)
    with zipfile.ZipFile(bomb) as z:
        info = z.infolist()[0]
    sizes = (100).to_bytes(4, "little")  # compressed and uncompressed size, side by side in both headers
    bomb.write_bytes(bomb.read_bytes().replace(sizes * 2, sizes + (10**6).to_bytes(4, "little")))
    assert info.compress_type == zipfile.ZIP_STORED
    with pytest.raises(FileError, match="1,000,000 bytes from 100"):
        NpzReader(bomb)
    with pytest.raises(FileNotFoundError, match="no file at"):
        NpzReader(tmp_path / "missing.npz")


def test_written_entries_read_back_and_a_layout_is_checked_before_reading(tmp_path):
    """write_npz + text_entry/json_entry/number_entries round-trip; check_layout refuses a foreign marker, an
    unknown entry (unread) and a missing one, and closes the reader when it refuses."""
    from tinynn.zipio import json_entry, number_entries, text_entry, write_npz

    entries = {"fmt": text_entry("v2"), "cfg": json_entry({"type": "T", "config": {"k": 1}}),
               "w": np.arange(3, dtype=np.float32), **number_entries("s/", {"t": 4, "m": np.ones(2)}, "thing")}
    path = write_npz(tmp_path / "a.bin", entries)
    assert path == tmp_path / "a.bin"  # no suffix appended
    with NpzReader(path, "table") as r:
        assert r.check_layout("fmt", ("v2", "v1"), ("fmt", "cfg", "w"), groups=("s/",)) == "v2"
        assert r.typed("cfg") == ("T", {"k": 1}, {"type": "T", "config": {"k": 1}})
        np.testing.assert_array_equal(r.exact_array("w", (3,), np.dtype(np.float32), "it needs"), np.arange(3))
        with pytest.raises(FileError, match=r"'w' is a float32 array of shape \(3,\), but it needs \(4,\) float32"):
            r.exact_array("w", (4,), np.dtype(np.float32), "it needs")
        assert r.group("s/", max_bytes=16)["t"] == 4
        with pytest.raises(FileError, match=r"should have exactly the keys \['config', 'extra', 'type'\]"):
            r.typed("cfg", extra=("extra",))
    with pytest.raises(TypeError, match="cannot save thing state 'x' of type str"):
        number_entries("s/", {"x": "text"}, "thing")
    refusals = [
        ((("fmt",), ("v3",), ("fmt",)), "unsupported table format 'v2'"),
        ((("mark",), ("v2",), ("fmt",)), "not a tinynn table \\(no 'mark' marker\\)"),
        ((("fmt",), ("v2",), ("fmt", "cfg")), r"unknown entries \['w', 's/t', 's/m'\] \(refused unread\)"),
        ((("fmt",), ("v2",), ("fmt", "cfg", "w", "x")), r"missing entries \['x'\]"),
    ]
    for (marker, formats, required), message in refusals:
        r = NpzReader(path, "table")
        groups = ("s/",) if "w" in required else ()
        with pytest.raises(FileError, match=message):
            r.check_layout(marker[0], formats, required, groups=groups)
        assert r.zip.fp is None  # closed
