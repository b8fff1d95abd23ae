"""Shared helpers for the benchmarks: they run on the outputs of `make run` (the embedded default)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.chdir(ROOT)  # config paths are relative to the repository root, as for snakemake

RESULTS = ROOT / "results" / "tiny" / "wiki"


def need(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"benchmark needs {path}; run `make run` first")
    return path


def timed(fn, repeat: int = 3, warm: bool = True) -> float:
    """Best-of-`repeat` wall time of fn(), after one warm-up call (unless the caller made it)."""
    if warm:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
