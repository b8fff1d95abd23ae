"""Refuse, before any job starts, a local run whose profile asks for GPUs on a machine without CUDA.

Without this, every GPU rule would start, load its model and fall back to the CPU (device: auto),
or fail one by one (device: cuda), hours into a run. On SLURM the GPUs are on the compute nodes,
not the submit host, so the check applies to local execution only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _value(v: Any) -> float:
    v = getattr(v, "value", v)  # Snakemake wraps parsed resources
    try:
        return float(v or 0)
    except (TypeError, ValueError):
        return 0.0


def requested_gpus(overwrite_resources: Mapping, global_resources: Mapping, default_resources: Mapping | None) -> dict[str, float]:
    """Where the run asks for GPUs: {'set-resources finetune': 1, 'resources': 2, ...}, zeros left out."""
    asked: dict[str, float] = {}
    for rule, res in (overwrite_resources or {}).items():
        n = _value(dict(res.items()).get("gpu") if hasattr(res, "items") else None)
        if n > 0:
            asked[f"set-resources {rule}"] = n
    for label, res in (("resources", global_resources), ("default-resources", default_resources)):
        if res is not None and hasattr(res, "get") and _value(res.get("gpu")) > 0:
            asked[label] = _value(res.get("gpu"))
    return asked


def check(asked: dict[str, float], cuda_available: bool) -> str | None:
    """The one-line error, or None when the run may start."""
    if not asked or cuda_available:
        return None
    rules = sorted(k.split(" ", 1)[1] for k in asked if k.startswith("set-resources "))
    parts = [f"{k} gpu={asked[k]:g}" for k in ("resources", "default-resources") if k in asked]
    if rules:
        parts.append(f"set-resources gpu for {len(rules)} rule(s): {', '.join(rules[:3])}{', ...' if len(rules) > 3 else ''}")
    where = "; ".join(parts)
    return (f"the profile asks for GPUs ({where}) but this machine has no CUDA device; "
            "run with --profile profiles/default on a CPU machine, or on a GPU node")
