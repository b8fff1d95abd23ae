"""How many cached bytes does the student need to come within 1 % of dense KD's validation loss, on the
embedded default's trained teacher? The bytes-vs-utility frontier behind the sampled-cache target
(≤ 40 B/token and within 1 % of dense) that `bench_cache.py` measures at one point.

Side by side in one run, through the pipeline's own commands (`bench_cache.one_kind`): dense (online KD),
sampled at 16, 64 and 256 draws, and top-k at k = 30 and 256, all at the paper's T = 2; then dense,
sampled 16 and top-k 30 at T = 1, where the miniature teacher is more peaked. The T = 1 rows test the
explanation that T = 2 flattens this teacher beyond what 16 draws can carry; they are a diagnosis, not a
setting of the default (the paper distils at T = 2).

The sampled cache stores each distinct drawn id once with its count (RS-KD's format), so its bytes grow
with the distinct ids per position, which the table gives beside them.

Needs a completed embedded-default run (`make run`, or KDMEM_BENCH_RESULTS=<a results dir with the same
teacher>). About 30 minutes on 2 cores. Writes its section of reports/benchmarks.md between its markers.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
from bench_cache import one_kind
from common import LAYOUT, ROOT, STUDY, need, run_path
from run_all import write_measured

from kdmem import config as kconfig

# (name, kind, T, distill.soft overrides)
VARIANTS = [
    ("dense T2", "dense", 2.0, {}),
    ("sampled 16 T2", "sampled", 2.0, {"draws": 16}),
    ("sampled 64 T2", "sampled", 2.0, {"draws": 64}),
    ("sampled 256 T2", "sampled", 2.0, {"draws": 256}),
    ("topk 30 T2", "topk", 2.0, {"top_k": 30}),
    ("topk 256 T2", "topk", 2.0, {"top_k": 256}),
    ("dense T1", "dense", 1.0, {}),
    ("sampled 16 T1", "sampled", 1.0, {"draws": 16}),
    ("topk 30 T1", "topk", 1.0, {"top_k": 30}),
]
BEGIN, END = "<!-- begin cache frontier: written by benchmarks/bench_cache_frontier.py -->", "<!-- end cache frontier -->"


def main() -> dict:
    cfg = kconfig.load("config.yaml")
    teacher = need(run_path("model", model=STUDY.teacher.name))
    need(run_path("cache", temperature=1.0))
    work = Path(tempfile.mkdtemp())
    rows: dict = {}
    t0 = time.time()
    try:
        for name, kind, t, soft in VARIANTS:
            tag = name.replace(" ", "-")
            r = one_kind(kind, cfg, work, teacher, t, name=tag, **soft)
            r |= {"temperature": t, **soft}
            rows[name] = r
            print(f"{name}: val {r['val_loss']:.4f}, bytes/token {r.get('bytes_per_token')}", flush=True)
            shutil.rmtree(work / f"ckpt-{tag}", ignore_errors=True)
            shutil.rmtree(work / f"cache-{tag}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ids = {name: set(r.pop("memorized_ids")) for name, r in rows.items()}
    for name, r in rows.items():
        dense = f"dense T{r['temperature']:g}"
        r |= {"memorized": len(ids[name]), "shared_with_dense": len(ids[name] & ids[dense]),
              "val_loss_over_dense": r["val_loss"] / rows[dense]["val_loss"]}
    out = {"results": str(Path(LAYOUT.results).resolve().relative_to(ROOT)) if Path(LAYOUT.results).resolve().is_relative_to(ROOT) else Path(LAYOUT.results).name, "seconds": time.time() - t0, "rows": rows,
           "meta": {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(), "cores": os.cpu_count()}}
    RAW.write_text(json.dumps(out, indent=2) + "\n")
    write_measured(ROOT / "reports" / "benchmarks.md", "\n".join(render(out)), BEGIN, END)
    print(json.dumps(out, indent=2))
    return out


RAW = ROOT / "reports" / "bench" / "cache-frontier.json"


def render(out: dict) -> list[str]:
    """The frontier's section, rendered from the raw results alone (reports/bench/cache-frontier.json)."""
    meta = out["meta"]
    lines = [
        "## The cache's bytes against the student's validation loss (`benchmarks/bench_cache_frontier.py`)", "",
        f"Measured on {meta['date']}, {meta['machine']}, {meta['cores']} CPU cores, "
        f"in one run of {out['seconds'] / 60:.0f} min on the embedded default's teacher and data. Each row is "
        "`kdmem cache-logits`, `distill --mode soft` and `score` with only the named keys changed; ÷ dense is "
        "against the dense student at the same T.", "",
        "| variant | T | bytes/token | distinct ids per position | teacher mass covered | student val loss | ÷ dense | memorized | shared with dense |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in out["rows"].items():
        stored = f"{r['bytes_per_token']:.1f}" if "bytes_per_token" in r else "–"
        distinct = f"{r['mean_distinct_ids']:.1f}" if r.get("mean_distinct_ids") is not None else "–"
        cov = r.get("mean_covered_mass") if r["kind"] == "sampled" else (1 - r["mean_tail_mass"] if r.get("mean_tail_mass") is not None else None)
        lines.append(f"| {name} | {r['temperature']:g} | {stored} | {distinct} | {'–' if cov is None else f'{cov:.2f}'} | "
                     f"{r['val_loss']:.4f} | {r['val_loss_over_dense']:.3f} | {r['memorized']} | {r['shared_with_dense']} |")
    return [*lines, "", "Raw results: [`reports/bench/cache-frontier.json`](bench/cache-frontier.json)."]


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
