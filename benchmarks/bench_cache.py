"""The student's view of the teacher, side by side in one run on the embedded default's trained teacher:
`distill.soft.cache` full (the whole distribution, the default's), topk (k = 30), sampled (16 draws,
random-sampling KD) and dense (online KD: exact, the teacher in every step).

For each kind it runs the pipeline's own commands with the embedded config and only that key changed, exactly
as `make run` with `cache: <kind>` runs them: `kdmem cache-logits` (timed: write tokens/s, bytes/token),
`kdmem distill --mode soft` (validation loss), `kdmem score` (every training sample's exact verdict). It
reports each student's memorized count and the overlap of its memorized set with the dense student's.
It also times one KD step from each cache against an online step: full against dense is the cost of the
default's exact distillation from a cache against the teacher in every step.

Needs the teacher, data and T = 1 cache of a completed embedded-default run: `make run` (results/), or any
run of a config with the same data and teacher, e.g. KDMEM_BENCH_RESULTS=results/sweep-temperature.
About 15 minutes on 2 cores (four students of 4 epochs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import torch
import yaml
from common import DATASET, FAMILY, LAYOUT, STUDY, need, run_path

from kdmem import config as kconfig
from kdmem.args import KDArgs
from kdmem.data import read_samples
from kdmem.logit_cache import CacheReader
from kdmem.models import load_model
from kdmem.tokenizer import load_tokenizer
from kdmem.training import Collator, KdmemTrainer, SampleDataset
from kdmem.vocab import Size

KDMEM = str(Path(sys.executable).parent / "kdmem")
KINDS = ("full", "topk", "sampled", "dense")


def step_time(mode, cache, teacher, student, train, kd: KDArgs, vocab: int, batch=32, steps=20):
    from transformers import TrainingArguments

    ds = SampleDataset(train, cache_rows=cache.rows(train["sample_id"].to_list()) if cache else None)
    tmp = tempfile.mkdtemp()
    args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=batch, max_steps=steps, report_to="none",
                             use_cpu=True, remove_unused_columns=False, save_strategy="no", disable_tqdm=True, logging_steps=1000)
    tr = KdmemTrainer(model=student, args=args, train_dataset=ds, data_collator=Collator(cache), mode=mode,
                      vocab=vocab, kd=kd, teacher=teacher)
    t = time.perf_counter()
    tr.train()
    shutil.rmtree(tmp, ignore_errors=True)
    return (time.perf_counter() - t) / steps


def _kdmem(*args: str) -> None:
    subprocess.run([KDMEM, *map(str, args)], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def one_kind(kind: str, cfg: dict, work: Path, teacher: Path, t: float, name: str | None = None, **soft: object) -> dict:
    """cache-logits, distill and score with `distill.soft.cache: kind` (and any other `distill.soft` keys given),
    as the pipeline runs them. `name` keeps several variants of one kind apart in `work`."""
    cfg = {**cfg, "distill": {**cfg["distill"], "soft": {**cfg["distill"]["soft"], "cache": kind, **soft}}}
    tag = name or kind
    cfg_file = work / f"{tag}.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    fam = cfg["families"][FAMILY]
    common = ["--config", cfg_file, "--family", FAMILY, "--dataset", DATASET, "--tokenizer", fam["tokenizer"]]
    train, val = run_path("samples", split="train"), run_path("samples", split="val")
    out: dict = {"kind": kind}
    cache_args: list = []
    if kind != "dense":
        t0 = time.perf_counter()
        _kdmem("cache-logits", *common, "--teacher", teacher, "--train", train, "--temperature", t,
               "--kind", kind, "--out", work / f"cache-{tag}")
        meta = json.loads((work / f"cache-{tag}" / "meta.json").read_text())
        out |= {"cache_write_s": time.perf_counter() - t0, "bytes_per_token": meta["bytes_per_token"],
                "mean_tail_mass": meta.get("mean_tail_mass"), "mean_covered_mass": meta.get("mean_covered_mass"),
                "mean_distinct_ids": meta.get("mean_distinct_ids")}
        out["cache_write_tokens_per_s"] = meta["n_samples"] * meta["seq_len"] / out["cache_write_s"]
        cache_args = ["--cache", work / f"cache-{tag}"]
    t0 = time.perf_counter()
    _kdmem("distill", *common, "--mode", "soft", "--seed", 0, "--temperature", t, "--base", fam[Size.SMALL]["checkpoint"], *cache_args,
           "--teacher", teacher, "--train", train, "--val", val, "--out", work / f"student-{tag}",
           "--ckpt", work / f"ckpt-{tag}")
    out["distill_s"] = time.perf_counter() - t0
    out["val_loss"] = json.loads((work / f"student-{tag}" / "metrics.json").read_text())["val_loss"]
    scores = work / f"scores-{tag}.parquet"
    _kdmem("score", *common, "--model", work / f"student-{tag}", "--split", "train", "--samples", train,
           "--cache", run_path("cache", temperature=1.0), "--teacher", teacher, "--out", scores, "--summary", work / f"scores-{tag}.json")
    out["memorized_ids"] = sorted(pl.read_parquet(scores).filter(pl.col("exact"))["sample_id"].to_list())
    return out


def main() -> dict:
    cfg = kconfig.load("config.yaml")
    soft = cfg["distill"]["soft"]
    t = cfg["analysis"]["primary_temperature"]
    teacher = need(run_path("model", model=STUDY.teacher.name))
    need(run_path("cache", temperature=1.0))
    work = Path(tempfile.mkdtemp())
    try:
        kinds = {k: one_kind(k, cfg, work, teacher, t) for k in KINDS}
        # one KD step from each cache against an online step (the teacher's forward inside the step)
        tok = load_tokenizer(str(teacher))
        train, base = read_samples(run_path("samples", split="train")), cfg["families"][FAMILY][Size.SMALL]["checkpoint"]
        v = len(tok)
        kd = {k: KDArgs.from_config({**soft, "cache": k}, t, "forward_kl") for k in KINDS}
        steps = {k: step_time("cache", CacheReader(work / f"cache-{k}", {"kind": k}), None, load_model(base), train, kd[k], v)
                 for k in ("full", "topk", "sampled")}
        steps["dense"] = step_time("online", None, load_model(str(teacher)), load_model(base), train, kd["dense"], v)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dense = set(kinds["dense"]["memorized_ids"])
    for k, r in kinds.items():
        mem = set(r.pop("memorized_ids"))
        r |= {"memorized": len(mem), "shared_with_dense": len(mem & dense), "jaccard_with_dense": len(mem & dense) / len(mem | dense) if mem | dense else None,
              "val_loss_over_dense": r["val_loss"] / kinds["dense"]["val_loss"], "kd_step_s": steps[k]}
    out = {"results": LAYOUT.results, "top_k": soft["top_k"], "draws": soft["draws"], "temperature": t, "kinds": kinds,
           "targets": {"sampled_bytes_per_token_max": 40, "sampled_val_loss_within": 0.01}}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
