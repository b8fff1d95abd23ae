"""Run every benchmark in one process and record the measured ratios in reports/benchmarks.md.
Needs the outputs of `make run` (the embedded default)."""

from __future__ import annotations

import json
import platform
import time

import bench_cache
import bench_duckdb
import bench_scoring
from common import ROOT


def main() -> None:
    t0 = time.time()
    score = bench_scoring.main()
    cache = bench_cache.main()
    duck = bench_duckdb.main()
    lines = [
        "# Benchmarks", "",
        f"Measured by `make bench` (`benchmarks/run_all.py`) on {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        "2 CPU cores, fp32, on the outputs of `make run` (embedded default). Each ratio is measured side by side in one run.", "",
        "| target | measured | met |", "|---|---|---|",
        f"| cache bytes per token at k = {cache['top_k']} ≤ 130 | {cache['bytes_per_token']:.1f} | {'yes' if cache['bytes_per_token'] <= 130 else 'no'} |",
        f"| cached-KD student val loss within 1 % of dense-logit KD | {cache['val_loss_cached']:.4f} vs {cache['val_loss_dense']:.4f} (ratio {cache['val_loss_ratio_cached_over_dense']:.4f}) | "
        f"{'yes' if abs(cache['val_loss_ratio_cached_over_dense'] - 1) <= 0.01 else 'no'} |",
        f"| cached-KD step ≥ 1.8× online KD (teacher forward in the step) | {cache['speedup_cached_vs_online']:.2f}× ({cache['step_s_cached'] * 1000:.0f} ms vs {cache['step_s_online'] * 1000:.0f} ms) | "
        f"{'yes' if cache['speedup_cached_vs_online'] >= 1.8 else 'no'} |",
        f"| scorer ≥ 3× a `generate`-based scorer, identical verdicts | {score['speedup_vs_generate']:.2f}×, identical: {score['identical_exact_verdicts']} | "
        f"{'yes' if score['speedup_vs_generate'] >= 3 and score['identical_exact_verdicts'] else 'no'} |",
        f"| scorer within 1.5× of a bare forward pass | {score['slowdown_vs_forward']:.2f}× | {'yes' if score['slowdown_vs_forward'] <= 1.5 else 'no'} |",
        f"| DuckDB build, {duck['samples']:,} samples × {duck['models']} models, ≤ 60 s | {duck['build_s']:.1f} s | {'yes' if duck['build_s'] <= 60 else 'no'} |",
        f"| each view / README query ≤ 1 s | max {duck['max_query_s']:.3f} s | {'yes' if duck['max_query_s'] <= 1 else 'no'} |",
        "", "Scoring throughput (samples/s, batch "
        f"{score['batch_size']}, {score['prefix_len']}+{score['suffix_len']} tokens): kdmem {score['ours_samples_per_s']:.0f}, "
        f"generate reference {score['generate_samples_per_s']:.0f}, bare forward {score['forward_samples_per_s']:.0f}.", "",
        "DuckDB query times (s):", "", "| query | s |", "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in duck["query_s"].items()],
        "", f"DuckDB file: {duck['db_bytes'] / 1e6:.0f} MB for {duck['score_rows']:,} score rows. Total benchmark time {time.time() - t0:.0f} s.",
        "", "Raw results:", "", "```json", json.dumps({"scoring": score, "cache": cache, "duckdb": duck}, indent=2), "```", "",
    ]
    (ROOT / "reports" / "benchmarks.md").write_text("\n".join(lines))
    print("\n".join(lines[:14]))


if __name__ == "__main__":
    main()
