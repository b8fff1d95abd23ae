"""One config channel per rule: the exact slice of the study config each command reads.

A slice has the config's own shape (`{"seed": 0, "datasets": {"wiki": {...}}}`), so the library reads
it exactly as it would read the whole config, and a key left out of a slice is a KeyError in the
tests, not a silent default. The Snakemake rule passes its slice on the shell line (`--config-json`)
and tracks the very same string as a `params:` entry, so changing any key a command reads reruns
that rule and what depends on it, and no other key does. A command run by hand with `--config FILE`
validates the whole file and takes the same slice, so it reads the same keys either way.

Keys that only shape the DAG (`temperatures`, `losses`, `baseline_seeds`, `finetune.teacher_seeds`, `distill.soft.seeds`, `distill.hard.seeds`, `distill.hard.enabled`,
`removal.enabled`, `mia.enabled`, `results`) are in no slice: they add or remove jobs rather than change one.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from kdmem.vocab import SIZE_OF_ROLE, Size

# The dataset keys that decide the samples (seq_len, counts, duplication). Every other key of a dataset
# entry says which documents exist and how they split, which the tokenizer of a scratch family reads too.
SAMPLE_KEYS = ("seq_len", "n_train", "n_val", "n_val_extra", "n_heldout", "val_split", "exposures")


def _pick(d: dict, *keys: str) -> dict:
    return {k: d[k] for k in keys if k in d}


def _docs(ds: dict) -> dict:
    return {k: v for k, v in ds.items() if k not in SAMPLE_KEYS}


def _models(cfg: dict, family: str, *sizes: str) -> dict:
    return {"families": {family: {s: cfg["families"][family][s] for s in sizes}}}


def _tokenizer(cfg: dict, family: str) -> dict:
    p = cfg["pretrain"]["dataset"]
    return {"seed": cfg["seed"], "pretrain": {"dataset": p}, "datasets": {p: _docs(cfg["datasets"][p])},
            "families": {family: _pick(cfg["families"][family], "tokenizer")}}


def _prepare(cfg: dict, dataset: str) -> dict:
    return {"seed": cfg["seed"], "datasets": {dataset: cfg["datasets"][dataset]}}


def _prepare_pretrain(cfg: dict) -> dict:
    p = cfg["pretrain"]["dataset"]
    return {**_prepare(cfg, p), "pretrain": _pick(cfg["pretrain"], "dataset", "max_tokens")}


def _pretrain(cfg: dict, family: str, size: str) -> dict:
    pre = cfg["pretrain"]
    return {"seed": cfg["seed"], "device": cfg["device"], "parallel": cfg["parallel"], **_models(cfg, family, size),
            "pretrain": {"optim": pre["optim"], "by_size": {size: pre["by_size"][size]}}}


def _finetune(cfg: dict, family: str, role: str) -> dict:
    return {"device": cfg["device"], "parallel": cfg["parallel"], **_models(cfg, family, SIZE_OF_ROLE[role]),
            "finetune": {role: cfg["finetune"][role]}}


def _distill(cfg: dict, family: str, mode: str) -> dict:
    if mode == "hard":
        return {"device": cfg["device"], "parallel": cfg["parallel"], **_models(cfg, family, Size.SMALL),
                "distill": {"hard": _pick(cfg["distill"]["hard"], "optim")}}  # seeds come as --seed
    # T and the loss come as --temperature and --loss; of the cache keys, only the configured kind's.
    unread = {"topk": ("draws",), "sampled": ("top_k", "tail"), "full": ("top_k", "tail", "draws"),
              "dense": ("top_k", "tail", "draws")}[cfg["distill"]["soft"]["cache"]]
    soft = {k: v for k, v in cfg["distill"]["soft"].items() if k not in ("temperatures", "losses", "seeds", *unread)}
    return {"device": cfg["device"], "parallel": cfg["parallel"], **_models(cfg, family, Size.SMALL, Size.LARGE),
            "distill": {"soft": soft}}


SLICERS: dict[str, Callable[..., dict]] = {
    "tokenizer": lambda cfg, family: _tokenizer(cfg, family),
    "prepare": lambda cfg, dataset: _prepare(cfg, dataset),
    "prepare_pretrain": lambda cfg: _prepare_pretrain(cfg),
    "pretrain": lambda cfg, family, size: _pretrain(cfg, family, size),
    "finetune": lambda cfg, family, role: _finetune(cfg, family, role),
    "evaluate_bases": lambda cfg, family: {"device": cfg["device"], **_models(cfg, family, *Size)},
    "cache_logits": lambda cfg, family, kind: {
        "device": cfg["device"], **_models(cfg, family, Size.LARGE), **({"seed": cfg["seed"]} if kind == "sampled" else {}),
        "distill": {"soft": _pick(cfg["distill"]["soft"], *{"topk": ("top_k",), "sampled": ("draws",), "full": ()}[kind])},
        "memorization": _pick(cfg["memorization"], "batch_size")},
    "generate_hard": lambda cfg, family: {"device": cfg["device"], **_models(cfg, family, Size.LARGE),
                                          "distill": {"hard": _pick(cfg["distill"]["hard"], "prefix_len", "batch_size")}},
    "distill": lambda cfg, family, mode: _distill(cfg, family, mode),
    "score": lambda cfg, family, size: {"device": cfg["device"], **_models(cfg, family, size), "memorization": cfg["memorization"],
                                        "mia": _pick(cfg["mia"], "k")},
    "mia": lambda cfg, family: {"seed": cfg["seed"], "mia": {k: v for k, v in cfg["mia"].items() if k != "k"}},
    "classify": lambda cfg: _pick(cfg, "seed", "classifier"),
    "build_db": lambda cfg: {"memorization": _pick(cfg["memorization"], "prefix_len", "suffix_len"),
                             "analysis": _pick(cfg["analysis"], "near_copy_n")},
    "analyze": lambda cfg: _pick(cfg, "seed", "analysis"),
    "audit": lambda cfg: {"device": cfg["device"], "datasets": {d: _pick(v, "seq_len") for d, v in cfg["datasets"].items()},
                          "distill": {"soft": _pick(cfg["distill"]["soft"], "top_k")}},
}


def slice_for(cfg: dict, rule: str, **context: str) -> dict:
    """The config slice `rule`'s command reads, for one job (context: its family, dataset, size, role or mode)."""
    return SLICERS[rule](cfg, **context)


def as_arg(cfg: dict, rule: str, **context: str) -> str:
    """The slice as one compact, key-sorted JSON string: the rule's tracked param and its --config-json."""
    return json.dumps(slice_for(cfg, rule, **context), sort_keys=True, separators=(",", ":"))
