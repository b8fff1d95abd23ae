"""The default's exact distillation, two ways, side by side in one run: a KD step reading the teacher's full
distribution from the cache (`distill.soft.cache: full`) against a KD step running the teacher inside the step
(`dense`). Both give the same loss (tests/test_logit_cache.py); this measures what each costs per step, and the
cache's one-off write and size, on a finished run of the embedded default.

    KDMEM_BENCH_RESULTS=results .venv/bin/python benchmarks/bench_kd_step.py

Needs the run's teacher and its full cache at the primary T (results/tiny/<dataset>/cache/full-T2.0).
"""

from __future__ import annotations

import json
import time

import torch
from bench_cache import RESULTS, step_time
from common import ROOT, need

from kdmem import config as kconfig
from kdmem.args import KDArgs
from kdmem.data import read_samples
from kdmem.logit_cache import CacheReader
from kdmem.models import load_model


def main(steps: int = 30) -> dict:
    cfg = kconfig.load(ROOT / "config.yaml")
    soft, t = cfg["distill"]["soft"], cfg["analysis"]["primary_temperature"]
    teacher = need(RESULTS / "models" / "teacher-s0")
    cache_dir = need(RESULTS / "cache" / f"full-T{float(t)}")
    meta = json.loads((cache_dir / "meta.json").read_text())
    train = read_samples(RESULTS / "data" / "train.parquet")
    small = cfg["families"]["tiny"]["small"]["checkpoint"]
    kd = KDArgs.from_config({**soft, "cache": "full"}, t, "forward_kl")
    vocab = meta["vocab"]
    t0 = time.perf_counter()
    full = step_time("cache", CacheReader(cache_dir, {"kind": "full"}, verify=False), None, load_model(small), train, kd, vocab,
                     steps=steps)
    dense = step_time("online", None, load_model(str(teacher)), load_model(small), train, kd, vocab, steps=steps)
    out = {"steps": steps, "batch": 32, "full_cache_step_s": full, "dense_step_s": dense, "dense_over_full": dense / full,
           "cache_bytes": sum(f["bytes"] for s in meta["shards"] for f in s["files"].values()), "cache_bytes_per_token": meta["bytes_per_token"],
           "seconds": time.perf_counter() - t0}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
