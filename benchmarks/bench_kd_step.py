"""A soft student's step against a cross-entropy step of the same model on the same batches, side by side in one run
on a finished run of the embedded default, and where the difference goes.

Four trainings of `steps` steps each, every one through the pipeline's own trainer (KdmemTrainer) on the same
sequences in the same order, one thread, interleaved `repeats` times (medians of the step times, and of each
repeat's ratio to the CE step measured beside it):
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
from bench_cache import step_time
from common import FAMILY, ROOT, STUDY, need, run_path, timed

from kdmem import config as kconfig
from kdmem import kd as kkd
from kdmem import training
from kdmem.args import KDArgs
from kdmem.data import read_samples
from kdmem.logit_cache import CacheReader
from kdmem.models import load_model
from kdmem.vocab import Size


def parts(reader: CacheReader, rows: list[int], vocab: int, t: float) -> dict:
    """Seconds per batch of each part of a full-cache KD step, timed alone (best of 5)."""
    where = [(reader._arrays[0], r) for r in rows]  # the default's cache is one shard
    stacked = np.stack([a["logp"][i] for a, i in where])
    lp = torch.from_numpy(stacked).float().reshape(-1, vocab)
    plogp = torch.from_numpy(np.stack([a["plogp"][i] for a, i in where])).reshape(-1) if "plogp" in where[0][0] else None
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
        "full_loss_fwd_bwd_s": timed(loss(lambda: kkd.full_forward_kl_sum(z, lp, t, t_plogp=plogp)), 5),
        "dense_form_loss_fwd_bwd_s": timed(loss(lambda: kkd.dense_kd_sum(z, lp * t, t)), 5),
    }


def main(steps: int = 30, repeats: int = 5) -> dict:
    torch.set_num_threads(1)
    cfg = kconfig.load(ROOT / "config.yaml")
    soft, t = cfg["distill"]["soft"], cfg["analysis"]["primary_temperature"]
    teacher = need(run_path("model", model=STUDY.teacher.name))
    cache_dir = need(run_path("full_cache", temperature=float(t)))
    meta = json.loads((cache_dir / "meta.json").read_text())
    train = read_samples(run_path("samples", split="train"))
    small = cfg["families"][FAMILY][Size.SMALL]["checkpoint"]
    kd = KDArgs.from_config({**soft, "cache": "full"}, t, "forward_kl")
    vocab = meta["vocab"]
    reader = CacheReader(cache_dir, {"kind": "full"}, verify=False)
    t0 = time.perf_counter()

    def run(mode: str, cache=None, teacher_model=None) -> float:
        torch.manual_seed(0)  # the same sequences in the same order for every mode
        return step_time(mode, cache, teacher_model, load_model(small), train, kd, vocab, steps=steps)

    def old_loss(z, lp, temp, chunk=1024, t_plogp=None):  # the path before: log_softmax of both sides, then the divergence
        return kkd.dense_kd_sum(z, lp * temp, temp, chunk=chunk)

    new_loss = training.full_forward_kl_sum
    teacher_model = load_model(str(teacher))
    times: dict[str, list[float]] = {"ce": [], "full": [], "full_dense_loss": [], "dense": []}
    for _ in range(repeats):  # interleaved, so drift in the machine's speed falls on every mode alike
        times["ce"].append(run("ce"))
        times["full"].append(run("cache", reader))
        training.full_forward_kl_sum = old_loss
        try:
            times["full_dense_loss"].append(run("cache", reader))
        finally:
            training.full_forward_kl_sum = new_loss
        times["dense"].append(run("online", None, teacher_model))
    ce, full, full_dense_loss, dense = (float(np.median(times[k])) for k in ("ce", "full", "full_dense_loss", "dense"))
    # each repeat's ratio uses the CE step measured beside it, so slow drift of the machine cancels
    ratio = {k: float(np.median(np.asarray(times[k]) / np.asarray(times["ce"]))) for k in ("full", "full_dense_loss", "dense")}
    rows = reader.rows(train["sample_id"].head(32).to_list())
    out = {"steps": steps, "repeats": repeats, "batch": 32, "times": times, "ce_step_s": ce, "full_step_s": full, "full_dense_loss_step_s": full_dense_loss,
           "dense_step_s": dense, "full_over_ce": ratio["full"], "full_dense_loss_over_ce": ratio["full_dense_loss"], "dense_over_ce": ratio["dense"],
           "parts": parts(reader, rows, vocab, t),
           "cache_bytes": sum(f["bytes"] for s in meta["shards"] for f in s["files"].values()), "cache_bytes_per_token": meta["bytes_per_token"],
           "seconds": time.perf_counter() - t0}
    out["meta"] = {"date": time.strftime("%Y-%m-%d"), "cores": 2, "threads": 1, "results": "a fresh-clone run of the embedded default "
                   "(d2 with 3 teachers), its full cache rewritten by this kdmem (with plogp)"}
    print(json.dumps(out, indent=2))
    (ROOT / "reports" / "bench" / "kd-step.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
