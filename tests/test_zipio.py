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
