"""Logit cache targets, measured side by side in one run on the embedded default:
- bytes per token of the cache at the default k;
- validation loss of a student distilled from the top-k cache vs one distilled from dense full-vocab
  teacher logits (the same schedule; ratio should be within 1 %);
- speed of a cached-KD step vs an online-KD step that runs the teacher forward inside the step.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import RESULTS, need

from kdmem import config as kconfig
from kdmem.data import read_samples
from kdmem.logit_cache import CacheReader
from kdmem.models import load_model, pick_device
from kdmem.tokenizer import load_tokenizer
from kdmem.training import Collator, KdmemTrainer, SampleDataset, train_model


def step_time(mode, cache, teacher, student, train, kd, batch=32, steps=20):
    from transformers import TrainingArguments

    ds = SampleDataset(train, cache_rows=cache.rows(train["sample_id"].to_list()) if cache else None)
    tmp = tempfile.mkdtemp()
    args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, max_steps=steps, report_to="none",
                             use_cpu=True, remove_unused_columns=False, save_strategy="no", disable_tqdm=True, logging_steps=1000)
    tr = KdmemTrainer(model=student, args=args, train_dataset=ds, data_collator=Collator(cache), mode=mode,
                      vocab=kd["vocab"], kd=kd, teacher=teacher)
    t = time.perf_counter()
    tr.train()
    shutil.rmtree(tmp, ignore_errors=True)
    return (time.perf_counter() - t) / steps


def main() -> dict:
    cfg = kconfig.load("config.yaml")
    soft = cfg["distill"]["soft"]
    T = cfg["analysis"]["primary_temperature"]
    teacher_dir = need(RESULTS / "models" / "teacher-s0")
    cache_dir = need(RESULTS / "cache" / f"T{T}")
    small = cfg["families"]["tiny"]["small"]  # the shipped base (init: checkpoint), or the pipeline's pretrained one
    base = need(Path(small["checkpoint"]) if small["init"] == "checkpoint" else Path("results/tiny/base/small"))
    tok = load_tokenizer(str(teacher_dir))
    train, val = read_samples(RESULTS / "data" / "train.parquet"), read_samples(RESULTS / "data" / "val.parquet")
    meta = json.loads((cache_dir / "meta.json").read_text())
    cache = CacheReader(cache_dir, {"temperature": T})
    teacher = load_model(str(teacher_dir))
    dev = pick_device("cpu")
    kd = {**soft, "temperature": T, "vocab": len(tok)}
    t_cached = step_time("cache", cache, None, load_model(str(base)), train, kd)
    t_online = step_time("online", None, teacher, load_model(str(base)), train, kd)
    work = Path(tempfile.mkdtemp())
    common = {"tok": tok, "vocab": len(tok), "train_df": train, "val_df": val, "optim": soft["optim"], "seed": 0, "dev": dev, "kd": {**soft, "temperature": T}}
    m_cache = train_model(model=load_model(str(base)), out_dir=work / "c", ckpt_dir=work / "cc", mode="cache", cache=cache, **common)
    m_dense = train_model(model=load_model(str(base)), out_dir=work / "d", ckpt_dir=work / "dc", mode="online", teacher=teacher, **common)
    shutil.rmtree(work, ignore_errors=True)
    out = {
        "top_k": soft["top_k"], "bytes_per_token": meta["bytes_per_token"], "target_bytes_per_token": 130,
        "val_loss_cached": m_cache["val_loss"], "val_loss_dense": m_dense["val_loss"],
        "val_loss_ratio_cached_over_dense": m_cache["val_loss"] / m_dense["val_loss"],
        "step_s_cached": t_cached, "step_s_online": t_online, "speedup_cached_vs_online": t_online / t_cached,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
