"""The results layout: every path the pipeline writes, and the model-name builder and parser.

This is the one place that knows where things live under `results:`. The Snakemake rules build their
inputs and outputs from it, and the commands and the database never look at a path to learn what a
file holds: every parquet carries its own identity columns (family, dataset, split, model) and every
model's metrics.json its own name and role.

Every path is a template (TEMPLATES) whose unfilled fields stay Snakemake wildcards, so
`Layout("results").samples()` is the rule's pattern `results/{family}/{dataset}/data/{split}.parquet`
and `Layout("results").samples("tiny", "wiki", "train")` is one concrete file.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from kdmem.vocab import DEFAULT_LOSS, KD_TAG, MODEL_NAME, SIZE_OF_ROLE, DataVariant, Loss, Role, Split

# Names the rules and commands import from here; their values live in kdmem.vocab.
ROLES = tuple(Role)
SPLITS = tuple(Split)
LOSSES = tuple(Loss)
CLEANED = DataVariant.CLEANED  # the removal experiment's student: distilled on D minus the classifier's predicted samples
__all__ = ["CLEANED", "DEFAULT_LOSS", "KD_TAG", "LOSSES", "ROLES", "SIZE_OF_ROLE", "SPLITS", "Layout", "TEMPLATES", "kd_tag",
           "model_name", "parse_kd_tag", "parse_model_name", "size_of_model"]


def kd_tag(temperature: float | str, loss: str = DEFAULT_LOSS) -> str:
    """T2.0 (forward KL) or T2.0-jsd: the part of a soft student's name that says how it was distilled."""
    return f"T{temperature}" + ("" if loss == DEFAULT_LOSS else f"-{Loss(loss)}")


def parse_kd_tag(tag: str) -> tuple[float, str]:
    t, _, loss = tag[1:].partition("-")
    return float(t), loss or DEFAULT_LOSS


def model_name(role: str, seed: int | str, temperature: float | str | None = None, cleaned: bool = False,
               loss: str = DEFAULT_LOSS, variant: str = DataVariant.FULL) -> str:
    """teacher-s0, baseline-s1, student-T2.0-s0, student-T2.0-jsd-s0, student-T2.0-s0-cleaned, baseline-s0-once, hard_student-s0."""
    t = f"-{kd_tag(temperature, loss)}" if temperature is not None else ""
    variant = CLEANED if cleaned else DataVariant(variant)
    return f"{role}{t}-s{seed}" + ("" if variant == DataVariant.FULL else f"-{variant}")


def parse_model_name(name: str) -> dict:
    """The inverse of model_name: role, seed, temperature and loss (None unless a soft student), cleaned, data variant."""
    m = MODEL_NAME.fullmatch(name)
    if m is None:
        raise ValueError(f"not a kdmem model name: {name!r}")
    t = m["temperature"]
    return {"role": m["role"], "seed": int(m["seed"]), "temperature": float(t) if t else None,
            "loss": (m["loss"] or DEFAULT_LOSS) if t else None, "cleaned": m["variant"] == CLEANED,
            "data_variant": m["variant"] or str(DataVariant.FULL)}


def size_of_model(name: str) -> str:
    return str(SIZE_OF_ROLE[Role(parse_model_name(name)["role"])])


# Every output under `results:`, by name. A {field} left unfilled stays a Snakemake wildcard.
TEMPLATES = {
    # per family
    "tokenizer": "{family}/tokenizer",
    "pretrain_samples": "{family}/pretrain/pretrain.parquet",
    "pretrain_stats": "{family}/pretrain/data_stats.json",
    "base": "{family}/base/{size}",
    "base_checkpoints": "{family}/checkpoints/base-{size}",
    # per (family, dataset)
    "samples": "{family}/{dataset}/data/{split}.parquet",
    "data_stats": "{family}/{dataset}/data/data_stats.json",
    "hard_samples": "{family}/{dataset}/data/hard.parquet",
    "bases_json": "{family}/{dataset}/bases.json",
    "model": "{family}/{dataset}/models/{model}",
    "checkpoints": "{family}/{dataset}/checkpoints/{model}",
    "cache": "{family}/{dataset}/cache/T{temperature}",  # top-k (the kl_to_teacher feature's, and cache: topk)
    "sampled_cache": "{family}/{dataset}/cache/sampled-T{temperature}",  # cache: sampled
    "full_cache": "{family}/{dataset}/cache/full-T{temperature}",  # cache: full
    "scores": "{family}/{dataset}/scores/{model}/{split}.parquet",
    "score_summary": "{family}/{dataset}/scores/{model}/{split}.json",
    "classifier": "{family}/{dataset}/analysis/classifier.json",
    "classifier_trials": "{family}/{dataset}/analysis/classifier_trials.parquet",
    "classifier_coefficients": "{family}/{dataset}/analysis/classifier_coefficients.parquet",
    "predictions": "{family}/{dataset}/analysis/predictions.parquet",
    "roc": "{family}/{dataset}/analysis/roc.png",
    "mia": "{family}/{dataset}/analysis/mia.parquet",
    "mia_scores": "{family}/{dataset}/analysis/mia_scores.parquet",
    # the study
    "db": "kdmem.duckdb",
    "analysis": "report/analysis.json",
    "report": "report/report.html",
    "config_json": ".kdmem/config.json",
}


class _Wildcards(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Layout:
    """`Layout(results).<name>(*parts, **parts)` is TEMPLATES[name] under results; positional parts fill
    the template's fields in order (`samples("tiny", "wiki", "train")`), keywords fill any of them."""

    results: str

    def path(self, name: str, *args: str, **kwargs: str) -> str:
        template = TEMPLATES[name]
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        if len(args) > len(fields):
            raise TypeError(f"{name} takes at most {len(fields)} parts ({', '.join(fields)}), got {len(args)}")
        parts = _Wildcards(zip(fields[: len(args)], map(str, args), strict=True), **{k: str(v) for k, v in kwargs.items()})
        return f"{self.results}/{template.format_map(parts)}"

    def __getattr__(self, name: str):
        if name not in TEMPLATES:
            raise AttributeError(name)
        return lambda *args, **kwargs: self.path(name, *args, **kwargs)

    def log(self, step: str, *where: str) -> str:
        return "/".join([self.results, "logs", *where, f"{step}.log"])

    def benchmark(self, step: str, *where: str) -> str:
        return "/".join([self.results, "benchmarks", *where, f"{step}.tsv"])
