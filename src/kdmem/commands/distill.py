"""Stage 5, distillation: the soft student (KL to the teacher at T, from the cache or online), the hard
student (CE on the teacher's text), and the removal experiment's cleaned student (soft, on D minus
the classifier's predicted samples)."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c
from kdmem.vocab import DEFAULT_LOSS, DataVariant, Loss, Role, Size

log = logging.getLogger("kdmem")


def distill_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    p.add_argument("--mode", required=True, choices=["soft", "hard"], help="soft: KL at T; hard: CE on generated text")
    c.training_options(p, "training samples: train.parquet (soft) or hard.parquet (hard)",
                       {"--seed": "seed: data order", "--base": "small base model folder or hub checkpoint"})
    c.option(p, "--temperature", required=False, help="soft: T")
    p.add_argument("--loss", default=DEFAULT_LOSS, choices=list(Loss), help="soft: the divergence (default: the paper's forward KL)")
    c.option(p, "--cache", required=False, help="soft: teacher logit cache folder (distill.soft.cache topk or sampled)")
    c.option(p, "--teacher", required=False, help="soft: teacher folder (checks the cache's fingerprint; without --cache, online KD: cache dense)")
    p.add_argument("--removal", help="soft: the classifier's predictions.parquet; train on D minus its predicted samples "
                   "(the removal experiment's cleaned student)")


def distill(args: argparse.Namespace) -> None:
    import polars as pl

    from kdmem.args import CacheSpec, KDArgs, OptimArgs
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.logit_cache import CacheReader, teacher_identity
    from kdmem.roster import ModelSpec
    from kdmem.tokenizer import load_tokenizer
    from kdmem.training import train_model
    from kdmem.vocab import CacheKind

    cfg = c.load_config(args, "distill", family=args.family, mode=args.mode)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = c.load_family_model(cfg, args.family, Size.SMALL, args.base, tok, f"{args.family}/student")
    train = read_samples(args.train)
    if args.removal:
        if args.mode != "soft":
            raise KdmemError("--removal is the removal experiment's soft student; it does not apply to --mode hard")
        predicted = pl.read_parquet(args.removal).filter(pl.col("predicted"))["sample_id"]
        train = train.filter(~pl.col("sample_id").is_in(predicted.to_list()))
        log.info("removal: left out %d predicted samples, %d remain", predicted.len(), train.height)
    soft_mode = args.mode == "soft"
    spec = ModelSpec(str(Role.STUDENT if soft_mode else Role.HARD_STUDENT), args.seed, args.temperature if soft_mode else None,
                     str(args.loss) if soft_mode else None, str(DataVariant.CLEANED if args.removal else DataVariant.FULL),
                     args.family, args.dataset)
    meta = {**spec.record(), "started_from": args.base}
    dev = c.device(cfg)
    teacher = cache = kd = None
    if args.mode == "hard":
        optim, mode = OptimArgs.from_config(cfg["distill"]["hard"]["optim"], "distill.hard.optim"), "ce"
    else:
        soft = cfg["distill"]["soft"]
        if args.temperature is None or args.temperature <= 0:
            raise KdmemError(f"distill --mode soft needs a temperature > 0, got {args.temperature}")
        if not args.cache and not args.teacher:
            raise KdmemError("distill --mode soft needs --cache (top-k, sampled or full logits) or --teacher (online KD)")
        if args.cache and soft["cache"] == "dense":
            raise KdmemError("distill: distill.soft.cache is dense (online KD), but --cache was given; drop --cache or set cache: topk, sampled or full")
        if args.cache and soft["cache"] == "sampled" and args.loss != "forward_kl":
            raise KdmemError(f"distill: a sampled cache estimates the forward KL only, not {args.loss}; use cache: topk or dense")
        kd = KDArgs.from_config(soft, args.temperature, args.loss)
        optim = OptimArgs.from_config(soft["optim"], "distill.soft.optim")
        meta["cache"] = soft["cache"]
        if args.cache:
            cspec = CacheSpec.from_config(soft, soft["cache"], args.temperature, seed=0)
            width = {CacheKind.TOPK: {"k": cspec.top_k}, CacheKind.SAMPLED: {"draws": cspec.draws}}.get(cspec.kind, {})
            expect = {"kind": str(cspec.kind), "temperature": args.temperature, **width, "seq_len": len(train["input_ids"][0])}
            if args.teacher:  # with a cache, --teacher only proves the cache came from this teacher
                expect.update(teacher_identity(args.teacher, tok))
            cache, mode = CacheReader(args.cache, expect), "cache"
            meta["cache_top_k"], meta["cache_draws"] = width.get("k"), width.get("draws")
            meta["cache_mean_tail_mass"] = cache.meta.get("mean_tail_mass")
            meta["cache_bytes_per_token"] = cache.meta.get("bytes_per_token")
        else:
            teacher, _ = c.load_family_model(cfg, args.family, Size.LARGE, args.teacher, tok, f"{args.family}/teacher")
            mode = "online"
    train_model(
        model=model, tok=tok, vocab=vocab, train_df=train, val_df=read_samples(args.val), optim=optim, seed=args.seed,
        out_dir=args.out, ckpt_dir=args.ckpt, dev=dev, mode=mode, cache=cache, kd=kd, meta=c.provenance(cfg, meta),
        teacher=teacher, fsdp_min_params=cfg["parallel"]["fsdp_min_params"],
    )


COMMANDS = [c.Command("distill", "train the student: soft (KD from the teacher) or hard (CE on teacher text)", distill_args, distill)]
