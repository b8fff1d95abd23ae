"""Memorization scoring (docs/protocol.md "Memorization"): every sample of every model, one row each.

Discoverable exact memorization: given the first P = prefix_len tokens, the model greedily decodes
S = suffix_len tokens; the sample is memorized iff they equal tokens P..P+S-1 exactly.

Why one forward pass suffices: greedy decoding emits g_1 = argmax p(. | x_<P). If g_1 = x_P, the
next step conditions on exactly the true context x_<P+1, so g_2 = argmax p(. | x_<P+1), and so on.
By induction, greedy decoding reproduces the suffix iff for every suffix position t the argmax of
the teacher-forced distribution p(. | x_<t) equals x_t. The first mismatch is where the two paths
part; past it greedy output is no longer compared. So `exact` = all(argmax == truth) over the
teacher-forced suffix positions: one batched forward pass, no decoding loop. `exact_gen` (when frac is
on) records real greedy `generate`'s own verdict so every run checks it. The two can disagree in two
ways: a near-tie in the argmax that generate's KV-cache arithmetic breaks differently from the
full-sequence pass, and an end-of-text argmax: `generate` here suppresses EOS so that every sample
gets S tokens (kdmem.generate), and takes the runner-up, while the one-pass verdict counts EOS as a
miss, as plain greedy decoding, which would stop there, does. Samples never contain EOS, so the
one-pass verdict is the stricter. The embedded default's run: 0 disagreements in 24,934 scored samples.

Columns (one row per sample_id):
  exact          greedy suffix == true suffix (one teacher-forced pass)
  exact_gen      the same verdict from real greedy `generate` (null when memorization.frac is off)
  frac           Pythia's fractional score: share of generated suffix tokens equal to the truth (null when off)
  tf_acc         teacher-forced token accuracy on the suffix
  suffix_logprob_sum / _mean   log-probability of the true suffix tokens
  ppl            perplexity of the whole sample (all seq_len - 1 predicted tokens)
  entropy        mean Shannon entropy (nats) of the next-token distribution at the S suffix positions
  zlib_bytes     the sample's zlib entropy, passed through from the samples (kdmem.data.zlib_columns:
                 bytes of zlib.compress of the whole sample's text, computed once in prepare)
  kl_to_teacher  per-token mean KL(teacher || model) over the sample, at T = 1, from the teacher
                 cache (top-k + tail); null for validation samples, which the cache does not cover
  extract_logprob  log-probability that sampling from the prefix (temperature, top-k renormalised:
                 memorization.extraction) emits exactly the suffix: the sum over suffix positions of
                 the true token's log-probability under the truncated distribution, -inf where a true
                 token falls outside the top k. Teacher forcing gives it, because a sampled path that
                 emits the suffix conditions on exactly the true prefix at every step (as for `exact`).
  extractable    (n, p)-discoverably extractable (Hayes et al. 2024): 1 - (1 - P)^n >= p, P = exp(extract_logprob)
  min_k, min_k_pp  membership-inference signals from the same pass (kdmem.mia: Min-K % Prob and Min-K %++ at
                 k = mia.k over the sample's L - 1 predicted tokens), so membership inference runs no model
  extractable_full  the same at T = 1 over the full vocabulary, P = exp(suffix_logprob_sum): no truncation, so a true
                 token outside the top k does not make it impossible (top-k truncation makes extract_logprob -inf on
                 most samples a small model has seen once)
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import polars as pl

from kdmem.data import zlib_columns
from kdmem.errors import KdmemError
from kdmem.settings import Memorization

log = logging.getLogger(__name__)


SCORE_SCHEMA = {"sample_id": pl.String, "exact": pl.Boolean, "exact_gen": pl.Boolean, "frac": pl.Float64, "tf_acc": pl.Float64,
                "suffix_logprob_sum": pl.Float64, "suffix_logprob_mean": pl.Float64, "ppl": pl.Float64, "entropy": pl.Float64,
                "zlib_bytes": pl.Int64, "kl_to_teacher": pl.Float64, "extract_logprob": pl.Float64, "extractable": pl.Boolean,
                "n_exposures": pl.Int32, "extractable_full": pl.Boolean,
                "min_k": pl.Float64, "min_k_pp": pl.Float64}


def extraction_threshold(n: int, p: float) -> float:
    """The least per-draw probability P with 1 - (1 - P)^n >= p."""
    return -math.expm1(math.log1p(-p) / n)


def truncated_logprob(logits, targets, top_k: int, temperature: float):
    """(B, S, V) logits, (B, S) targets -> (B, S) log-probability of each target under the top-k truncated,
    renormalised distribution at `temperature` (-inf outside it). Ties with the k-th logit stay in, as
    transformers' TopKLogitsWarper keeps them."""
    import torch

    lg = logits / temperature
    kth = lg.topk(min(top_k, lg.shape[-1]), dim=-1).values[..., -1:]  # (B, S, 1)
    kept = torch.where(lg >= kth, lg, torch.full_like(lg, float("-inf")))
    t = lg.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return torch.where(t >= kth.squeeze(-1), t - torch.logsumexp(kept, dim=-1), torch.full_like(t, float("-inf")))


