"""Stage 7, membership inference: every model's per-sample MIA signals on members (D) and
non-members (validation windows drawn as D is; held-out documents as a second comparison), each signal's ROC-AUC
and TPR at FPR < 1 % per comparison, and a model-free (blind) baseline on the text alone."""

from __future__ import annotations

import argparse
import logging

from kdmem.commands import common as c
from kdmem.vocab import Size

log = logging.getLogger("kdmem")


def mia_args(p: argparse.ArgumentParser) -> None:
    c.pair_options(p)
    c.option(p, "--tokenizer")
    p.add_argument("--models", nargs="+", required=True, help="trained model folders (with metrics.json)")
    p.add_argument("--reference", required=True, help="the small base (folder or hub checkpoint): the reference model of every "
                   "role that starts from it")
    p.add_argument("--reference-large", required=True, help="the large base: the teacher's reference model")
    c.option(p, "--train", help="train.parquet (members)")
    c.option(p, "--val", help="val.parquet (non-members: validation windows drawn as D is)")
    p.add_argument("--heldout", required=True, help="heldout.parquet (a second non-member set: windows of documents no model saw; may be empty)")
    c.option(p, "--out", help="mia.parquet: per model and signal, ROC-AUC and TPR at 1 %% FPR with bootstrap intervals")
    p.add_argument("--out-scores", required=True, help="mia_scores.parquet: every model's per-sample signals")


def mia(args: argparse.Namespace) -> None:
    import numpy as np
    import polars as pl

    from kdmem import mia as kmia
    from kdmem.data import read_samples
    from kdmem.io import write_parquet
    from kdmem.layout import SIZE_OF_ROLE
    from kdmem.scoring import model_identity
    from kdmem.tokenizer import load_tokenizer

    cfg = c.load_config(args, "mia", family=args.family)
    m = cfg["mia"]
    tok = load_tokenizer(args.tokenizer)
    dev = c.device(cfg)
    members = kmia.pick_members(read_samples(args.train), m["max_members"], cfg["seed"])
    sets = kmia.pick_nonmembers(read_samples(args.val), read_samples(args.heldout), m["n_nonmembers"], cfg["seed"])
    log.info("mia: %d members of D; non-members: %s", members.height, {k: v.height for k, v in sets.items()})
    cols = ("sample_id", "input_ids", "zlib_bytes", "text")
    # One forward pass per model over the members and every non-member set; each comparison reads its rows.
    samples = pl.concat([members.select(cols).with_columns(split=pl.lit("train"))] +
                        [df.select(cols).with_columns(split=pl.lit(name)) for name, df in sets.items()])
    split = samples["split"].to_numpy()
    labels = split == "train"
    zlib = samples["zlib_bytes"].to_numpy().astype(float)
    batch = cfg["memorization"]["batch_size"]
    ident_cols = {"family": args.family, "dataset": args.dataset}

    def rows_for(model: str, name: str, values: np.ndarray) -> list[dict]:
        """One row per non-member set: the members against that set's non-members."""
        out = []
        for source in sets:
            keep = labels | (split == source)
            out.append({**ident_cols, "model": model, "signal": name, **kmia.metrics(labels[keep], values[keep], m["bootstrap"], cfg["seed"]),
                        "nonmember_split": source})
        return out

    rows: list[dict] = []
    texts = samples["text"].to_list()
    for source in sets:  # the blind baseline: text features alone, fitted per comparison (out of fold)
        keep = labels | (split == source)
        blind = kmia.blind_scores(labels[keep], [t for t, k in zip(texts, keep, strict=True) if k], cfg["seed"])
        rows.append({**ident_cols, "model": kmia.BLIND_MODEL, "signal": kmia.BLIND_SIGNAL,
                     **kmia.metrics(labels[keep], blind, m["bootstrap"], cfg["seed"]), "nonmember_split": source})
        log.info("mia blind (%s non-members): AUC %.3f", source, rows[-1]["auc"])

    def stats(path: str, size: str, what: str) -> dict:
        model, vocab = c.load_family_model(cfg, args.family, size, path, tok, what)
        return kmia.token_stats(model, dev, samples, vocab, batch)

    # Each model's reference is the checkpoint it started from: what it knew before D. The bases themselves are
    # scored too: they never saw D, so with non-members drawn as the members are their AUC is 0.5 up to noise;
    # away from it, the two sets differ without any training (the held-out documents do).
    base_stats = {size: stats(path, size, f"{args.family}/base-{size}")
                  for size, path in ((Size.SMALL, args.reference), (Size.LARGE, args.reference_large))}
    ref_loss = {size: -st["logp"].mean(axis=1) for size, st in base_stats.items()}
    score_frames = []
    runs = [({"model": f"base-{size}", "role": "base"}, size, lambda size=size: base_stats[size]) for size in Size]
    for path in args.models:
        ident = model_identity(path)
        size = SIZE_OF_ROLE[ident["role"]]
        runs.append((ident, size, lambda path=path, size=size, ident=ident: stats(path, size, f"{args.family}/{ident['model']}")))
    for ident, size, token_stats in runs:
        sig = kmia.signals(token_stats(), zlib, ref_loss[size], m["k"])
        score_frames.append(samples.select("sample_id", "split").with_columns(
            family=pl.lit(args.family), dataset=pl.lit(args.dataset), model=pl.lit(ident["model"]), member=pl.Series(labels),
            **{k: pl.Series(v) for k, v in sig.items()}))
        for name, values in sig.items():
            rows += rows_for(ident["model"], name, values)
        log.info("mia %s: %s", ident["model"], {(r["signal"], r["nonmember_split"]): round(r["auc"], 3) for r in rows[-len(sig) * len(sets):]})
    write_parquet(pl.concat(score_frames).select("family", "dataset", "model", "split", "sample_id", "member", *kmia.SIGNALS), args.out_scores)
    schema = {"tpr_at_1pct_fpr": pl.Float64, "tpr_lo": pl.Float64, "tpr_hi": pl.Float64}
    write_parquet(pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None), args.out)


COMMANDS = [c.Command("mia", "membership-inference signals per model (loss, zlib, Min-K%%, Min-K%%++, reference) and their AUC",
                      mia_args, mia)]
