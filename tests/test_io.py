"""Atomic writers: whole or nothing, and a killed writer's leftovers do not pile up."""

from __future__ import annotations

import os

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


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask):
    """mkstemp/mkdtemp make 0600/0700 temporaries; the renamed output must have open()/mkdir()'s mode instead."""
    import polars as pl

    from kdmem import db
    from kdmem.io import write_parquet

    with atomic_path(tmp_path / "model", is_dir=True) as tmp:  # a model folder or a cache, as training and caching write them
        (tmp / "model.safetensors").write_bytes(b"x")
        (tmp / "model.safetensors").chmod(0o600)  # as transformers' own temporaries leave its shards
        (tmp / "sub").mkdir(mode=0o700)
    write_parquet(pl.DataFrame({"sample_id": ["a"], "input_ids": [[1, 2]]}), tmp_path / "train.parquet")
    write_json({"a": 1}, tmp_path / "analysis.json")
    with atomic_path(tmp_path / "report.html") as tmp:
        tmp.write_text("<html>")
    scores = tmp_path / "scores.parquet"
    pl.DataFrame({"model": ["m"], "family": ["f"], "dataset": ["d"], "role": ["teacher"], "data_variant": ["full"], "fingerprint": ["x"],
                  "split": ["train"], "sample_id": ["a"], "exact": [True], "ppl": [2.0], "n_exposures": [1], "extract_logprob": [0.0],
                  "extractable": [True], "extractable_full": [True], "suffix_logprob_mean": [-1.0]}).write_parquet(scores)
    samples = tmp_path / "samples.parquet"
    pl.DataFrame({"family": ["f"], "dataset": ["d"], "split": ["train"], "sample_id": ["a"], "doc_id": ["x"], "offset": [0],
                  "n_exposures": [1], "zlib_bytes": [9], "zlib_ratio": [9.0], "text": ["t"], "input_ids": [[1]]}).write_parquet(samples)
    db.build(tmp_path / "kdmem.duckdb", samples=[str(samples)], models=[], scores=[str(scores)])
    for name in ("model", "model/model.safetensors", "model/sub", "train.parquet", "analysis.json", "report.html", "kdmem.duckdb"):
        p = tmp_path / name
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert oct(p.stat().st_mode & 0o777) == oct(want), name