def score_samples(model, tok, dev, samples: pl.DataFrame, vocab: int, mem: Memorization, min_k: float, cache=None) -> pl.DataFrame:
    """Score every sample; stream in batches, never holding more than one batch of logits. `min_k` is Min-K %'s
    share of tokens (mia.k); `cache` the teacher's top-k cache for kl_to_teacher (None: the column is null)."""
    # torch here, not at the top: the classifier reads scores through this module without a model.
    import torch
    from tqdm import tqdm

    from kdmem.generate import greedy_continue
    from kdmem.kd import bucket_kl
    from kdmem.mia import lowest_mean

    if samples.height == 0:  # an empty split (no held-out documents asked for) scores to an empty table
        return pl.DataFrame(schema=SCORE_SCHEMA)
    seq_len = len(samples["input_ids"][0])
    if mem.prefix_len + mem.suffix_len > seq_len:
        raise KdmemError(f"prefix_len + suffix_len = {mem.prefix_len + mem.suffix_len} exceeds the samples' seq_len = {seq_len}")
    top = int(samples["input_ids"].list.max().max())
    if top >= vocab:
        raise KdmemError(f"samples hold token id {top} but the model's vocabulary has {vocab} ids; score with the family's own model")
    P, S, ex = mem.prefix_len, mem.suffix_len, mem.extraction
    log_thr = math.log(extraction_threshold(ex.n, ex.p))  # the (n, p) rule's bar on a suffix's log-probability
    model.to(dev.device).eval()
    cols: dict[str, list] = {k: [] for k in ("exact", "exact_gen", "frac", "tf_acc", "lp_sum", "lp_mean", "ppl", "entropy", "kl", "extract", "min_k", "min_k_pp")}
    rows = cache.rows(samples["sample_id"].to_list()) if cache is not None else None
    for s in tqdm(range(0, samples.height, mem.batch_size), desc="score", mininterval=5):
        x = torch.tensor(samples["input_ids"].slice(s, mem.batch_size).to_list(), device=dev.device)  # (B, L)
        with torch.inference_mode():
            with dev.autocast():
                logits = model(input_ids=x).logits[:, :-1, :vocab]  # (B, L-1, V): position j predicts token j+1
            logits = logits.float()
            # One log_softmax and one exp over (B, L-1, V) serve every column: the true tokens' log-probs, the
            # entropy (minus the mean of log p under p, at the suffix positions), Min-K %++'s mean and spread, the KL.
            lsm = torch.log_softmax(logits, dim=-1)  # (B, L-1, V)
            p = lsm.exp()
            tgt = x[:, 1:]
            tok_lp = lsm.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)  # (B, L-1)
            sl = slice(P - 1, P + S - 1)  # the positions that predict suffix tokens x_P .. x_{P+S-1}
            hit = logits[:, sl].argmax(-1) == tgt[:, sl]  # (B, S)
            mu = (p * lsm).sum(-1)  # (B, L-1): E_p[log p], minus the entropy
            sigma = (p * (lsm - mu.unsqueeze(-1)).square()).sum(-1).clamp_min(0).sqrt()
            cols["exact"] += hit.all(-1).tolist()
            cols["tf_acc"] += hit.float().mean(-1).tolist()
            cols["lp_sum"] += tok_lp[:, sl].sum(-1).tolist()
            cols["lp_mean"] += tok_lp[:, sl].mean(-1).tolist()
            cols["ppl"] += torch.exp(-tok_lp.double().mean(-1)).tolist()  # float64: the MIA loss signal is ln(ppl)
            cols["entropy"] += (-mu[:, sl].mean(-1)).tolist()
            cols["extract"] += truncated_logprob(logits[:, sl], tgt[:, sl], ex.top_k, ex.temperature).sum(-1).tolist()
            lp_np = tok_lp.double().cpu().numpy()
            z = (lp_np - mu.double().cpu().numpy()) / sigma.double().cpu().numpy().clip(1e-12)
            cols["min_k"] += lowest_mean(lp_np, min_k).tolist()
            cols["min_k_pp"] += lowest_mean(z, min_k).tolist()
            if cache is not None:
                t = cache.get(rows[s : s + x.shape[0]])
                b, n1, k = t["t_ids"].shape
                logq_k = lsm.gather(-1, t["t_ids"].to(dev.device))  # (B, L-1, k)
                # per-sample KL over the top-k + tail buckets, averaged over the sample's positions
                per_pos = bucket_kl(t["t_logp"].to(dev.device).reshape(-1, k), t["t_tail"].to(dev.device).reshape(-1),
                                    logq_k.reshape(-1, k)).reshape(b, n1)
                cols["kl"] += per_pos.mean(-1).tolist()
            else:
                cols["kl"] += [None] * x.shape[0]
            del lsm, p
    # The generate cross-check in its own, larger batches: a decoding step is one token per sample, so on a CPU
    # a small batch pays the model's fixed per-call cost 24 times over (memorization.generate_batch_size).
    for s in tqdm(range(0, samples.height if mem.frac else 0, mem.generate_batch_size), desc="generate", mininterval=5):
        x = torch.tensor(samples["input_ids"].slice(s, mem.generate_batch_size).to_list(), device=dev.device)
        gen = greedy_continue(model, dev, x[:, :P], S, vocab, tok.pad_token_id)[:, P : P + S]
        eq = gen == x[:, P : P + S]
        cols["exact_gen"] += eq.all(-1).tolist()
        cols["frac"] += eq.float().mean(-1).tolist()
    if not mem.frac:
        cols["exact_gen"] = cols["frac"] = [None] * samples.height
    return pl.DataFrame(
        {
            "sample_id": samples["sample_id"],
            "exact": pl.Series(cols["exact"], dtype=pl.Boolean),
            "exact_gen": pl.Series(cols["exact_gen"], dtype=pl.Boolean),
            "frac": pl.Series(cols["frac"], dtype=pl.Float64),
            "tf_acc": pl.Series(cols["tf_acc"], dtype=pl.Float64),
            "suffix_logprob_sum": pl.Series(cols["lp_sum"], dtype=pl.Float64),
            "suffix_logprob_mean": pl.Series(cols["lp_mean"], dtype=pl.Float64),
            "ppl": pl.Series(cols["ppl"], dtype=pl.Float64),
            "entropy": pl.Series(cols["entropy"], dtype=pl.Float64),
            # samples from `kdmem prepare` carry it; anything else (an audit's texts) gets it from its decoded tokens
            "zlib_bytes": samples["zlib_bytes"] if "zlib_bytes" in samples.columns else
            pl.Series(zlib_columns(tok.batch_decode(samples["input_ids"].to_list()))["zlib_bytes"], dtype=pl.Int64),
            "kl_to_teacher": pl.Series(cols["kl"], dtype=pl.Float64),
            "extract_logprob": pl.Series(cols["extract"], dtype=pl.Float64),
            "extractable": pl.Series([v >= log_thr for v in cols["extract"]], dtype=pl.Boolean),
            "n_exposures": samples["n_exposures"] if "n_exposures" in samples.columns else pl.Series([1] * samples.height, dtype=pl.Int32),
            "extractable_full": pl.Series([v >= log_thr for v in cols["lp_sum"]], dtype=pl.Boolean),
            "min_k": pl.Series(cols["min_k"], dtype=pl.Float64),
            "min_k_pp": pl.Series(cols["min_k_pp"], dtype=pl.Float64),
        }
    )


