"""The results layout: every path the pipeline writes.

This is the one place that knows where things live under `results:`. The Snakemake rules build their
inputs and outputs from it, and so do the commands that write a set of files (analyze's figures, the
report's reading of them), the benchmarks and the Makefile (`kdmem path`); the database never looks at
a path to learn what a file holds: every parquet carries its own identity columns (family, dataset,
split, model) and every model's metrics.json its own record (kdmem.roster.ModelSpec).

Every path is a template (TEMPLATES) with one method each; a part left None stays a Snakemake
wildcard, so `Layout("results").samples()` is the rule's pattern `results/{family}/{dataset}/data/{split}.parquet`
and `Layout("results").samples("tiny", "wiki", "train")` is one concrete file.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from enum import StrEnum

from kdmem.roster import ModelSpec


def size_of_model(name: str) -> str:
    """The base size a model name's role starts from (a rule's wildcard to its family slice)."""
    return str(ModelSpec.parse(name).size)


class Figure(StrEnum):
    """The figures analyze draws, by the kind their path names (Layout.figure, Layout.families_figure)."""

    RATES = "rates"
    EXPOSURE = "exposure"
    VENN = "venn"
    ENTROPY = "entropy"
    TEMPERATURE = "temperature"  # the soft students by temperature, drawn when the config sweeps it
    LOSS = "loss"  # the soft students by KD loss, likewise
    COVERAGE = "coverage"  # across families on one dataset


# Every output under `results:`, by name. A {field} left unfilled stays a Snakemake wildcard.
TEMPLATES = {
    # per family
    "tokenizer": "{family}/tokenizer",
    "pretrain_samples": "{family}/pretrain/pretrain.parquet",
    "pretrain_stats": "{family}/pretrain/data_stats.json",
    "scratch_base": "{family}/base/{size}",  # a base pretrained here (init: scratch)
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
    "figure": "report/{family}-{dataset}-{kind}.png",  # analyze's figures of one (family, dataset): rates, venn, ...
    "families_figure": "report/families-{dataset}-{kind}.png",  # the across-families figures
    "report": "report/report.html",
    "config_json": ".kdmem/config.json",
}


class _Wildcards(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True)
class Layout:
    """`Layout(results).<name>(...)` is TEMPLATES[name] under results; arguments fill the template's fields
    (positionally in their order, or by name), and a field left None stays a wildcard."""

    results: str

    def path(self, name: str, **parts: object) -> str:
        fields = {f for _, f, _, _ in string.Formatter().parse(TEMPLATES[name]) if f}
        if unknown := sorted(set(parts) - fields):
            raise TypeError(f"{name} has no part {unknown[0]} (it has {', '.join(sorted(fields))})")
        filled = _Wildcards({k: str(v) for k, v in parts.items() if v is not None})
        return f"{self.results}/{TEMPLATES[name].format_map(filled)}"

    @staticmethod
    def of(name: str, path: str) -> Layout:
        """The layout a file of template `name` (one without parts, such as the store) lies in: how a rule finds
        the results folder from its input, so that it runs where the input is, not where the config says."""
        rel = "/" + TEMPLATES[name]
        if not str(path).endswith(rel):
            raise ValueError(f"{path} is not a {name} path (…{rel})")
        return Layout(str(path)[: -len(rel)] or ".")

    def log(self, step: str, *where: str) -> str:
        return "/".join([self.results, "logs", *where, f"{step}.log"])

    def benchmark(self, step: str, *where: str) -> str:
        return "/".join([self.results, "benchmarks", *where, f"{step}.tsv"])

    def tokenizer(self, family: object = None) -> str:
        return self.path("tokenizer", family=family)

    def pretrain_samples(self, family: object = None) -> str:
        return self.path("pretrain_samples", family=family)

    def pretrain_stats(self, family: object = None) -> str:
        return self.path("pretrain_stats", family=family)

    def scratch_base(self, family: object = None, size: object = None) -> str:
        return self.path("scratch_base", family=family, size=size)

    def base_checkpoints(self, family: object = None, size: object = None) -> str:
        return self.path("base_checkpoints", family=family, size=size)

    def samples(self, family: object = None, dataset: object = None, split: object = None) -> str:
        return self.path("samples", family=family, dataset=dataset, split=split)

    def data_stats(self, family: object = None, dataset: object = None) -> str:
        return self.path("data_stats", family=family, dataset=dataset)

    def hard_samples(self, family: object = None, dataset: object = None) -> str:
        return self.path("hard_samples", family=family, dataset=dataset)

    def bases_json(self, family: object = None, dataset: object = None) -> str:
        return self.path("bases_json", family=family, dataset=dataset)

    def model(self, family: object = None, dataset: object = None, model: object = None) -> str:
        return self.path("model", family=family, dataset=dataset, model=model)

    def checkpoints(self, family: object = None, dataset: object = None, model: object = None) -> str:
        return self.path("checkpoints", family=family, dataset=dataset, model=model)

    def cache(self, family: object = None, dataset: object = None, temperature: object = None) -> str:
        return self.path("cache", family=family, dataset=dataset, temperature=temperature)

    def sampled_cache(self, family: object = None, dataset: object = None, temperature: object = None) -> str:
        return self.path("sampled_cache", family=family, dataset=dataset, temperature=temperature)

    def full_cache(self, family: object = None, dataset: object = None, temperature: object = None) -> str:
        return self.path("full_cache", family=family, dataset=dataset, temperature=temperature)

    def scores(self, family: object = None, dataset: object = None, model: object = None, split: object = None) -> str:
        return self.path("scores", family=family, dataset=dataset, model=model, split=split)

    def score_summary(self, family: object = None, dataset: object = None, model: object = None, split: object = None) -> str:
        return self.path("score_summary", family=family, dataset=dataset, model=model, split=split)

    def classifier(self, family: object = None, dataset: object = None) -> str:
        return self.path("classifier", family=family, dataset=dataset)

    def classifier_trials(self, family: object = None, dataset: object = None) -> str:
        return self.path("classifier_trials", family=family, dataset=dataset)

    def classifier_coefficients(self, family: object = None, dataset: object = None) -> str:
        return self.path("classifier_coefficients", family=family, dataset=dataset)

    def predictions(self, family: object = None, dataset: object = None) -> str:
        return self.path("predictions", family=family, dataset=dataset)

    def roc(self, family: object = None, dataset: object = None) -> str:
        return self.path("roc", family=family, dataset=dataset)

    def mia(self, family: object = None, dataset: object = None) -> str:
        return self.path("mia", family=family, dataset=dataset)

    def mia_scores(self, family: object = None, dataset: object = None) -> str:
        return self.path("mia_scores", family=family, dataset=dataset)

    def db(self) -> str:
        return self.path("db")

    def analysis(self) -> str:
        return self.path("analysis")

    def figure(self, family: object = None, dataset: object = None, kind: object = None) -> str:
        return self.path("figure", family=family, dataset=dataset, kind=kind)

    def families_figure(self, dataset: object = None, kind: object = None) -> str:
        return self.path("families_figure", dataset=dataset, kind=kind)

    def report(self) -> str:
        return self.path("report")

    def config_json(self) -> str:
        return self.path("config_json")
