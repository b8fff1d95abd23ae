"""Stages 2-3, models: pretrain a scratch base, fine-tune the teacher and baselines, evaluate the
bases, and export a family's bases as shipped checkpoints."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c
from kdmem.vocab import DataVariant, Role, Size

log = logging.getLogger("kdmem")


def pretrain_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--family")
    p.add_argument("--size", required=True, choices=list(Size), help="which base")
    c.training_options(p, "pretrain.parquet")


def pretrain(args: argparse.Namespace) -> None:
    from kdmem import config as kconfig
    from kdmem.args import OptimArgs
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.models import build_scratch, shared_vocab
    from kdmem.roster import ModelSpec
    from kdmem.settings import Arch
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model

    cfg = c.load_config(args, "pretrain", family=args.family, size=args.size)
    m = c.family_cfg(cfg, args.family)[args.size]
    if m["init"] != "scratch":
        raise KdmemError(f"families.{args.family}.{args.size} is a checkpoint: it needs no pretraining")
    tok = load_tokenizer(args.tokenizer)
    train, val = read_samples(args.train), read_samples(args.val)
    model = build_scratch(Arch.of(m["arch"], f"families.{args.family}.{args.size}.arch"), len(tok), len(train["input_ids"][0]), cfg["seed"], tok.eos_token_id)
    vocab = shared_vocab(model, tok, f"{args.family}/{args.size}")
    meta = {**ModelSpec.base(args.size, args.family).record(), "seed": cfg["seed"]}
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=train, val_df=val, seed=cfg["seed"],
        optim=OptimArgs.from_config(kconfig.pretrain_optim(cfg, args.size), "pretrain.optim"),
        out_dir=args.out, ckpt_dir=args.ckpt, dev=c.device(cfg), meta=c.provenance(cfg, meta),
        fsdp_min_params=cfg["parallel"]["fsdp_min_params"],
    )


def finetune_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    p.add_argument("--role", required=True, choices=[Role.TEACHER, Role.BASELINE], help="teacher (from the large base) or baseline (from the small)")
    c.training_options(p, "train.parquet (D)", {"--seed": "seed: data order and dropout", "--base": "base model folder or hub checkpoint"})
    p.add_argument("--once-seen", action="store_true", help="train on D's once-seen samples alone (data variant once): the control "
                   "baseline that separates what fine-tuning on D's documents costs from what the near-copies cost")


def finetune(args: argparse.Namespace) -> None:
    import polars as pl

    from kdmem.args import OptimArgs
    from kdmem.data import read_samples
    from kdmem.roster import ModelSpec
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model

    cfg = c.load_config(args, "finetune", family=args.family, role=args.role)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = c.load_family_model(cfg, args.family, ModelSpec(str(args.role)).size, args.base, tok, f"{args.family}/{args.role}")
    variant = DataVariant.ONCE if args.once_seen else DataVariant.FULL
    train = read_samples(args.train)
    if args.once_seen:
        train = train.filter(pl.col("n_exposures") == 1)
        log.info("once-seen control: %d of D's samples, no near-copy", train.height)
    spec = ModelSpec(str(args.role), args.seed, data_variant=str(variant), family=args.family, dataset=args.dataset)
    meta = {**spec.record(), "started_from": args.base}
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=train, val_df=read_samples(args.val),
        optim=OptimArgs.from_config(cfg["finetune"][args.role], f"finetune.{args.role}"), seed=args.seed, out_dir=args.out,
        ckpt_dir=args.ckpt, dev=c.device(cfg), meta=c.provenance(cfg, meta), fsdp_min_params=cfg["parallel"]["fsdp_min_params"],
    )


def evaluate_bases_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    c.option(p, "--tokenizer")
    p.add_argument("--large-base", required=True, help="large base (the teacher's start): folder or hub checkpoint")
    p.add_argument("--small-base", required=True, help="small base folder or hub checkpoint")
    c.option(p, "--val")
    p.add_argument("--stats", required=True, help="the dataset's data_stats.json (holds the unigram cross-entropy)")
    c.option(p, "--out", help="bases.json to write")


def evaluate_bases(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.io import read_json, write_json
    from kdmem.models import evaluate_loss, n_params
    from kdmem.tokenizer import load_tokenizer

    cfg = c.load_config(args, "evaluate_bases", family=args.family)
    tok = load_tokenizer(args.tokenizer)
    val = read_samples(args.val)
    dev = c.device(cfg)
    bases = []
    for size, path in ((Size.LARGE, args.large_base), (Size.SMALL, args.small_base)):
        model, vocab = c.load_family_model(cfg, args.family, size, path, tok, f"{args.family}/base-{size}")
        bases.append({"model": f"base-{size}", "size": size, "checkpoint": path, "n_params": n_params(model),
                      **evaluate_loss(model, val, vocab, dev)})
        del model
    stats = read_json(args.stats)
    out = {"family": args.family, "dataset": args.dataset, "unigram_val_ce": stats.get("val_unigram_ce"),
           "unigram_reference": stats.get("unigram_reference"), "bases": bases}
    write_json(out, args.out)
    log.info("bases on %s/%s validation: %s; unigram %.3f", args.family, args.dataset,
             {b["model"]: round(b["val_loss"], 3) for b in bases}, out["unigram_val_ce"] or float("nan"))


def export_bases_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--family")
    p.add_argument("--results", required=True, help="the results folder the bases config wrote (its `results:`)")
    c.option(p, "--out", help="folder to write, e.g. resources/bases/<family>")


def export_bases(args: argparse.Namespace) -> None:
    from pathlib import Path

    from kdmem import bases
    from kdmem import config as kconfig
    from kdmem.layout import Layout

    if args.config is None:
        from kdmem.errors import KdmemError

        raise KdmemError("export-bases describes the whole bases study in its model card: give --config FILE (configs/bases.yaml)")
    cfg = kconfig.load(args.config)  # the model card describes the whole bases study
    c.family_cfg(cfg, args.family)
    lay = Layout(args.results)
    files = bases.export(args.family, cfg, Path(lay.tokenizer(args.family)), Path(lay.scratch_base(args.family, Size.LARGE)),
                         Path(lay.scratch_base(args.family, Size.SMALL)), Path(args.out), Path(lay.pretrain_stats(args.family)))
    for name, sha in sorted(files.items()):
        print(f"{sha}  {name}")


COMMANDS = [
    c.Command("pretrain", "pretrain a scratch family's base model (large or small size) with CE", pretrain_args, pretrain),
    c.Command("finetune", "fine-tune the teacher or a baseline on D with cross-entropy", finetune_args, finetune),
    c.Command("evaluate-bases", "validation loss of the family's two base models, beside the unigram reference",
            evaluate_bases_args, evaluate_bases),
    c.Command("export-bases", "copy a scratch family's tokenizer and pretrained bases into a shipped folder with a model card",
            export_bases_args, export_bases),
]
