"""Stage 4, the teacher's outputs: the logit cache (soft KD) and greedy continuations (hard KD)."""

from __future__ import annotations

import argparse

from kdmem.commands import common as c
from kdmem.vocab import CACHED_KINDS, Size


def cache_logits_args(p: argparse.ArgumentParser) -> None:
    c.teacher_pass_options(p, "train.parquet (every sample is cached once)")
    c.option(p, "--temperature", help="T the cached distributions are softened with")
    p.add_argument("--kind", required=True, choices=list(CACHED_KINDS),
                   help="topk: top_k log-probs + tail mass; sampled: `draws` ids drawn from the teacher at T; "
                        "full: the whole distribution at T")
    c.option(p, "--out", help="cache folder to write")


def cache_logits(args: argparse.Namespace) -> None:
    from kdmem.args import CacheSpec
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.logit_cache import teacher_identity, write_cache
    from kdmem.tokenizer import load_tokenizer

    cfg = c.load_config(args, "cache_logits", family=args.family, kind=args.kind)
    if args.temperature <= 0:
        raise KdmemError(f"temperature must be > 0, got {args.temperature}")
    tok = load_tokenizer(args.tokenizer)
    model, vocab = c.load_family_model(cfg, args.family, Size.LARGE, args.teacher, tok, f"{args.family}/teacher")
    spec = CacheSpec.from_config(cfg["distill"]["soft"], args.kind, args.temperature, seed=cfg["seed"] if args.kind == "sampled" else 0)
    write_cache(
        model, c.device(cfg), read_samples(args.train), vocab, spec, args.out,
        meta={**teacher_identity(args.teacher, tok), "family": args.family, "dataset": args.dataset},
        batch_size=cfg["memorization"]["batch_size"],
    )


def generate_hard_args(p: argparse.ArgumentParser) -> None:
    c.teacher_pass_options(p, "train.parquet (each prefix is continued)")
    c.option(p, "--out", help="hard.parquet to write (same sample_ids)")


def generate_hard(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.generate import generate_hard as generate
    from kdmem.io import write_parquet
    from kdmem.tokenizer import load_tokenizer

    cfg = c.load_config(args, "generate_hard", family=args.family)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = c.load_family_model(cfg, args.family, Size.LARGE, args.teacher, tok, f"{args.family}/teacher")
    hard = cfg["distill"]["hard"]
    write_parquet(generate(model, tok, c.device(cfg), read_samples(args.train), hard["prefix_len"], vocab, hard["batch_size"]), args.out)


COMMANDS = [
    c.Command("cache-logits", "cache the teacher at temperature T: top-k log-probs + tail mass, or sampled ids", cache_logits_args, cache_logits),
    c.Command("generate-hard", "teacher greedily continues each sample's prefix: hard-KD data", generate_hard_args, generate_hard),
]
