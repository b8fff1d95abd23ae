"""Subcommand bodies: read arguments, call the package, write outputs atomically."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from kdmem import config as kconfig
from kdmem.io import atomic_path, write_json, write_parquet

log = logging.getLogger("kdmem")


def cmd_validate(args: argparse.Namespace) -> None:
    cfg = kconfig.load(args.config)
    print(json.dumps(cfg, indent=2, sort_keys=True))


def cmd_tokenizer(args: argparse.Namespace) -> None:
    from kdmem.data import pretrain_texts
    from kdmem.errors import KdmemError
    from kdmem.tokenizer import train_bpe

    cfg = kconfig.load(args.config)
    fam = cfg["families"].get(args.family)
    if fam is None:
        raise KdmemError(f"family '{args.family}' is not in the config (families: {', '.join(cfg['families'])})")
    if not isinstance(fam["tokenizer"], dict):
        raise KdmemError(f"families.{args.family}.tokenizer is {fam['tokenizer']!r}: nothing to train")
    texts = pretrain_texts(cfg, cfg["pretrain"]["dataset"], cache_dir=Path(args.out).parent / ".hf_cache")
    with atomic_path(args.out, is_dir=True) as tmp:
        train_bpe(texts, fam["tokenizer"]["train"]["vocab_size"], tmp)
    log.info("trained tokenizer for %s on %d documents -> %s", args.family, len(texts), args.out)


def cmd_prepare(args: argparse.Namespace) -> None:
    from kdmem.data import prepare
    from kdmem.errors import KdmemError
    from kdmem.tokenizer import load_tokenizer

    cfg = kconfig.load(args.config)
    if args.dataset not in cfg["datasets"]:
        raise KdmemError(f"dataset '{args.dataset}' is not in the config (datasets: {', '.join(cfg['datasets'])})")
    if not (args.out_train and args.out_val) and not args.out_pretrain:
        raise KdmemError("prepare needs --out-train and --out-val, or --out-pretrain")
    tok = load_tokenizer(args.tokenizer)
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.out_stats).parent / ".hf_cache"
    out = prepare(cfg, args.dataset, tok, with_pretrain=bool(args.out_pretrain), cache_dir=cache)
    # Write everything only after all of it was computed: a failure leaves no output at all.
    if args.out_train:
        write_parquet(out["train"], args.out_train)
        write_parquet(out["val"], args.out_val)
    if args.out_pretrain:
        write_parquet(out["pretrain"], args.out_pretrain)
    write_json({**out["stats"], "family": args.family}, args.out_stats)
