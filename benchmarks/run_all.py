"""Run every benchmark in one process and record the measured ratios in reports/benchmarks.md.

Two shapes side by side (bench_shapes: the embedded miniature and Pythia-160M's shape, random weights),
the cache's quality on the trained miniature (bench_cache, needs the outputs of `make run`), the
DuckDB store at 1 M samples (bench_duckdb) and every job's fixed cost (bench_jobs)."""

from __future__ import annotations

import json
import os
import platform
import time

import bench_cache
import bench_duckdb
import bench_jobs
import bench_shapes
from common import ROOT

TARGETS = {"miniature": {}, "pythia-160m": {"scorer_vs_generate": 4.0, "scorer_vs_forward": 1.3, "cached_vs_online": 2.0}}


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def shape_rows(shapes: dict) -> list[str]:
    names = list(shapes)
    rows = ["| measure | " + " | ".join(names) + " | target (Pythia shape) |", "|---|" + "---|" * len(names) + "---|"]
    t = TARGETS["pythia-160m"]

    def row(label: str, fn, target: str = "") -> None:
        rows.append(f"| {label} | " + " | ".join(fn(shapes[n]) for n in names) + f" | {target} |")

    p = shapes.get("pythia-160m")
    row("teacher params / vocab / tokens per sample (window)", lambda s: f"{s['teacher_params'] / 1e6:.1f} M / {s['vocab']:,} / {s['tokens']} ({s['window']})")
    row("forward FLOPs per token (torch's count) / 2·N", lambda s: f"{s['forward_flops_per_token'] / 1e6:.0f} M / {s['over_2N']:.2f}")
    row("scorer (all signals), samples/s", lambda s: f"{s['scoring']['samples_per_s']['scorer']:.2f}")
    row("exact-verdict path, samples/s", lambda s: f"{s['scoring']['samples_per_s']['exact_path']:.2f}")
    row("HF `generate`, samples/s", lambda s: f"{s['scoring']['samples_per_s']['generate']:.2f}")
    row("bare forward, samples/s", lambda s: f"{s['scoring']['samples_per_s']['forward']:.2f}")
    row("scorer vs generate", lambda s: f"{s['scoring']['scorer_vs_generate']:.2f}×",
        f"≥ {t['scorer_vs_generate']}× ({_met(p is not None and p['scoring']['scorer_vs_generate'] >= t['scorer_vs_generate'])})")
    row("exact-verdict path vs generate", lambda s: f"{s['scoring']['exact_path_vs_generate']:.2f}×")
    row("scorer time / bare forward", lambda s: f"{s['scoring']['scorer_vs_forward']:.2f}×",
        f"≤ {t['scorer_vs_forward']}× ({_met(p is not None and p['scoring']['scorer_vs_forward'] <= t['scorer_vs_forward'])})")
    row("verdicts identical (scorer, exact path, generate)", lambda s: f"{s['scoring']['verdicts_identical']} "
        f"({s['scoring']['memorized_found']}/{s['scoring']['memorized_by_construction']} memorized by construction found)")
    row("profile, s: scorer / window forward / full forward", lambda s: "{scorer:.2f} / {exact_path:.2f} / {forward:.2f}".format(**s["scoring"]["profile_s"]))
    row("profile, s: generate = prefill + decode steps × per step", lambda s: "{generate:.2f} = {generate_prefill:.2f} + {n} × {generate_per_decode_step:.4f}".format(
        n=int(s["window"].split("+")[1]) - 1, **s["scoring"]["profile_s"]))
    row("student params", lambda s: f"{s['kd']['student_params'] / 1e6:.1f} M")
    row("KD step from the cache / online, s", lambda s: f"{s['kd']['cached_step_s']:.3f} / {s['kd']['online_step_s']:.3f}")
    row("cached KD step vs online", lambda s: f"{s['kd']['cached_vs_online']:.2f}×",
        f"≥ {t['cached_vs_online']}× ({_met(p is not None and p['kd']['cached_vs_online'] >= t['cached_vs_online'])})")
    row("cache write, tokens/s (k = 30)", lambda s: f"{s['kd']['cache_write_tokens_per_s']:,.0f}")
    row("cache bytes/token (k = 30)", lambda s: f"{s['kd']['cache_bytes_per_token']:.1f}")
    row("sampled cache (16 draws): write tokens/s / bytes/token", lambda s: f"{s['kd']['sampled_write_tokens_per_s']:,.0f} / {s['kd']['sampled_bytes_per_token']:.1f}",
        f"≤ 40 B ({_met(p is not None and p['kd']['sampled_bytes_per_token'] <= 40)})")
    row("KD step from the sampled cache, s (vs online)", lambda s: f"{s['kd']['sampled_step_s']:.3f} ({s['kd']['sampled_vs_online']:.2f}×)")
    row("teacher mass: top-30 leaves out / 16 draws cover", lambda s: f"{s['kd']['topk_mean_tail_mass']:.3f} / {s['kd']['sampled_mean_covered_mass']:.3f}")
    return rows


