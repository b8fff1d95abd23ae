"""Membership-inference risk per model (docs/protocol.md "Membership inference"): does a model leak
which samples it trained on? Members are D's training samples. Non-members must be drawn like the members
(Duan et al. 2024; Das et al. 2024), or the AUC measures a distribution shift: the primary comparison takes
the validation windows, drawn by the same seeded permutation of the same documents' windows as D
(datasets.*.n_val, n_val_extra); windows of held-out documents, which differ from D in topic and in how much
of them is code, are a second comparison, labelled as such. Two checks sit beside every table: the bases,
which never saw D, must score AUC 0.5 (their interval is the check), and a model-free ("blind") classifier
on the text alone (zlib entropy and character shares, Das et al. 2024) shows what the text by itself separates.

Per sample, five signals, each oriented so that a higher value says "member", all read from the scoring pass
(kdmem.scoring stores ppl, zlib_bytes, min_k and min_k_pp per sample), so membership inference runs no model:
  loss        -L, L = mean negative log-likelihood of the sample's tokens (Yeom et al. 2018)
  zlib_loss_ratio  -L / zlib_bytes, the sample's zlib entropy (Carlini et al. 2021's "zlib" attack)
  min_k       mean log p of the k % least likely tokens (Min-K % Prob, Shi et al. 2024)
  min_k_pp    mean of the k % lowest (log p(x_t) - mu_t) / sigma_t, mu_t and sigma_t the mean and standard
              deviation of log p(z) under z ~ p(. | x_<t) (Min-K %++, Zhang et al. 2025)
  reference   L_ref - L, L_ref the reference model's loss on the sample (Carlini et al. 2021; the
              reference is the model's own starting checkpoint: the large base for the teacher, the
              small base for every other role, i.e. what that model knew before D)
Per model and signal: ROC-AUC with a bootstrap 95 % interval over members and non-members resampled
separately, and the TPR at FPR < 1 % (strictly, as Carlini et al. 2022 and mimir read it: with 200
non-members that admits one false positive, not two) with an exact Clopper-Pearson interval over the
members at that threshold (the threshold's own uncertainty, from the non-members, is not in it). The TPR is
reported only where FPR < 1 % admits at least MIN_FALSE_POSITIVES non-members (1,100 non-members or more):
a threshold set by one or two non-members says nothing.
Min-K % and Min-K %++ average the int(k·n) lowest tokens (at least one), as mimir and their papers do.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SIGNALS = ("loss", "zlib_loss_ratio", "min_k", "min_k_pp", "reference")
MIN_FALSE_POSITIVES = 10
BLIND_MODEL, BLIND_SIGNAL = "blind", "text_features"


def lowest_mean(values: np.ndarray, k: float) -> np.ndarray:
    """Mean of the int(k * n) smallest values of each row (at least one), the Min-K % papers' and mimir's count."""
    n = max(1, int(k * values.shape[1]))
    return np.sort(values, axis=1)[:, :n].mean(axis=1)


def signals(stats: dict[str, np.ndarray], zlib_bytes: np.ndarray, ref_loss: np.ndarray, k: float) -> dict[str, np.ndarray]:
    """The five per-sample signals (higher = member) from a model's token statistics: per sample and predicted
    position, log p of the true token (logp), and the mean (mu) and standard deviation (sigma) of log p under the
    model's own next-token distribution. kdmem.scoring computes min_k and min_k_pp this way in its pass."""
    loss = -stats["logp"].mean(axis=1)
    z = (stats["logp"] - stats["mu"]) / np.maximum(stats["sigma"], 1e-12)
    return {
        "loss": -loss,
        "zlib_loss_ratio": -loss / zlib_bytes,
        "min_k": lowest_mean(stats["logp"], k),
        "min_k_pp": lowest_mean(z, k),
        "reference": ref_loss - loss,
    }


