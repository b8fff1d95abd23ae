"""Predicting memorization before distillation (docs/protocol.md "Predicting memorization").

Features per training sample: log teacher perplexity, log baseline perplexity, KL(teacher || baseline)
(per-token mean, the baseline's kl_to_teacher) and the sample's zlib entropy (zlib_bytes), standardized.
Perplexities enter as logs (mean per-token losses), whose scale is linear where the raw ppl is exponential.
A logistic regression; positives = the student's memorized samples; `trials` repeats, each drawing
negatives and a held-out `test_frac` anew. Two protocols:
- paper: negatives drawn at random, neg_ratio per positive (the paper's 1:3);
- exposure_matched: negatives drawn from the positives' own exposure levels, neg_ratio per positive
  where a level has that many, so exposure cannot separate the classes and only content can.
Which feature matters is read from single-feature AUCs, drop-one AUCs and permutation importance, each
with trial intervals, never from raw coefficients: near-separable data leave coefficients unidentified.
The regularisation strength C is chosen once per protocol by 5-fold cross-validated AUC over a grid and
stated. The final model (paper protocol) predicts every sample of D; precision and recall of that
predicted set are measured on all of D, where the removal experiment uses it.

The fitted model is saved as JSON (feature means, scales, coefficients, intercept): no pickle, and
`kdmem audit` can apply it to a new dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.metrics import roc_curve
from sklearn.model_selection import StratifiedKFold, train_test_split

from kdmem import stats
from kdmem.settings import Classifier

log = logging.getLogger(__name__)
FEATURES = ["log_teacher_ppl", "log_baseline_ppl", "kl_teacher_baseline", "zlib_bytes"]
C_GRID = np.logspace(-3, 3, 13)
PLACEBO_TRIALS = 20


def design(df: pl.DataFrame) -> pl.DataFrame:
    """The model's features from the raw per-sample columns (teacher_ppl, baseline_ppl, kl_teacher_baseline, zlib_bytes)."""
    return df.with_columns(log_teacher_ppl=pl.col("teacher_ppl").log(), log_baseline_ppl=pl.col("baseline_ppl").log())


def feature_table(teacher: pl.DataFrame, baseline: pl.DataFrame, student: pl.DataFrame | None) -> pl.DataFrame:
    """Join per-sample scores into the classifier's features (and the label, when a student is given)."""
    t = teacher.select("sample_id", pl.col("ppl").alias("teacher_ppl"), "zlib_bytes", "n_exposures")
    b = baseline.select("sample_id", pl.col("ppl").alias("baseline_ppl"), pl.col("kl_to_teacher").alias("kl_teacher_baseline"))
    df = t.join(b, on="sample_id", how="inner")
    if student is not None:
        df = df.join(student.select("sample_id", pl.col("exact").alias("label")), on="sample_id", how="inner")
    return design(df.sort("sample_id"))


@dataclass
class Fit:
    """A standardizing logistic model: feature means and scales, coefficients on the standardized features, intercept."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def prob(self, X: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-self.logit(X)))


def _fit(X: np.ndarray, y: np.ndarray, C: float) -> Fit:
    """StandardScaler + LogisticRegression(C), as stats.logistic_fit computes it (tests check it against sklearn)."""
    mean, scale = X.mean(0), X.std(0)
    scale = np.where(scale > 0, scale, 1.0)  # StandardScaler's rule for a constant column
    coef, b = stats.logistic_fit((X - mean) / scale, y, C)
    return Fit(mean, scale, coef, b)


def draw_negatives(y: np.ndarray, expo: np.ndarray, neg_ratio: float, matched: bool, rng: np.random.Generator) -> np.ndarray:
    """Indices of the positives and their negatives: at random, or from each positive's exposure level."""
    pos = np.flatnonzero(y)
    if not matched:
        neg = np.flatnonzero(~y)
        return np.concatenate([pos, rng.choice(neg, size=min(len(neg), int(round(neg_ratio * len(pos)))), replace=False)])
    picks = [pos]
    for level in np.unique(expo[pos]):
        neg = np.flatnonzero(~y & (expo == level))
        want = int(round(neg_ratio * (y & (expo == level)).sum()))
        picks.append(rng.choice(neg, size=min(len(neg), want), replace=False))
    return np.concatenate(picks)


def choose_c(X: np.ndarray, y: np.ndarray, idx: np.ndarray, seed: int) -> float:
    """C by 5-fold cross-validated log-loss on one draw (fewer folds where positives are few); of equal
    losses, the smallest C (the strongest regularisation) wins. Log-loss, not AUC: AUC ignores the scale
    of the probabilities, and near-separable data give every C the same AUC, down to a C so small that no
    probability reaches the 0.5 threshold the predicted set (and the removal) uses."""
    folds = int(min(5, y[idx].sum(), (~y[idx]).sum()))
    if folds < 2:
        return 1.0
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X[idx], y[idx]))
    Xi, yi = X[idx], y[idx]
    losses = [np.mean([_log_loss(yi[te], _fit(Xi[tr], yi[tr], C).logit(Xi[te])) for tr, te in splits]) for C in C_GRID]
    return float(C_GRID[int(np.argmin(np.round(losses, 6)))])


