"""kdmem.training and kdmem.models: training, resuming and model loading on real tiny GPT-NeoX models."""

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

from kdmem.args import CacheSpec, OptimArgs
from kdmem.errors import KdmemError
from kdmem.logit_cache import CacheReader, write_cache
from kdmem.models import load_model, shared_vocab
from kdmem.training import evaluate_loss, train_model
from kdmem.vocab import CacheKind

from .conftest import MICRO, write_cfg
from .helpers import CPU, KD, OPTIM, tiny_model_dir, train_tiny


def test_loss_falls_and_outputs_are_written(world):
    before = evaluate_loss(load_model(str(world["small"])), world["train"], len(world["tok"]), CPU)["val_loss"]
    out = world["dir"] / "ft"
    m = train_tiny(world, out, epochs=2)
    after = evaluate_loss(load_model(str(out)), world["train"], len(world["tok"]), CPU)["val_loss"]
    assert after < before - 0.3
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file() and (out / "train_log.jsonl").is_file()
    assert m["tokens_per_s"] > 0 and m["val_ppl"] == pytest.approx(np.exp(m["val_loss"]))
    assert not Path(str(out) + ".ckpt").exists()  # checkpoints are removed once the model is saved


def test_same_seed_same_weights_on_cpu(world):
    a, b, c = (world["dir"] / n for n in ("s0a", "s0b", "s1"))
    train_tiny(world, a, seed=0)
    train_tiny(world, b, seed=0)
    train_tiny(world, c, seed=1)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_kd_from_cache_trains_the_student(world):
    out = world["dir"] / "cache2"
    write_cache(load_model(str(world["teacher"])), CPU, world["train"], len(world["tok"]), CacheSpec(CacheKind.TOPK, 2.0, top_k=8), out, meta={})
    kd = KD
    m = train_tiny(world, world["dir"] / "student", mode="cache", cache=CacheReader(out, {}), kd=kd)
    first = [r["loss"] for r in map(json.loads, (world["dir"] / "student" / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    assert m["mode"] == "cache" and first[-1] < first[0]


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
