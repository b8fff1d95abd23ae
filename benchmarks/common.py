"""Shared helpers for the benchmarks: they run on the outputs of `make run` (the embedded default)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.chdir(ROOT)  # config paths are relative to the repository root, as for snakemake

from kdmem import config as kconfig  # noqa: E402 (after the path above)
from kdmem.layout import Layout  # noqa: E402
from kdmem.roster import roster  # noqa: E402

# The embedded default's study: its first family and dataset, its models, and the results they were written to
# (KDMEM_BENCH_RESULTS: another run of a config with the same data and teacher). Every path comes from the layout.
CFG = kconfig.load(ROOT / "config.yaml")
FAMILY, DATASET = next(iter(CFG["families"])), next(iter(CFG["datasets"]))
STUDY = roster(CFG, FAMILY, DATASET)
LAYOUT = Layout(os.environ.get("KDMEM_BENCH_RESULTS", str(ROOT / "results")))


def run_path(name: str, **parts: object) -> Path:
    """A path of the default's run (the layout's `name`, in FAMILY and DATASET)."""
    return Path(LAYOUT.path(name, family=FAMILY, dataset=DATASET, **parts))


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
