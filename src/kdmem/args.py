"""Typed arguments at the library boundary: what a training loop or a cache writer needs, as dataclasses.

A command builds them once from its rule's config slice (kdmem.rulecfg), which the schema has already
filled with every default; `from_config` takes every field from the slice, so a key the slice lacks is an
error here, not a silent fallback. The library below (training, logit_cache) never reads a config dict.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from kdmem.errors import KdmemError
from kdmem.vocab import CacheKind, Loss


def _take(cls, d: dict, where: str, **given: Any) -> Any:
    names = [f.name for f in fields(cls) if f.name not in given]
    missing = [n for n in names if n not in d]
    if missing:
        raise KdmemError(f"config slice {where} lacks {', '.join(missing)}; the rule's slice (kdmem.rulecfg) must carry it")
    return cls(**{n: d[n] for n in names}, **given)


@dataclass(frozen=True)
class OptimArgs:
    """One training run's optimisation (the schema's $defs/optim; HF Trainer, AdamW)."""

    lr: float
    schedule: str
    epochs: float
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    save_steps: int

    @classmethod
    def from_config(cls, d: dict, where: str = "optim") -> OptimArgs:
        return _take(cls, d, where)


@dataclass(frozen=True)
class KDArgs:
    """The soft student's loss: divergence at temperature T, times T², plus alpha_ce of cross-entropy."""

    temperature: float
    loss: Loss
    alpha_ce: float
    jsd_beta: float
    kl_chunk: int
    tail: str | None  # how a top-k cache's tail mass enters the loss (uniform | bucket); None for the other kinds

    @classmethod
    def from_config(cls, soft: dict, temperature: float, loss: str) -> KDArgs:
        # Only a top-k cache has a tail, and only its slice carries the key (kdmem.rulecfg drops unread keys).
        tail = soft["tail"] if soft["cache"] == CacheKind.TOPK else None
        return _take(cls, soft, "distill.soft", temperature=float(temperature), loss=Loss(loss), tail=tail)


@dataclass(frozen=True)
class CacheSpec:
    """What a teacher cache holds: its kind, temperature, and the kind's width (top_k or draws, with the draws' seed)."""

    kind: CacheKind
    temperature: float
    top_k: int = 0  # kind topk
    draws: int = 0  # kind sampled
    seed: int = 0  # kind sampled: the draws' generator

    @classmethod
    def from_config(cls, soft: dict, kind: str, temperature: float, seed: int) -> CacheSpec:
        k = CacheKind(kind)
        need = {CacheKind.TOPK: ("top_k",), CacheKind.SAMPLED: ("draws",)}.get(k, ())
        if missing := [n for n in need if n not in soft]:
            raise KdmemError(f"config slice distill.soft lacks {', '.join(missing)}, which a {k} cache needs")
        return cls(kind=k, temperature=float(temperature), top_k=soft["top_k"] if k == CacheKind.TOPK else 0,
                   draws=soft["draws"] if k == CacheKind.SAMPLED else 0, seed=seed if k == CacheKind.SAMPLED else 0)

    @property
    def width(self) -> int:
        """Entries per position: k, the draws, or (full) the vocabulary, which the writer knows."""
        return {CacheKind.TOPK: self.top_k, CacheKind.SAMPLED: self.draws}.get(self.kind, 0)
