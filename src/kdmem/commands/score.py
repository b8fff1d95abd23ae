"""Stage 6, memorization scoring: one model, loaded once, on each of its sample files (train, val)."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c
from kdmem.vocab import Size

log = logging.getLogger("kdmem")


def score_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    p.add_argument("--model", required=True, help="trained model folder (with metrics.json), or with --base-size a base checkpoint")
    p.add_argument("--base-size", choices=list(Size), help="score a base checkpoint (folder or hub name) as model "
                   "base-<size>, role base: the control that says what any model of that size reproduces before fine-tuning on D. "
                   "Its scores skip the generate cross-check (memorization.frac), which the trained models' scores carry")
    c.option(p, "--tokenizer")
    p.add_argument("--split", nargs="+", required=True, choices=["train", "val", "heldout"], help="the splits to score, in order")
    c.option(p, "--samples", help="one samples parquet per --split")
    c.option(p, "--out", nargs="+", help="one scores parquet to write per --split")
    p.add_argument("--summary", nargs="+", required=True, help="one summary JSON to write per --split (counts, rate, agreement)")
    c.option(p, "--cache", required=False, help="teacher cache at T=1 (gives kl_to_teacher; train split only)")
    c.option(p, "--teacher", required=False, help="teacher folder: checks the cache's fingerprint")


def score(args: argparse.Namespace) -> None:
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.io import write_json, write_parquet
    from kdmem.logit_cache import CacheReader, teacher_identity
    from kdmem.roster import ModelSpec
    from kdmem.scoring import base_identity, model_identity, score_samples, summary, with_identity
    from kdmem.settings import Memorization
    from kdmem.tokenizer import load_tokenizer

    if not len(args.split) == len(args.samples) == len(args.out) == len(args.summary):
        raise KdmemError("score: give one --samples, --out and --summary per --split, in the same order")
    import dataclasses
    import time

    t0 = time.perf_counter()
    ident = base_identity(args.model, args.base_size, args.family, args.dataset) if args.base_size else model_identity(args.model)
    size = ModelSpec.of_record(ident).size
    cfg = c.load_config(args, "score", family=args.family, size=size)
    mem = Memorization.of(cfg)
    if args.base_size:  # a base never saw D: the generate cross-check of its verdicts would only cost time
        mem = dataclasses.replace(mem, frac=False)
    tok = load_tokenizer(args.tokenizer)
    model, vocab = c.load_family_model(cfg, args.family, size, args.model, tok, f"{args.family}/{ident['model']}")
    dev = c.device(cfg)
    log.info("loaded %s in %.1f s since the command started", ident["model"], time.perf_counter() - t0)
    done = []
    for split, path in zip(args.split, args.samples, strict=True):
        samples = read_samples(path)
        cache = None
        if args.cache and split == "train":  # the cache covers D only
            expect = {"temperature": 1.0, "seq_len": len(samples["input_ids"][0])}
            if args.teacher:
                expect.update(teacher_identity(args.teacher, tok))
            cache = CacheReader(args.cache, expect)
        log.info("scoring %s on %s: %d samples", ident["model"], split, samples.height)
        t_split = time.perf_counter()
        scores = score_samples(model, tok, dev, samples, vocab, mem, cfg["mia"]["k"], cache=cache)
        out = with_identity(scores, ident, split)
        log.info("scored %s on %s in %.1f s", ident["model"], split, time.perf_counter() - t_split)
        done.append((out, {**ident, "split": split, **summary(out)}))
    # Every split is scored before any file is written: a failure leaves none of them.
    for (out, summ), out_path, summ_path in zip(done, args.out, args.summary, strict=True):
        write_parquet(out, out_path)
        write_json(summ, summ_path)
        log.info("scored %s on %s: %d/%d memorized", ident["model"], summ["split"], summ["memorized"], summ["n"])


COMMANDS = [c.Command("score", "per-sample memorization and signals of one model on its train and val samples", score_args, score)]