def signals_from_scores(scores: pl.DataFrame, ref_loss: np.ndarray) -> dict[str, np.ndarray]:
    """The same five signals from a scores table (kdmem.scoring): loss = ln ppl, the mean NLL over the sample's L - 1
    predicted tokens; min_k and min_k_pp as scoring computed them; ref_loss the reference model's loss, row for row.
    No model runs: the scoring pass already made every number."""
    loss = np.log(scores["ppl"].to_numpy())
    return {"loss": -loss, "zlib_loss_ratio": -loss / scores["zlib_bytes"].to_numpy().astype(float),
            "min_k": scores["min_k"].to_numpy(), "min_k_pp": scores["min_k_pp"].to_numpy(), "reference": ref_loss - loss}


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float = 0.01, min_false_positives: int = MIN_FALSE_POSITIVES) -> float | None:
    """The highest true-positive rate among thresholds whose false-positive rate is below `fpr` (strictly); None
    where that admits fewer than `min_false_positives` non-members."""
    from sklearn.metrics import roc_curve

    n_neg = int((~labels.astype(bool)).sum())
    if int(np.ceil(fpr * n_neg)) - 1 < min_false_positives:
        return None
    f, t, _ = roc_curve(labels, scores)
    return float(t[f < fpr - 1e-12].max())


def metrics(labels: np.ndarray, scores: np.ndarray, n_boot: int, seed: int) -> dict:
    """ROC-AUC with a percentile bootstrap interval (members and non-members resampled apart), and TPR at
    FPR < 1 % with an exact interval over the members."""
    from kdmem import stats

    labels = labels.astype(bool)
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    rng = np.random.default_rng(seed)
    aucs = stats.resampled_aucs(labels, scores, (np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
                                                 for _ in range(n_boot)))
    tpr = tpr_at_fpr(labels, scores)
    tpr_lo, tpr_hi = stats.clopper_pearson(int(round(tpr * pos.size)), int(pos.size)) if tpr is not None else (None, None)
    lo, hi = stats.percentile(np.asarray(aucs))
    return {
        "auc": stats.auc(labels, scores), "auc_lo": lo, "auc_hi": hi,
        "tpr_at_1pct_fpr": tpr, "tpr_lo": tpr_lo, "tpr_hi": tpr_hi,
        "n_members": int(pos.size), "n_nonmembers": int(neg.size),
    }


def pick_members(train: pl.DataFrame, max_members: int, seed: int) -> pl.DataFrame:
    """All of D, or a seeded sample of max_members of it: at the paper's 1 M samples, scoring every
    member again would cost a forward pass of every model over D for an AUC that 10 k members pin down."""
    return _at_most(train, max_members, seed)


def pick_nonmembers(val: pl.DataFrame, heldout: pl.DataFrame, n: int, seed: int) -> dict[str, pl.DataFrame]:
    """The non-member sets, primary first: the validation windows (drawn as D is), then the held-out documents'
    windows where the run has them; at most n of each, seeded."""
    sets = {"val": _at_most(val, n, seed + 1)}
    if heldout.height:
        sets["heldout"] = _at_most(heldout, n, seed + 2)
    return sets


def text_features(texts: list[str]) -> np.ndarray:
    """Model-free features of a text (Das et al. 2024's blind attacks): zlib entropy and compressibility, length in
    characters, and the shares of letters, digits, whitespace, newlines, upper case and punctuation."""
    import zlib

    rows = []
    for t in texts:
        n = max(1, len(t))
        z = len(zlib.compress(t.encode("utf-8")))
        rows.append([z, z / max(1, len(t.encode("utf-8"))), len(t), sum(c.isalpha() for c in t) / n, sum(c.isdigit() for c in t) / n,
                     sum(c.isspace() for c in t) / n, t.count("\n") / n, sum(c.isupper() for c in t) / n,
                     sum(not (c.isalnum() or c.isspace()) for c in t) / n])
    return np.asarray(rows, dtype=float)


def blind_scores(labels: np.ndarray, texts: list[str], seed: int) -> np.ndarray:
    """Out-of-fold membership scores of a logistic regression on text_features alone (5-fold, stratified): what the
    text by itself separates, with no model. An AUC above 0.5 here is a distribution shift between the two sets."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = labels.astype(bool)
    folds = int(min(5, labels.sum(), (~labels).sum()))
    if folds < 2:
        return np.full(labels.size, 0.5)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(clf, text_features(texts), labels, cv=cv, method="predict_proba")[:, 1]


def _at_most(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    if df.height <= n:
        return df
    return df[np.sort(np.random.default_rng(seed).permutation(df.height)[:n])]
