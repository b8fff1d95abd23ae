"""Training, logit cache and model loading on real tiny GPT-NeoX models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kdmem.args import CacheSpec, KDArgs, OptimArgs
from kdmem.errors import KdmemError
from kdmem.logit_cache import CacheReader, entry_bytes, pack_entries, unpack_entries, write_cache
from kdmem.models import load_model, pick_device, shared_vocab
from kdmem.training import evaluate_loss, train_model
from kdmem.vocab import CacheKind, Loss

from .conftest import MICRO, write_cfg
from .helpers import tiny_model_dir

OPTIM = {"lr": 3e-3, "schedule": "constant", "epochs": 1, "batch_size": 16, "grad_accum": 1, "warmup_ratio": 0.0,
         "weight_decay": 0.0, "max_grad_norm": 1.0, "save_steps": 1000}
KD = KDArgs(temperature=2.0, loss=Loss.FORWARD_KL, alpha_ce=0.0, jsd_beta=0.5, kl_chunk=64, tail="uniform")
CPU = pick_device("cpu")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_models):
    """The shared tiny models (conftest.tiny_models) and a folder of this module's own for what tests write."""
    return {**tiny_models, "dir": tmp_path_factory.mktemp("train")}


def _train(world, out, seed=0, epochs=1, **kw):
    model = load_model(str(world["small"]))
    return train_model(
        model=model, tok=world["tok"], vocab=len(world["tok"]), train_df=world["train"], val_df=world["val"],
        optim=OptimArgs(**{**OPTIM, "epochs": epochs}), seed=seed, out_dir=out, ckpt_dir=Path(str(out) + ".ckpt"), dev=CPU, **kw,
    )


def test_loss_falls_and_outputs_are_written(world):
    before = evaluate_loss(load_model(str(world["small"])), world["train"], len(world["tok"]), CPU)["val_loss"]
    out = world["dir"] / "ft"
    m = _train(world, out, epochs=2)
    after = evaluate_loss(load_model(str(out)), world["train"], len(world["tok"]), CPU)["val_loss"]
    assert after < before - 0.3
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file() and (out / "train_log.jsonl").is_file()
    assert m["tokens_per_s"] > 0 and m["val_ppl"] == pytest.approx(np.exp(m["val_loss"]))
    assert not Path(str(out) + ".ckpt").exists()  # checkpoints are removed once the model is saved


def test_same_seed_same_weights_on_cpu(world):
    a, b, c = (world["dir"] / n for n in ("s0a", "s0b", "s1"))
    _train(world, a, seed=0)
    _train(world, b, seed=0)
    _train(world, c, seed=1)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


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


