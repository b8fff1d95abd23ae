"""What every subcommand shares: the options named once, the config slice, and model loading.

Each option that several commands take is defined here and only here, so its name and help cannot
drift between commands. Imports stay light: a command pays for torch only inside its own body.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand: its arguments and its body, defined side by side in its stage module."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None] | None  # None: no options beyond --config and --log
    run: Callable[[argparse.Namespace], None]
    config: bool = True  # takes --config / --config-json


def config_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="study config (YAML or JSON): validated, then cut to the slice this command reads")
    g.add_argument("--config-json", help="the slice itself, as JSON (what the Snakemake rule passes and tracks)")


def log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log", help="log file (the Snakemake rule's log:)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def load_config(args: argparse.Namespace, rule: str, **context: str) -> dict:
    """The config slice of `rule` (kdmem.rulecfg): passed by the rule, or cut from a whole config file."""
    if args.config_json is not None:
        return json.loads(args.config_json)
    from kdmem import config as kconfig
    from kdmem.rulecfg import slice_for

    return slice_for(kconfig.load(args.config), rule, **context)


# Every option that more than one command takes, defined once: its type, arity and meaning. A command
# may narrow the help to what the file is for it, or make the option optional.
SHARED: dict[str, dict] = {
    "--family": {"help": "family name (config families.<name>)"},
    "--dataset": {"help": "dataset name (config datasets.<name>)"},
    "--tokenizer": {"help": "the family's tokenizer: folder or hub name"},
    "--teacher": {"help": "fine-tuned teacher folder"},
    "--base": {"help": "base model folder or hub checkpoint"},
    "--seed": {"type": int, "help": "seed: data order (and dropout)"},
    "--temperature": {"type": float, "help": "temperature T"},
    "--train": {"help": "train.parquet (D)"},
    "--val": {"help": "val.parquet (validation samples)"},
    "--samples": {"nargs": "+", "help": "samples parquet files"},
    "--cache": {"help": "teacher logit cache folder"},
    "--classifier": {"nargs": "*", "default": [], "help": "classifier.json files from classify"},
    "--db": {"help": "the .duckdb file"},
    "--out": {"help": "file or folder to write"},
}


def option(p: argparse.ArgumentParser, flag: str, required: bool = True, **narrow) -> None:
    p.add_argument(flag, required=required, **{**SHARED[flag], **narrow})


def pair_options(p: argparse.ArgumentParser) -> None:
    option(p, "--family")
    option(p, "--dataset")


def teacher_pass_options(p: argparse.ArgumentParser, train_help: str) -> None:
    """What a pass of the fine-tuned teacher over D needs (cache-logits, generate-hard)."""
    pair_options(p)
    option(p, "--teacher")
    option(p, "--tokenizer")
    option(p, "--train", help=train_help)


def training_options(p: argparse.ArgumentParser, train_help: str, start: dict[str, str] | None = None) -> None:
    """The inputs and outputs every training command shares (pretrain, finetune, distill). `start`: the
    help of --seed and --base, for the commands that start from a base checkpoint with their own seed."""
    for flag, help in (start or {}).items():
        option(p, flag, help=help)
    option(p, "--tokenizer")
    option(p, "--train", help=train_help)
    option(p, "--val")
    option(p, "--out", help="model folder to write (safetensors, metrics.json, train_log.jsonl)")
    p.add_argument("--ckpt", required=True, help="checkpoint folder, kept across a killed run so the rerun resumes")
    p.add_argument("--nproc", type=int, default=0, help="processes, one per GPU (the rule passes its gpu resource); "
                   "above 1 the command reruns itself under torchrun: DDP, or FSDP for models >= parallel.fsdp_min_params")


def provenance(cfg: dict, meta: dict) -> dict:
    import time

    from kdmem.provenance import record

    return {**meta, **record(cfg), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def family_cfg(cfg: dict, family: str) -> dict:
    from kdmem.errors import KdmemError

    if family not in cfg["families"]:
        raise KdmemError(f"family '{family}' is not in the config (families: {', '.join(cfg['families'])})")
    return cfg["families"][family]


def load_family_model(cfg: dict, family: str, size: str, path: str, tok, what: str):
    """A model folder or checkpoint of the family, with its vocab checked against the tokenizer."""
    from kdmem.models import load_model, shared_vocab

    m = family_cfg(cfg, family)[size]
    model = load_model(path, trust_remote_code=m["trust_remote_code"], revision=m["revision"])
    return model, shared_vocab(model, tok, what)


def device(cfg: dict):
    from kdmem.models import pick_device

    return pick_device(cfg["device"])