def cache_rows(cache: dict) -> list[str]:
    k = cache["kinds"]
    rows = ["| `distill.soft.cache` | bytes/token | cache write, tokens/s | KD step, s | student val loss (÷ dense) | memorized | shared with dense (Jaccard) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in k.items():
        label = {"full": "full (the whole distribution)", "topk": f"topk (k = {cache['top_k']})", "sampled": f"sampled ({cache['draws']} draws)",
                 "dense": "dense (online)"}[name]
        stored = f"{r['bytes_per_token']:.1f} | {r['cache_write_tokens_per_s']:,.0f}" if "bytes_per_token" in r else "– (no cache) | –"
        rows.append(f"| {label} | {stored} | {r['kd_step_s']:.3f} | "
                    f"{r['val_loss']:.4f} ({r['val_loss_over_dense']:.4f}) | {r['memorized']} | {r['shared_with_dense']} ({r['jaccard_with_dense'] or 0:.2f}) |")
    s = k["sampled"]
    rows += ["", "| target | measured | met |", "|---|---|---|",
             f"| sampled cache ≤ 40 B/token | {s['bytes_per_token']:.1f} | {_met(s['bytes_per_token'] <= 40)} |",
             f"| sampled-cache student val loss within 1 % of dense | {s['val_loss']:.4f} vs {k['dense']['val_loss']:.4f} "
             f"({100 * (s['val_loss_over_dense'] - 1):+.2f} %) | {_met(abs(s['val_loss_over_dense'] - 1) <= 0.01)} |",
             f"| (top-k, for comparison) within 1 % of dense | {k['topk']['val_loss']:.4f} ({100 * (k['topk']['val_loss_over_dense'] - 1):+.2f} %) | "
             f"{_met(abs(k['topk']['val_loss_over_dense'] - 1) <= 0.01)} |"]
    return rows


RAW = ROOT / "reports" / "bench" / "make-bench.json"


def render(raw: dict) -> list[str]:
    """The measured section, rendered from the raw results alone (reports/bench/make-bench.json), so
    `benchmarks/render_reports.py` can redraw it and a test can check it is not stale."""
    shapes, cache, duck, jobs, meta = raw["shapes"], raw["cache"], raw["duckdb"], raw["jobs"], raw["meta"]
    return [
        "# Benchmarks", "",
        f"Measured by `make bench` (`benchmarks/run_all.py`) on {meta['date']}, {meta['machine']}, "
        f"{meta['cores']} CPU cores, fp32, no GPU. Each ratio is measured side by side in one run.", "",
        "## Two shapes, side by side (random weights; `benchmarks/bench_shapes.py`)", "",
        *shape_rows(shapes), "",
        "## The student's view of the teacher on the trained miniature (`bench_cache.py`, the pipeline's commands)", "",
        *cache_rows(cache),
        "", "## DuckDB (`bench_duckdb.py`)", "",
        "| target | measured | met |", "|---|---|---|",
        f"| build, {duck['samples']:,} samples × {duck['models']} models, ≤ 60 s | {duck['build_s']:.1f} s | {_met(duck['build_s'] <= 60)} |",
        f"| each view / README query ≤ 1 s | max {duck['max_query_s']:.3f} s | {_met(duck['max_query_s'] <= 1)} |",
        "", "## Each job's fixed cost (`bench_jobs.py`; fresh process, best of 3)", "",
        "| command | `kdmem <cmd> --help`, s | its body's imports, s | imports the HF Trainer |", "|---|---|---|---|",
        *[f"| `{k}` | {v['help_s']:.2f} | {v['body_import_s']:.2f} | {'yes' if v['imports_trainer'] else 'no'} |" for k, v in jobs["commands"].items()],
        "", f"Total benchmark time {meta['seconds']:.0f} s.", "",
        "Raw results: [`reports/bench/make-bench.json`](bench/make-bench.json).", "",
    ]


def main() -> None:
    t0 = time.time()
    raw = {"shapes": bench_shapes.main(), "cache": bench_cache.main(), "duckdb": bench_duckdb.main(), "jobs": bench_jobs.main(ROOT / "results")}
    raw["meta"] = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                   "seconds": round(time.time() - t0)}
    RAW.write_text(json.dumps(raw, indent=2) + "\n")
    lines = render(raw)
    write_measured(ROOT / "reports" / "benchmarks.md", "\n".join(lines[2:]))
    print("\n".join(lines[:40]))


BEGIN, END = "<!-- begin make bench: written by benchmarks/run_all.py -->", "<!-- end make bench -->"


def write_measured(path, text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the measured part between the markers, keeping the written analysis around it (a first run
    appends the markers)."""
    old = path.read_text() if path.is_file() else "# Benchmarks\n\n"
    head, _, rest = old.partition(begin)
    tail = rest.partition(end)[2] if rest else ""
    path.write_text(f"{head.rstrip()}\n\n{begin}\n{text}\n{end}\n{tail.lstrip()}")


if __name__ == "__main__":
    main()