def model_identity(model_dir: str | Path) -> dict:
    """The model's record (kdmem.roster.ModelSpec) from the metrics.json its training command wrote, with its
    fingerprint: nothing is read off the folder's name."""
    import json

    from kdmem.roster import ModelSpec

    path = Path(model_dir) / "metrics.json"
    if not path.is_file():
        raise KdmemError(f"model folder {model_dir} has no metrics.json; it must come from a kdmem training step")
    meta = json.loads(path.read_text())
    if "model" not in meta or "role" not in meta:
        raise KdmemError(f"{path} names no model; it was written by an older kdmem: rerun its training step")
    return {**ModelSpec.of_record(meta).record(), "fingerprint": meta["fingerprint"]}


def base_identity(checkpoint: str, size: str, family: str, dataset: str) -> dict:
    """The record of a base checkpoint scored as a control (model base-<size>, role base). A local folder is
    fingerprinted by its files; a hub name stands for itself."""
    from kdmem.io import sha256_dir
    from kdmem.roster import ModelSpec

    p = Path(checkpoint)
    return {**ModelSpec.base(size, family, dataset).record(), "fingerprint": sha256_dir(p) if p.is_dir() else checkpoint}


def read_scores(path: str | Path) -> pl.DataFrame:
    """A scores parquet written by `kdmem score`, checked for the columns the classifier reads."""
    try:
        df = pl.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - polars raises several types for a corrupt file
        raise KdmemError(f"cannot read scores parquet {path}: {str(e).splitlines()[0]}; rerun its score step") from None
    need = {"sample_id", "exact", "ppl", "zlib_bytes", "kl_to_teacher", "n_exposures"}
    if missing := sorted(need - set(df.columns)):
        raise KdmemError(f"scores file {path} lacks columns {missing}; it must come from 'kdmem score'")
    return df


