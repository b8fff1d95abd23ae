"""Stage 1, data: validate a config, train a scratch family's tokenizer, cut a dataset into samples."""

from __future__ import annotations

import argparse
import json
import logging

from kdmem.commands import common as c

log = logging.getLogger("kdmem")


def validate(args: argparse.Namespace) -> None:
    from kdmem import config as kconfig
    from kdmem.errors import KdmemError

    if args.config is None:
        raise KdmemError("validate checks a whole study config: give --config FILE, not --config-json")
    print(json.dumps(kconfig.load(args.config), indent=2, sort_keys=True))


def tokenizer_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--family")
    c.option(p, "--out", help="tokenizer folder to write")


def tokenizer(args: argparse.Namespace) -> None:
    from pathlib import Path

    from kdmem.data import pretrain_texts
    from kdmem.errors import KdmemError
    from kdmem.io import atomic_path
    from kdmem.tokenizer import train_bpe

    cfg = c.load_config(args, "tokenizer", family=args.family)
    fam = c.family_cfg(cfg, args.family)
    if not isinstance(fam["tokenizer"], dict):
        raise KdmemError(f"families.{args.family}.tokenizer is {fam['tokenizer']!r}: nothing to train")
    texts = pretrain_texts(cfg, cfg["pretrain"]["dataset"], cache_dir=Path(args.out).parent / ".hf_cache")
    with atomic_path(args.out, is_dir=True) as tmp:
        train_bpe(texts, fam["tokenizer"]["train"]["vocab_size"], tmp)
    log.info("trained tokenizer for %s on %d documents -> %s", args.family, len(texts), args.out)


def prepare_args(p: argparse.ArgumentParser) -> None:
    c.option(p, "--family")
    c.option(p, "--dataset")
    c.option(p, "--tokenizer")
    p.add_argument("--out-train", help="train.parquet to write (D, with n_exposures)")
    p.add_argument("--out-val", help="val.parquet to write (validation samples)")
    p.add_argument("--out-heldout", help="heldout.parquet to write (windows of documents no model sees; empty when n_heldout is 0)")
    p.add_argument("--out-stats", required=True, help="data_stats.json to write (counts, drops, seconds)")
    p.add_argument("--out-pretrain", help="pretrain.parquet to write (scratch families only)")
    p.add_argument("--cache-dir", help="datasets cache folder (default: next to the outputs)")


def prepare(args: argparse.Namespace) -> None:
    from pathlib import Path

    import polars as pl

    from kdmem.data import prepare as prepare_samples
    from kdmem.errors import KdmemError
    from kdmem.io import write_json, write_parquet
    from kdmem.tokenizer import load_tokenizer

    if not (args.out_train and args.out_val and args.out_heldout) and not args.out_pretrain:
        raise KdmemError("prepare needs --out-train, --out-val and --out-heldout, or --out-pretrain")
    if args.out_pretrain:
        cfg = c.load_config(args, "prepare_pretrain")
        if args.dataset != cfg["pretrain"]["dataset"]:
            raise KdmemError(f"--out-pretrain: the pretraining split comes from pretrain.dataset "
                             f"'{cfg['pretrain']['dataset']}', not '{args.dataset}'")
    else:
        cfg = c.load_config(args, "prepare", dataset=args.dataset)
    if args.dataset not in cfg["datasets"]:
        raise KdmemError(f"dataset '{args.dataset}' is not in the config (datasets: {', '.join(cfg['datasets'])})")
    tok = load_tokenizer(args.tokenizer)
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.out_stats).parent / ".hf_cache"
    out = prepare_samples(cfg, args.dataset, tok, with_pretrain=bool(args.out_pretrain), cache_dir=cache)

    def identified(df: pl.DataFrame, split: str) -> pl.DataFrame:
        # Each file says what it holds, so the database never reads it off the folder names.
        ident = [pl.lit(args.family).alias("family"), pl.lit(args.dataset).alias("dataset"), pl.lit(split).alias("split")]
        return df.select(ident + [pl.col(c) for c in df.columns])

    # Write everything only after all of it was computed: a failure leaves no output at all.
    if args.out_train:
        write_parquet(identified(out["train"], "train"), args.out_train)
        write_parquet(identified(out["val"], "val"), args.out_val)
    if args.out_heldout:
        write_parquet(identified(out["heldout"], "heldout"), args.out_heldout)
    if args.out_pretrain:
        write_parquet(identified(out["pretrain"], "pretrain"), args.out_pretrain)
    write_json({**out["stats"], "family": args.family}, args.out_stats)


COMMANDS = [
    c.Command("validate", "validate a config and print it with defaults filled", None, validate),
    c.Command("tokenizer", "train a scratch family's BPE tokenizer on the pretraining split", tokenizer_args, tokenizer),
    c.Command("prepare", "cut a dataset into fixed-length samples: train/val (or the pretraining split) parquet", prepare_args, prepare),
]
