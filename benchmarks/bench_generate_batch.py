"""Scoring's generate cross-check in batches of 64 against 256 (`memorization.generate_batch_size`), side by side
in one run on a finished run of the embedded default.

For the run's teacher and first baseline, the pipeline's own `scoring.score_samples` scores the same training
samples with the generation batch at each size, one thread (as the score rule runs), interleaved `repeats` times;
the ratio is the median of each repeat's ratio to the 64-batch time measured beside it. The per-sample tables of
the two sizes are compared column by column: the greedy tokens must not depend on how samples are batched.

    KDMEM_BENCH_RESULTS=results .venv/bin/python benchmarks/bench_generate_batch.py
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

import torch
from common import FAMILY, ROOT, STUDY, need, run_path

from kdmem import config as kconfig
from kdmem.data import read_samples
from kdmem.models import load_model, pick_device
from kdmem.scoring import score_samples
from kdmem.settings import Memorization
from kdmem.tokenizer import load_tokenizer

SIZES = (64, 256)


def main(n: int = 1024, repeats: int = 3) -> dict:
    torch.set_num_threads(1)
    cfg = kconfig.load(ROOT / "config.yaml")
    mem = Memorization.of(cfg)
    tok = load_tokenizer(cfg["families"][FAMILY]["tokenizer"])
    samples = read_samples(need(run_path("samples", split="train"))).head(n)
    dev = pick_device("cpu")
    out: dict = {"n_samples": samples.height, "repeats": repeats, "sizes": list(SIZES), "models": {}}
    for name in (STUDY.teacher.name, STUDY.primary_baseline.name):
        model = load_model(str(need(run_path("model", model=name))))
        vocab = model.config.vocab_size

        def score(g: int, model=model, vocab=vocab):
            return score_samples(model, tok, dev, samples, vocab, dataclasses.replace(mem, frac=True, generate_batch_size=g), cfg["mia"]["k"])

        score(SIZES[0])  # warm-up
        times: dict[int, list[float]] = {g: [] for g in SIZES}
        tables = {}
        for _ in range(repeats):
            for g in SIZES:
                t = time.perf_counter()
                tables[g] = score(g)
                times[g].append(time.perf_counter() - t)
        ratios = [b / a for a, b in zip(times[SIZES[0]], times[SIZES[1]], strict=True)]
        out["models"][name] = {
            "seconds_median": {str(g): statistics.median(v) for g, v in times.items()},
            "ratio_median": statistics.median(ratios),
            "tables_equal": tables[SIZES[0]].equals(tables[SIZES[1]]),
            "exact_gen_memorized": int(tables[SIZES[1]]["exact_gen"].sum()),
        }
        print(name, json.dumps(out["models"][name]))
    return out


if __name__ == "__main__":
    res = main()
    path = ROOT / "reports" / "bench" / "generate-batch.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {path}")
