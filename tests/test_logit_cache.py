"""kdmem.logit_cache: the top-k, sampled and full caches written from a real tiny teacher, read back, refused when
stale or corrupt, and trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kdmem.args import CacheSpec
from kdmem.errors import KdmemError
from kdmem.logit_cache import CacheReader, entry_bytes, pack_entries, unpack_entries, write_cache
from kdmem.models import load_model
from kdmem.vocab import CacheKind

from .helpers import CPU, KD, train_tiny


def test_cache_roundtrip_stale_and_corrupt(world):
    out = world["dir"] / "cache"
    teacher = load_model(str(world["teacher"]))
    V = len(world["tok"])
    meta = write_cache(teacher, CPU, world["train"], V, CacheSpec(CacheKind.TOPK, 2.0, top_k=8), out, meta={"teacher_fingerprint": "abc"}, shard_size=20)
    assert len(meta["shards"]) == 3 and meta["bytes_per_token"] < (4 * 8 + 2)
    r = CacheReader(out, {"temperature": 2.0, "k": 8, "teacher_fingerprint": "abc"})
    rows = r.rows(world["train"]["sample_id"].to_list()[:5])
    got = r.get(rows)
    x = torch.tensor(world["train"]["input_ids"].to_list()[:5])
    with torch.inference_mode():
        logp = torch.log_softmax(teacher(input_ids=x).logits[:, :-1, :V] / 2.0, -1)
    top = logp.topk(8, -1)
    assert torch.equal(got["t_ids"], top.indices)
    assert torch.allclose(got["t_logp"], top.values, atol=2e-3)
    assert torch.allclose(got["t_tail"], 1 - top.values.exp().sum(-1), atol=2e-3)
    for key, bad in (("temperature", 1.0), ("k", 4), ("teacher_fingerprint", "other")):
        with pytest.raises(KdmemError, match=f"stale: its {key}"):
            CacheReader(out, {key: bad})
    shard = out / meta["shards"][1]["files"]["topk_logp"]["file"]
    raw = bytearray(shard.read_bytes())
    raw[-3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(KdmemError, match="corrupt \\(checksum mismatch\\)") as e:
        CacheReader(out, {})
    assert shard.name in str(e.value)
    shard.write_bytes(bytes(raw[:-100]))
    with pytest.raises(KdmemError, match="is truncated"):
        CacheReader(out, {})


def test_packed_entries_take_the_fewest_whole_bytes_and_roundtrip():
    """RS-KD's packing, id * (D + 1) + count: 2 bytes at the miniature's shape, 3 at Pythia's (17 + 5 bits),
    4 at a 256k vocabulary with 255 draws; little-endian, by hand."""
    assert (entry_bytes(2048, 16), entry_bytes(50_304, 16), entry_bytes(50_304, 64), entry_bytes(256_000, 255)) == (2, 3, 3, 4)
    packed = pack_entries(np.array([1, 256, 65_537]), 3)
    assert packed.dtype == np.uint8 and packed.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    big = np.array([0, 50_303 * 17 + 16, 12_345])
    assert unpack_entries(pack_entries(big, 3)).tolist() == big.tolist()


def test_sampled_cache_roundtrip_determinism_and_training(world):
    """A sampled cache: D draws per position from the teacher at T, stored as distinct ids with counts
    (every drawn id has teacher probability > 0, the counts sum to D, the frequent ids are the teacher's
    likely ones), the same bytes for the same seed, refused for another kind or width, and a student
    trains on it."""
    teacher = load_model(str(world["teacher"]))
    V = len(world["tok"])
    a, b, c = (world["dir"] / n for n in ("sampled-a", "sampled-b", "sampled-c"))
    meta = write_cache(teacher, CPU, world["train"], V, CacheSpec(CacheKind.SAMPLED, 2.0, draws=6, seed=3), a, meta={}, shard_size=20)
    write_cache(teacher, CPU, world["train"], V, CacheSpec(CacheKind.SAMPLED, 2.0, draws=6, seed=3), b, meta={}, shard_size=20)
    write_cache(teacher, CPU, world["train"], V, CacheSpec(CacheKind.SAMPLED, 2.0, draws=6, seed=4), c, meta={}, shard_size=20)
    files = [f["file"] for s in meta["shards"] for f in s["files"].values()]
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    assert meta["kind"] == "sampled" and meta["entry_bytes"] == entry_bytes(V, 6) and 0 < meta["mean_covered_mass"] <= 1
    assert 1 <= meta["mean_distinct_ids"] <= 6
    seq = len(world["train"]["input_ids"][0])
    # bytes: entry_bytes per distinct id and one per position; per shard, 8 per sample start (and the end)
    # and three 128-byte .npy headers
    n, positions = meta["n_samples"], meta["n_samples"] * (seq - 1)
    want = meta["entry_bytes"] * meta["mean_distinct_ids"] * positions + positions + 8 * n + len(meta["shards"]) * (8 + 3 * 128)
    assert meta["bytes_per_token"] == pytest.approx(want / (n * seq))
    r = CacheReader(a, {"kind": "sampled", "draws": 6, "temperature": 2.0})
    rows = r.rows(world["train"]["sample_id"].to_list())
    got = r.get(rows)
    ids, counts = got["t_draw_ids"], got["t_draw_counts"]  # (n, L-1, W)
    x = torch.tensor(world["train"]["input_ids"].to_list())
    with torch.inference_mode():
        p = torch.softmax(teacher(input_ids=x).logits[:, :-1, :V] / 2.0, -1)
    assert ids.shape[:2] == p.shape[:2] and ids.shape == counts.shape and ids.shape[-1] <= 6
    assert bool((counts.sum(-1) == 6).all()) and float((counts > 0).sum()) / counts[..., 0].numel() == pytest.approx(meta["mean_distinct_ids"])
    drawn = counts > 0
    drawn_p = p.gather(-1, ids)[drawn]
    assert float(drawn_p.min()) > 0 and float((drawn_p * counts[drawn]).sum() / counts.sum()) > float((p * p).sum(-1).mean()) * 0.5  # draws follow p
    # one row read alone equals its row in the batch, up to the batch's padding
    one = r.get(rows[3:4])
    w = one["t_draw_ids"].shape[-1]
    assert torch.equal(one["t_draw_counts"][0], counts[3, :, :w]) and torch.equal(one["t_draw_ids"][0][one["t_draw_counts"][0] > 0], ids[3][counts[3] > 0])
    for key, bad in (("kind", "topk"), ("draws", 8)):
        with pytest.raises(KdmemError, match=f"stale: its {key}"):
            CacheReader(a, {key: bad})
    # a sampled cache of format 1 (every draw stored as an id, no counts) is refused in one line
    old = json.loads((c / "meta.json").read_text())
    old["format"] = "kdmem-logit-cache/1"
    for sh in old["shards"]:
        sh["files"] = {"draw_ids": sh["files"]["draw_entries"]}
    (c / "meta.json").write_text(json.dumps(old))
    with pytest.raises(KdmemError, match="has no n_distinct array .format kdmem-logit-cache/1.*rerun cache-logits"):
        CacheReader(c, {"kind": "sampled"})
    kd = KD
    m = train_tiny(world, world["dir"] / "sampled-student", mode="cache", cache=r, kd=kd)
    losses = [r["loss"] for r in map(json.loads, (world["dir"] / "sampled-student" / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    assert m["mode"] == "cache" and losses[-1] < losses[0]


def test_full_cache_gives_the_online_dense_loss(world):
    """A full cache stores the teacher's whole distribution at T in float16: its KD loss equals online (dense)
    KD's on the same batch to float16 precision, where a top-k cache's is off by more; a student trains on it."""
    from kdmem.kd import dense_kd_sum, teacher_topk, topk_kd_sum

    teacher = load_model(str(world["teacher"]))
    V, T = len(world["tok"]), 2.0
    out = world["dir"] / "full"
    meta = write_cache(teacher, CPU, world["train"], V, CacheSpec(CacheKind.FULL, T), out, meta={}, shard_size=20)
    seq = len(world["train"]["input_ids"][0])
    assert meta["kind"] == "full" and meta["bytes_per_token"] == pytest.approx(2 * V * (seq - 1) / seq, rel=0.02)
    r = CacheReader(out, {"kind": "full", "temperature": T})
    rows = r.rows(world["train"]["sample_id"].to_list())
    logp = r.get(rows)["t_full_logp"]
    assert logp.shape == (len(rows), seq - 1, V) and float((logp.logsumexp(-1)).abs().max()) < 5e-3
    x = torch.tensor(world["train"]["input_ids"].to_list())
    with torch.inference_mode():
        t_logits = teacher(input_ids=x).logits[:, :-1, :V].reshape(-1, V)
        s_logits = load_model(str(world["small"]))(input_ids=x).logits[:, :-1, :V].reshape(-1, V)
    online = dense_kd_sum(s_logits, t_logits, T).item()
    cached = dense_kd_sum(s_logits, logp.reshape(-1, V) * T, T).item()
    ids, vals, tail = teacher_topk(t_logits, T, 8)
    top8 = topk_kd_sum(s_logits, ids, vals, tail, T).item()
    assert cached == pytest.approx(online, rel=1e-3) and abs(top8 - online) / online > 1e-2, (online, cached, top8)
    kd = KD
    m = train_tiny(world, world["dir"] / "full-student", mode="cache", cache=r, kd=kd)
    assert m["mode"] == "cache"
