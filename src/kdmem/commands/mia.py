"""Stage 7, membership inference, read from the scores (no model runs): every model's per-sample MIA signals on members (D) and
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
    p.add_argument("--scores", nargs="+", required=True, help="scores parquets (kdmem score) of every model and both bases, every split: "
                   "the signals are read from them, no model runs")
    c.option(p, "--train", help="train.parquet (members)")
    c.option(p, "--val", help="val.parquet (non-members: validation windows drawn as D is)")
    p.add_argument("--heldout", required=True, help="heldout.parquet (a second non-member set: windows of documents no model saw; may be empty)")
    c.option(p, "--out", help="mia.parquet: per comparison, model and signal, ROC-AUC and TPR at 1 %% FPR with bootstrap intervals")
    p.add_argument("--out-scores", required=True, help="mia_scores.parquet: every model's per-sample signals")


def mia(args: argparse.Namespace) -> None:
    import numpy as np
    import polars as pl

    from kdmem import mia as kmia
    from kdmem.data import read_samples
    from kdmem.errors import KdmemError
    from kdmem.io import write_parquet
    from kdmem.roster import ModelSpec
    from kdmem.scoring import read_scores

    cfg = c.load_config(args, "mia", family=args.family)
    m = cfg["mia"]
    members = kmia.pick_members(read_samples(args.train), m["max_members"], cfg["seed"])
    sets = kmia.pick_nonmembers(read_samples(args.val), read_samples(args.heldout), m["n_nonmembers"], cfg["seed"])
    log.info("mia: %d members of D; non-members: %s", members.height, {k: v.height for k, v in sets.items()})
    samples = pl.concat([members.select("sample_id", "text").with_columns(split=pl.lit("train"))] +
                        [df.select("sample_id", "text").with_columns(split=pl.lit(name)) for name, df in sets.items()])
    key = samples.select("sample_id", "split")
    split = samples["split"].to_numpy()
    labels = split == "train"
    ident_cols = {"family": args.family, "dataset": args.dataset}
    rows: list[dict] = []
    texts = samples["text"].to_list()
    for source in sets:  # the blind baseline: text features alone, fitted per comparison (out of fold)
        keep = labels | (split == source)
        blind = kmia.blind_scores(labels[keep], [t for t, k in zip(texts, keep, strict=True) if k], cfg["seed"])
        rows.append({**ident_cols, "model": kmia.BLIND_MODEL, "signal": kmia.BLIND_SIGNAL,
                     **kmia.metrics(labels[keep], blind, m["bootstrap"], cfg["seed"]), "nonmember_split": source})
        log.info("mia blind (%s non-members): AUC %.3f", source, rows[-1]["auc"])

    by_model: dict[str, list[pl.DataFrame]] = {}
    for path in args.scores:
        df = read_scores(path)
        by_model.setdefault(df["model"][0], []).append(df)

    def scores_of(model: str) -> pl.DataFrame:
        """The model's scores row for row with the picked members and non-members."""
        got = key.join(pl.concat(by_model[model], how="diagonal_relaxed"), on=["sample_id", "split"], how="left", maintain_order="left")
        if got["ppl"].null_count() or "min_k" not in got.columns or got["min_k"].null_count():
            raise KdmemError(f"mia: the scores of {model} lack some picked samples or their min_k columns; rerun its score step")
        return got

    bases = [ModelSpec.base(size).name for size in Size]
    if missing := [b for b in bases if b not in by_model]:
        raise KdmemError(f"mia: no scores of {missing[0]} among --scores; pass both bases' scores (rule score_base)")
    ref_loss = {size: np.log(scores_of(ModelSpec.base(size).name)["ppl"].to_numpy()) for size in Size}
    # Bases first: they never saw D, so with non-members drawn as the members are their AUC is 0.5 up to noise;
    # away from it, the two sets differ without any training (the held-out documents do).
    score_frames = []
    for model in bases + [x for x in by_model if x not in bases]:
        sc = scores_of(model)
        size = ModelSpec.parse(model).size
        sig = kmia.signals_from_scores(sc, ref_loss[size])
        score_frames.append(key.with_columns(family=pl.lit(args.family), dataset=pl.lit(args.dataset), model=pl.lit(model),
                                             member=pl.Series(labels), **{k: pl.Series(v) for k, v in sig.items()}))
        for name, values in sig.items():
            for source in sets:  # one row per non-member set: the members against that set's non-members
                keep = labels | (split == source)
                rows.append({**ident_cols, "model": model, "signal": name, "nonmember_split": source,
                             **kmia.metrics(labels[keep], values[keep], m["bootstrap"], cfg["seed"])})
        log.info("mia %s: loss AUC %s", model, {r["nonmember_split"]: round(r["auc"], 3) for r in rows if r["model"] == model and r["signal"] == "loss"})
    write_parquet(pl.concat(score_frames).select("family", "dataset", "model", "split", "sample_id", "member", *kmia.SIGNALS), args.out_scores)
    schema = {"tpr_at_1pct_fpr": pl.Float64, "tpr_lo": pl.Float64, "tpr_hi": pl.Float64}
    write_parquet(pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None), args.out)


COMMANDS = [c.Command("mia", "membership-inference signals per model (loss, zlib, Min-K%%, Min-K%%++, reference) and their AUC",
                      mia_args, mia)]
