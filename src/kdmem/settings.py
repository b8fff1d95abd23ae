"""Typed settings: the validated config's sections as frozen dataclasses, built once where a command reads its slice.

The schema (config.schema.yaml) is the one source of keys and defaults: `kdmem.config.validate` fills every default,
so `build` requires every field and never supplies one. A slice that lacks a key (a rule's slice cut too thin,
kdmem.rulecfg) fails here with the key's name, not deep inside a loop with a KeyError. Past this boundary the
library reads attributes, which a type checker and go-to-definition follow, not dict keys.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Any, ClassVar, TypeVar

from kdmem.errors import KdmemError

T = TypeVar("T")
S = TypeVar("S", bound="_Section")


def build(cls: type[T], section: Mapping[str, Any], where: str) -> T:
    """`cls` from a validated config section; nested dataclasses from nested sections. Keys the dataclass does
    not name are ignored (a section may carry keys another stage reads)."""
    hints = typing.get_type_hints(cls)
    kw: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in section:
            if f.default is not MISSING:  # an optional section the schema leaves absent (None), never a value
                continue
            raise KdmemError(f"{where} lacks {f.name}; build settings from a validated config (kdmem.config.load)")
        value, kind = section[f.name], hints[f.name]
        kw[f.name] = build(kind, value, f"{where}.{f.name}") if is_dataclass(kind) and isinstance(value, Mapping) else value
    return cls(**kw)


class _Section:
    """A top-level config section as settings: `Cls.of(cfg)` builds it from cfg[Cls.SECTION]."""

    SECTION: ClassVar[str]

    @classmethod
    def of(cls: type[S], cfg: Mapping[str, Any]) -> S:
        return build(cls, cfg[cls.SECTION], cls.SECTION)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Arch:
    """A scratch base's widths and kind (gpt_neox: Pythia's; llama: OLMo-2's and Qwen-3's). intermediate_size is
    filled by kdmem.config when a config leaves it out."""

    type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int

    @classmethod
    def of(cls, arch: Mapping[str, Any], where: str = "arch") -> Arch:
        return build(cls, arch, where)


@dataclass(frozen=True)
class Extraction:
    """(n, p)-discoverable extraction (Hayes et al.): top-k sampling at a temperature, n draws, probability p."""

    top_k: int
    temperature: float
    n: int
    p: float


@dataclass(frozen=True)
class Memorization(_Section):
    """How a suffix counts as memorized, and the scorer's batches (docs/protocol.md, "Memorization")."""

    SECTION: ClassVar[str] = "memorization"

    prefix_len: int
    suffix_len: int
    frac: bool
    batch_size: int
    generate_batch_size: int
    extraction: Extraction


@dataclass(frozen=True)
class Classifier(_Section):
    """The memorization classifier's trials (docs/protocol.md, "Predicting memorization")."""

    SECTION: ClassVar[str] = "classifier"

    neg_ratio: float
    test_frac: float
    trials: int
    threshold: float
    min_positives: int


@dataclass(frozen=True)
class Analysis(_Section):
    """The statistics' sizes and the primary soft student the set findings read (docs/protocol.md, "Statistics")."""

    SECTION: ClassVar[str] = "analysis"

    bootstrap: int
    primary_loss: str
    primary_temperature: float
    permutations: int
    near_copy_n: int
    min_positives: int
    utility_margin: float


@dataclass(frozen=True)
class Dataset:
    """One dataset's sampling: where D, validation and the held-out windows come from (docs/protocol.md, "Data").
    The loader's keys (source, path, text_field, ...) stay with kdmem.corpus, which reads them as given."""

    seq_len: int
    n_train: int
    n_val: int
    n_val_extra: int
    n_heldout: int
    val_split: str
    val_frac: float
    pretrain_frac: float
    exposures: list[dict]
    exposure_law: dict | None = None

    @classmethod
    def of(cls, cfg: Mapping[str, Any], dataset: str) -> Dataset:
        return build(cls, cfg["datasets"][dataset], f"datasets.{dataset}")