def _log_loss(y: np.ndarray, logit: np.ndarray) -> float:
    """Mean negative log-likelihood of labels y under logits, computed stably (log(1 + e^-|z|))."""
    z = np.where(y, logit, -logit)
    return float(np.mean(np.logaddexp(0.0, -z)))


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    """Precision or recall from boolean masks; 0 where the denominator is empty (sklearn's zero_division=0)."""
    return float(num.sum() / den.sum()) if den.sum() else 0.0


def protocol(X: np.ndarray, y: np.ndarray, expo: np.ndarray, c: Classifier, matched: bool, seed: int) -> dict:
    """Trials of one protocol: all-feature, single-feature and drop-one AUCs, permutation importance."""
    name = "exposure_matched" if matched else "paper"
    rng = np.random.default_rng(seed + (1 if matched else 0))
    idx0 = draw_negatives(y, expo, c.neg_ratio, matched, rng)
    if (~y[idx0]).sum() < c.min_positives:
        return {"status": "too_few_negatives", "message": f"{name}: {(~y[idx0]).sum()} negatives at the positives' exposure levels"}
    C = choose_c(X, y, idx0, seed)
    k = X.shape[1]
    sets = {"all": list(range(k)), **{f"only:{f}": [j] for j, f in enumerate(FEATURES)},
            **{f"drop:{f}": [i for i in range(k) if i != j] for j, f in enumerate(FEATURES)}}
    rows, roc, perm = [], [], {f: [] for f in FEATURES}
    for t in range(c.trials):
        idx = draw_negatives(y, expo, c.neg_ratio, matched, rng)
        tr, te = train_test_split(idx, test_size=c.test_frac, stratify=y[idx], random_state=int(rng.integers(1 << 31)))
        for fs, cols in sets.items():
            fit = _fit(X[tr][:, cols], y[tr], C)
            prob = fit.prob(X[te][:, cols])
            pred = prob >= c.threshold
            rows.append({"protocol": name, "features": fs, "trial": t, "auc": stats.auc(y[te], prob),
                         "precision": _ratio(pred & y[te], pred), "recall": _ratio(pred & y[te], y[te]),
                         "n_test": len(te)})
            if fs == "all":
                if t < 20:
                    fpr, tpr, _ = roc_curve(y[te], prob)
                    roc.append({"trial": t, "fpr": fpr.tolist(), "tpr": tpr.tolist()})
                for j, f in enumerate(FEATURES):
                    perm[f].append(permutation_drop(fit, X[te], y[te], j, rng))
    tr_df = pl.DataFrame(rows)

    def summary(fs: str) -> dict:
        r = tr_df.filter(pl.col("features") == fs)
        aucs = r["auc"].to_numpy()
        return {"auc": float(np.nanmean(aucs)), "ci": stats.percentile(aucs), "precision": float(r["precision"].mean()),
                "recall": float(r["recall"].mean())}

    return {"status": "ok", "C": C, "n_negatives_per_trial": int((~y[idx0]).sum()), "all": summary("all"),
            "single": {f: summary(f"only:{f}") for f in FEATURES}, "drop_one": {f: summary(f"drop:{f}") for f in FEATURES},
            "permutation": {f: {"mean": float(np.mean(v)) if v else float("nan"), "ci": stats.percentile(np.asarray(v))} for f, v in perm.items()},
            "trials": rows, "roc": roc}


def permutation_drop(fit: Fit, X: np.ndarray, y: np.ndarray, j: int, rng: np.random.Generator, repeats: int = 5) -> float:
    """Permutation importance of feature j (Breiman 2001; sklearn's permutation_importance, with AUC as the
    score): the test AUC lost when column j is shuffled, mean over `repeats` shuffles."""
    full = stats.auc(y, fit.logit(X))
    drops = []
    for _ in range(repeats):
        Xp = X.copy()
        Xp[:, j] = rng.permutation(Xp[:, j])
        drops.append(full - stats.auc(y, fit.logit(Xp)))
    return float(np.mean(drops))


def placebo_auc(X: np.ndarray, y: np.ndarray, expo: np.ndarray, c: Classifier, C: float, seed: int) -> float:
    """Mean test AUC of the paper protocol with the labels shuffled: what the pipeline reports when there is nothing to find."""
    rng = np.random.default_rng(seed + 7)
    aucs = []
    for _ in range(PLACEBO_TRIALS):
        ys = rng.permutation(y)
        idx = draw_negatives(ys, expo, c.neg_ratio, False, rng)
        tr, te = train_test_split(idx, test_size=c.test_frac, stratify=ys[idx], random_state=int(rng.integers(1 << 31)))
        aucs.append(stats.auc(ys[te], _fit(X[tr], ys[tr], C).logit(X[te])))
    return float(np.nanmean(aucs))


