"""A soft student's step against a cross-entropy step of the same model on the same batches, side by side in one run
on a finished run of the embedded default, and where the difference goes.

Four trainings of `steps` steps each, every one through the pipeline's own trainer (KdmemTrainer) on the same
sequences in the same order, one thread:
- ce: cross-entropy, as a baseline trains (the reference);
- full: KD from the full cache, the default's loss as the pipeline computes it now (kd.full_forward_kl_sum);
- full_dense_loss: the same cache through the general form (log_softmax of both sides, then the divergence:
  kd.dense_kd_sum), the pipeline's path before this benchmark;
- dense: the teacher inside each step (online KD, the exact alternative to a cache).
And the parts of a full-cache step, timed alone on the same batches: reading the rows (np.stack of the memory
map), the float16 -> float32 conversion two ways, and each loss's forward and backward.

    KDMEM_BENCH_RESULTS=results .venv/bin/python benchmarks/bench_kd_step.py

Needs the run's teacher and its full cache at the primary T (results/tiny/<dataset>/cache/full-T2.0).
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from bench_cache import RESULTS, step_time
from common import ROOT, need, timed

from kdmem import config as kconfig
from kdmem import kd as kkd
from kdmem import training
from kdmem.args import KDArgs
from kdmem.data import read_samples
from kdmem.logit_cache import CacheReader
from kdmem.models import load_model


def parts(reader: CacheReader, rows: list[int], vocab: int, t: float) -> dict:
    """Seconds per batch of each part of a full-cache KD step, timed alone (best of 5)."""
    where = [(reader._arrays[0], r) for r in rows]  # the default's cache is one shard
    stacked = np.stack([a["logp"][i] for a, i in where])
    lp = torch.from_numpy(stacked).float().reshape(-1, vocab)
    z = torch.randn(lp.shape[0], vocab, requires_grad=True)

    def loss(fn):
        def run():
            fn().backward()
        return run

    return {
        "read_rows_s": timed(lambda: np.stack([a["logp"][i] for a, i in where]), 5),
        "to_float32_numpy_s": timed(lambda: stacked.astype(np.float32), 5),
        "to_float32_torch_s": timed(lambda: torch.from_numpy(stacked).float(), 5),
        "ce_loss_fwd_bwd_s": timed(loss(lambda: torch.nn.functional.cross_entropy(z, torch.zeros(z.shape[0], dtype=torch.long),
                                                                                  reduction="sum")), 5),
        "full_loss_fwd_bwd_s": timed(loss(lambda: kkd.full_forward_kl_sum(z, lp, t)), 5),
        "dense_form_loss_fwd_bwd_s": timed(loss(lambda: kkd.dense_kd_sum(z, lp * t, t)), 5),
    }


def main(steps: int = 30) -> dict:
    torch.set_num_threads(1)
    cfg = kconfig.load(ROOT / "config.yaml")
    soft, t = cfg["distill"]["soft"], cfg["analysis"]["primary_temperature"]
    teacher = need(RESULTS / "models" / "teacher-s0")
    cache_dir = need(RESULTS / "cache" / f"full-T{float(t)}")
    meta = json.loads((cache_dir / "meta.json").read_text())
    train = read_samples(RESULTS / "data" / "train.parquet")
    small = cfg["families"]["tiny"]["small"]["checkpoint"]
    kd = KDArgs.from_config({**soft, "cache": "full"}, t, "forward_kl")
    vocab = meta["vocab"]
    reader = CacheReader(cache_dir, {"kind": "full"}, verify=False)
    t0 = time.perf_counter()

    def run(mode: str, cache=None, teacher_model=None) -> float:
        torch.manual_seed(0)  # the same sequences in the same order for every mode
        return step_time(mode, cache, teacher_model, load_model(small), train, kd, vocab, steps=steps)

    ce = run("ce")
    full = run("cache", reader)
    new_loss = training.full_forward_kl_sum
    training.full_forward_kl_sum = lambda z, lp, temp, chunk=1024: kkd.dense_kd_sum(z, lp * temp, temp, chunk=chunk)
    try:
        full_dense_loss = run("cache", reader)
    finally:
        training.full_forward_kl_sum = new_loss
    dense = run("online", None, load_model(str(teacher)))
    rows = reader.rows(train["sample_id"].head(32).to_list())
    out = {"steps": steps, "batch": 32, "ce_step_s": ce, "full_step_s": full, "full_dense_loss_step_s": full_dense_loss,
           "dense_step_s": dense, "full_over_ce": full / ce, "full_dense_loss_over_ce": full_dense_loss / ce, "dense_over_ce": dense / ce,
           "parts": parts(reader, rows, vocab, t),
           "cache_bytes": sum(f["bytes"] for s in meta["shards"] for f in s["files"].values()), "cache_bytes_per_token": meta["bytes_per_token"],
           "seconds": time.perf_counter() - t0}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
