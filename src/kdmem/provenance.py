"""Provenance: the config hash, git commit and package versions recorded with every result."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("kdmem", "torch", "transformers", "datasets", "tokenizers", "polars", "duckdb", "scikit-learn", "snakemake", "numpy")


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def record(cfg: dict) -> dict:
    from kdmem.config import config_hash

    return {"config_hash": config_hash(cfg), "git_commit": git_commit(Path(__file__).parent), "versions": versions()}