def test_kd_from_cache_trains_the_student(world):
    out = world["dir"] / "cache2"
    write_cache(load_model(str(world["teacher"])), CPU, world["train"], len(world["tok"]), CacheSpec(CacheKind.TOPK, 2.0, top_k=8), out, meta={})
    kd = KD
    m = _train(world, world["dir"] / "student", mode="cache", cache=CacheReader(out, {}), kd=kd)
    first = [r["loss"] for r in map(eval_json, (world["dir"] / "student" / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    assert m["mode"] == "cache" and first[-1] < first[0]


def eval_json(line):
    import json

    return json.loads(line)


def test_from_pretrained_local_standin_and_refusals(world, tmp_path, micro_tokenizer):
    model = load_model(str(world["small"]))  # the real from_pretrained path, on a saved local folder
    assert model.config.model_type == "gpt_neox"
    with pytest.raises(KdmemError, match="does not exist"):
        load_model(str(tmp_path / "nope"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((world["small"] / "config.json").read_text())
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(KdmemError, match="only pickle weights \\(pytorch_model.bin\\)"):
        load_model(str(pickled))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KdmemError, match="has no weights"):
        load_model(str(empty))


def test_vocab_padding_and_mismatch(world, tmp_path, micro_tokenizer):
    tok = world["tok"]
    padded = load_model(str(tiny_model_dir(tmp_path / "padded", micro_tokenizer, vocab=len(tok) + 64)))
    assert shared_vocab(padded, tok, "padded") == len(tok)
    small = load_model(str(tiny_model_dir(tmp_path / "smallv", micro_tokenizer, vocab=len(tok) - 10)))
    with pytest.raises(KdmemError, match="vocab mismatch"):
        shared_vocab(small, tok, "small")


def test_empty_training_set(world):
    with pytest.raises(KdmemError, match="training set is empty"):
        train_model(model=None, tok=None, vocab=1, train_df=world["train"].head(0), val_df=world["val"], optim=OptimArgs(**OPTIM),
                    seed=0, out_dir=world["dir"] / "x", ckpt_dir=world["dir"] / "xc", dev=CPU)


def test_killed_finetune_resumes_from_its_checkpoint(world, tmp_path, micro_tokenizer):
    cfg = {**MICRO, "finetune": {"baseline": {"lr": 1e-3, "epochs": 6, "batch_size": 4, "save_steps": 5}}}
    cfgp = write_cfg(cfg, tmp_path / "c.yaml")
    tr, va = tmp_path / "train.parquet", tmp_path / "val.parquet"
    world["train"].write_parquet(tr)
    world["val"].write_parquet(va)
    out, ckpt = tmp_path / "model", tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "kdmem.cli", "finetune", "--config", str(cfgp), "--family", "tiny", "--dataset", "wiki",
           "--role", "baseline", "--seed", "0", "--base", str(world["small"]), "--tokenizer", str(micro_tokenizer),
           "--train", str(tr), "--val", str(va), "--out", str(out), "--ckpt", str(ckpt)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(ckpt.glob("checkpoint-*/trainer_state.json")):
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run must leave no model folder"
    assert list(ckpt.glob("checkpoint-*"))
    rc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    import json

    m = json.loads((out / "metrics.json").read_text())
    assert m["resumed_from_step"] is not None and m["resumed_from_step"] >= 5
    assert m["steps"] > m["resumed_from_step"]


def test_incomplete_checkpoint_is_skipped(tmp_path):
    from kdmem.training import CHECKPOINT_FILES, last_complete_checkpoint

    good, partial = tmp_path / "checkpoint-5", tmp_path / "checkpoint-10"
    for d in (good, partial):
        d.mkdir()
    for f in CHECKPOINT_FILES:
        (good / f).write_text("x")
    (partial / "model.safetensors").write_text("half")  # killed mid-save: no trainer_state.json
    assert last_complete_checkpoint(tmp_path) == str(good)
    assert not partial.exists()


class _DieAtSave:
    """A callback that ends the run right after checkpoint `step` is written, as a kill would."""

    def __init__(self, step: int):
        self.step = step

    def __getattr__(self, name):  # every other TrainerCallback event is a no-op
        return lambda *a, **k: None

    def on_save(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise SystemExit("killed")


def test_resumed_training_is_bit_identical_to_an_uninterrupted_one(world, tmp_path, monkeypatch):
    """A resume must restore every weight. The Trainer's own reload skipped GPT-NeoX's renamed head
    (saved as embed_out, live as lm_head; transformers#43701), which this test caught."""
    from safetensors.torch import load_file

    from kdmem import training

    optim = OptimArgs(**{**OPTIM, "epochs": 2, "save_steps": 5, "schedule": "cosine"})
    kw = dict(tok=world["tok"], vocab=len(world["tok"]), train_df=world["train"], val_df=world["val"], optim=optim, seed=0, dev=CPU)
    full = train_model(model=load_model(str(world["small"])), out_dir=tmp_path / "full", ckpt_dir=tmp_path / "full.ck", **kw)

    orig = training.KdmemTrainer.__init__

    def dying_init(self, *a, **k):
        orig(self, *a, **{**k, "callbacks": [*k.get("callbacks", []), _DieAtSave(10)]})

    monkeypatch.setattr(training.KdmemTrainer, "__init__", dying_init)
    with pytest.raises(SystemExit):
        train_model(model=load_model(str(world["small"])), out_dir=tmp_path / "res", ckpt_dir=tmp_path / "res.ck", **kw)
    monkeypatch.setattr(training.KdmemTrainer, "__init__", orig)
    resumed = train_model(model=load_model(str(world["small"])), out_dir=tmp_path / "res", ckpt_dir=tmp_path / "res.ck", **kw)

    assert resumed["resumed_from_step"] == 10 and resumed["steps"] == full["steps"] > 10
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "res" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["val_loss"] == full["val_loss"]


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
    m = _train(world, world["dir"] / "sampled-student", mode="cache", cache=r, kd=kd)
    losses = [r["loss"] for r in map(eval_json, (world["dir"] / "sampled-student" / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
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
    m = _train(world, world["dir"] / "full-student", mode="cache", cache=r, kd=kd)
    assert m["mode"] == "cache"