def with_identity(scores: pl.DataFrame, ident: dict, split: str) -> pl.DataFrame:
    lit = [
        pl.lit(ident["model"]).alias("model"), pl.lit(ident["family"]).alias("family"), pl.lit(ident["dataset"]).alias("dataset"),
        pl.lit(ident["role"]).alias("role"), pl.lit(ident["seed"], dtype=pl.Int64).alias("seed"),
        pl.lit(ident["temperature"], dtype=pl.Float64).alias("temperature"), pl.lit(ident["data_variant"]).alias("data_variant"),
        pl.lit(ident["fingerprint"]).alias("fingerprint"), pl.lit(split).alias("split"),
    ]
    return scores.select(lit + [pl.col(c) for c in scores.columns])


def agreement(scores: pl.DataFrame) -> dict:
    """How often the one-pass verdict equals generate's (only when frac was on)."""
    both = scores.filter(pl.col("exact_gen").is_not_null())
    if both.height == 0:
        return {"checked": 0}
    same = int((both["exact"] == both["exact_gen"]).sum())
    return {"checked": both.height, "agree": same, "disagree_ids": both.filter(pl.col("exact") != pl.col("exact_gen"))["sample_id"].to_list()}


def summary(scores: pl.DataFrame) -> dict:
    n = scores.height
    m = int(scores["exact"].sum())
    by = scores.group_by("n_exposures").agg(pl.col("exact").sum().alias("memorized"), pl.len().alias("n")).sort("n_exposures")
    return {"n": n, "memorized": m, "rate": m / max(n, 1), "by_exposures": by.to_dicts(), "agreement": agreement(scores)}

