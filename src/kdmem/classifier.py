"""Predicting memorization before distillation (docs/protocol.md "Predicting memorization").

Features per training sample: teacher perplexity, baseline perplexity, KL(teacher || baseline)
(per-token mean, the baseline's kl_to_teacher) and zlib bytes of the memorization window. A
logistic regression on standardized features; positives = the student's memorized samples,
negatives sampled 1:neg_ratio; test_frac held out; `trials` repeats, each re-sampling negatives.

The fitted model is saved as JSON (feature means, scales, coefficients, intercept): no pickle, and
`kdmem audit` can apply it to a new dataset.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score, roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)
FEATURES = ["teacher_ppl", "baseline_ppl", "kl_teacher_baseline", "zlib"]


def feature_table(teacher: pl.DataFrame, baseline: pl.DataFrame, student: pl.DataFrame | None) -> pl.DataFrame:
    """Join per-sample scores into the classifier's features (and the label, when a student is given)."""
    t = teacher.select("sample_id", pl.col("ppl").alias("teacher_ppl"), "zlib", "n_exposures")
    b = baseline.select("sample_id", pl.col("ppl").alias("baseline_ppl"), pl.col("kl_to_teacher").alias("kl_teacher_baseline"))
    df = t.join(b, on="sample_id", how="inner")
    if student is not None:
        df = df.join(student.select("sample_id", pl.col("exact").alias("label")), on="sample_id", how="inner")
    return df.sort("sample_id")


def _fit(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[StandardScaler, LogisticRegression]:
    scaler = StandardScaler().fit(X)
    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(scaler.transform(X), y)
    return scaler, clf


def _sample(y: np.ndarray, neg_ratio: float, rng: np.random.Generator) -> np.ndarray:
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    take = min(len(neg), int(round(neg_ratio * len(pos))))
    return np.concatenate([pos, rng.choice(neg, size=take, replace=False)])


def run(df: pl.DataFrame, cfg: dict, seed: int = 0) -> dict:
    """Trials + a final fit. Returns metrics, per-trial rows, coefficients, the model and ROC points."""
    c = cfg["classifier"]
    X = df.select(FEATURES).to_numpy().astype(float)
    y = df["label"].to_numpy().astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    base = {"n_samples": df.height, "n_positives": n_pos, "n_negatives": n_neg, "features": FEATURES}
    if n_pos < c["min_positives"] or n_neg < c["min_positives"]:
        why = f"too few positives: the student memorized {n_pos} samples (< {c['min_positives']}); no AUC is meaningful"
        if n_neg < c["min_positives"]:
            why = f"too few negatives ({n_neg}); no AUC is meaningful"
        log.warning("classifier: %s", why)
        return {**base, "status": "too_few_positives", "message": why, "trials": [], "coefficients": [], "model": None, "roc": []}
    rng = np.random.default_rng(seed)
    trials, roc = [], []
    for t in range(c["trials"]):
        idx = _sample(y, c["neg_ratio"], rng)
        tr, te = train_test_split(idx, test_size=c["test_frac"], stratify=y[idx], random_state=int(rng.integers(1 << 31)))
        scaler, clf = _fit(X[tr], y[tr], seed)
        prob = clf.predict_proba(scaler.transform(X[te]))[:, 1]
        pred = prob >= c["threshold"]
        auc = roc_auc_score(y[te], prob) if len(set(y[te])) == 2 else float("nan")
        trials.append({"trial": t, "auc": auc, "precision": precision_score(y[te], pred, zero_division=0),
                       "recall": recall_score(y[te], pred, zero_division=0), "n_test": len(te)})
        if t < 20:
            fpr, tpr, _ = roc_curve(y[te], prob)
            roc.append({"trial": t, "fpr": fpr.tolist(), "tpr": tpr.tolist()})
    idx = _sample(y, c["neg_ratio"], np.random.default_rng(seed))
    scaler, clf = _fit(X[idx], y[idx], seed)
    model = {"features": FEATURES, "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist(),
             "coef": clf.coef_[0].tolist(), "intercept": float(clf.intercept_[0]), "threshold": c["threshold"]}
    tr = pl.DataFrame(trials)
    metrics = {f"{m}_{s}": float(getattr(tr[m], s)()) for m in ("auc", "precision", "recall") for s in ("mean", "std")}
    coefs = [{"feature": f, "coefficient": w} for f, w in zip(FEATURES, model["coef"], strict=True)]
    aucs = [t["auc"] for t in trials]
    metrics["auc_p2.5"], metrics["auc_p97.5"] = (float(np.nanpercentile(aucs, q)) for q in (2.5, 97.5))
    return {**base, "status": "ok", **metrics, "trial_aucs": aucs, "trials": trials, "coefficients": coefs, "model": model, "roc": roc}


def predict(model: dict | None, df: pl.DataFrame) -> pl.DataFrame:
    """Apply a saved model: per-sample probability of memorization and the predicted flag."""
    if model is None:
        return df.select("sample_id").with_columns(prob=pl.lit(None, dtype=pl.Float64), predicted=pl.lit(False))
    X = df.select(model["features"]).to_numpy().astype(float)
    z = (X - np.asarray(model["mean"])) / np.asarray(model["scale"])
    prob = 1 / (1 + np.exp(-(z @ np.asarray(model["coef"]) + model["intercept"])))
    return df.select("sample_id").with_columns(prob=pl.Series(prob), predicted=pl.Series(prob >= model["threshold"]))


def result_tables(res: dict, df: pl.DataFrame, family: str, dataset: str) -> dict[str, pl.DataFrame]:
    """The per-trial, per-feature and per-sample (over df, the feature table) tables of one run, each carrying its family and dataset."""
    trials = pl.DataFrame(res["trials"], schema={"trial": pl.Int64, "auc": pl.Float64, "precision": pl.Float64,
                                                "recall": pl.Float64, "n_test": pl.Int64})
    coefs = pl.DataFrame(res["coefficients"], schema={"feature": pl.String, "coefficient": pl.Float64})
    preds = predict(res["model"], df).join(df.select("sample_id", "label"), on="sample_id")
    ident = [pl.lit(family).alias("family"), pl.lit(dataset).alias("dataset")]
    return {"trials": trials.with_columns(ident), "coefficients": coefs.with_columns(ident), "predictions": preds.with_columns(ident)}