def run(df: pl.DataFrame, c: Classifier, seed: int) -> dict:
    """Both protocols' trials, the placebo, and a final fit (paper protocol) applied to all of D."""
    X = df.select(FEATURES).to_numpy().astype(float)
    y = df["label"].to_numpy().astype(bool)
    expo = df["n_exposures"].to_numpy()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    base = {"n_samples": df.height, "n_positives": n_pos, "n_negatives": n_neg, "features": FEATURES}
    if n_pos < c.min_positives or n_neg < c.min_positives:
        why = f"too few positives: the student memorized {n_pos} samples (< {c.min_positives}); no AUC is meaningful"
        if n_neg < c.min_positives:
            why = f"too few negatives ({n_neg}); no AUC is meaningful"
        log.warning("classifier: %s", why)
        return {**base, "status": "too_few_positives", "message": why, "trials": [], "coefficients": [], "model": None, "roc": [],
                "protocols": {}}
    protocols = {"paper": protocol(X, y, expo, c, False, seed), "exposure_matched": protocol(X, y, expo, c, True, seed)}
    paper_p = protocols["paper"]
    idx = draw_negatives(y, expo, c.neg_ratio, False, np.random.default_rng(seed))
    fit = _fit(X[idx], y[idx], paper_p["C"])
    model = {"features": FEATURES, "mean": fit.mean.tolist(), "scale": fit.scale.tolist(),
             "coef": fit.coef.tolist(), "intercept": fit.intercept, "threshold": c.threshold, "C": paper_p["C"]}
    trials = [t for p in protocols.values() for t in p.pop("trials", [])]
    roc = paper_p.pop("roc")
    protocols["exposure_matched"].pop("roc", None)
    coefs = [{"feature": f, "coefficient": w} for f, w in zip(FEATURES, model["coef"], strict=True)]
    pred = predict(model, df)["predicted"].to_numpy()
    on_d = on_all_of_d(pred, y, expo)
    log.info("classifier: paper AUC %.4f, exposure-matched AUC %s, on all of D precision %.3f recall %.3f",
             paper_p["all"]["auc"], protocols["exposure_matched"].get("all", {}).get("auc"), on_d["precision"], on_d["recall"])
    return {**base, "status": "ok", "auc_mean": paper_p["all"]["auc"], "protocols": protocols,
            "placebo_auc": placebo_auc(X, y, expo, c, paper_p["C"], seed), "on_all_of_d": on_d,
            "trials": trials, "coefficients": coefs, "model": model, "roc": roc}


def on_all_of_d(pred: np.ndarray, y: np.ndarray, expo: np.ndarray) -> dict:
    """Precision and recall of the predicted set on every sample of D (exact intervals), and its make-up by exposure level."""
    tp, npred, npos = int((pred & y).sum()), int(pred.sum()), int(y.sum())
    levels = np.unique(expo)
    return {"n_predicted": npred, "true_positives": tp,
            "precision": tp / npred if npred else float("nan"), "precision_ci": stats.clopper_pearson(tp, npred),
            "recall": tp / npos if npos else float("nan"), "recall_ci": stats.clopper_pearson(tp, npos),
            "predicted_by_exposure": {int(v): int((pred & (expo == v)).sum()) for v in levels},
            "d_by_exposure": {int(v): int((expo == v).sum()) for v in levels}}


def predict(model: dict | None, df: pl.DataFrame) -> pl.DataFrame:
    """Apply a saved model: per-sample probability of memorization and the predicted flag."""
    if model is None:
        return df.select("sample_id").with_columns(prob=pl.lit(None, dtype=pl.Float64), predicted=pl.lit(False))
    if any(f not in df.columns for f in model["features"]):
        df = design(df)
    X = df.select(model["features"]).to_numpy().astype(float)
    z = (X - np.asarray(model["mean"])) / np.asarray(model["scale"])
    prob = 1 / (1 + np.exp(-(z @ np.asarray(model["coef"]) + model["intercept"])))
    return df.select("sample_id").with_columns(prob=pl.Series(prob), predicted=pl.Series(prob >= model["threshold"]))


def result_tables(res: dict, df: pl.DataFrame, family: str, dataset: str) -> dict[str, pl.DataFrame]:
    """The per-trial, per-feature and per-sample (over df, the feature table) tables of one run, each carrying its family and dataset."""
    trials = pl.DataFrame(res["trials"], schema={"protocol": pl.String, "features": pl.String, "trial": pl.Int64, "auc": pl.Float64,
                                                "precision": pl.Float64, "recall": pl.Float64, "n_test": pl.Int64})
    coefs = pl.DataFrame(res["coefficients"], schema={"feature": pl.String, "coefficient": pl.Float64})
    preds = predict(res["model"], df).join(df.select("sample_id", "label"), on="sample_id")
    ident = [pl.lit(family).alias("family"), pl.lit(dataset).alias("dataset")]
    return {"trials": trials.with_columns(ident), "coefficients": coefs.with_columns(ident), "predictions": preds.with_columns(ident)}
