"""Atomic writers: whole or nothing, and a killed writer's leftovers do not pile up."""

from __future__ import annotations

import pytest

from kdmem.io import atomic_path, write_json


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out", is_dir=True) as tmp:
        (tmp / "part").write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_leftover_of_a_killed_writer_is_removed_on_the_next_write(tmp_path):
    # What SIGKILL leaves: a temporary folder and a temporary file beside their outputs.
    (tmp_path / ".cache.abc123.tmp").mkdir()
    (tmp_path / ".cache.abc123.tmp" / "shard00000.tail.npy").write_bytes(b"\x93NUMPY")
    (tmp_path / ".m.json.xyz.tmp").write_text("{")
    (tmp_path / ".other.q.tmp").write_text("not ours")
    with atomic_path(tmp_path / "cache", is_dir=True) as tmp:
        (tmp / "meta.json").write_text("{}")
    write_json({"a": 1}, tmp_path / "m.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.q.tmp", "cache", "m.json"]
