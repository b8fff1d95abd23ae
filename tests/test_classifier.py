"""kdmem.classifier: the memorization classifier on synthetic features with a known answer."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kdmem import classifier, stats
from kdmem import config as kconfig
from kdmem.settings import Classifier

from .conftest import MICRO


def test_fast_auc_and_logistic_fit_equal_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(size=300)) > 0.5
    score = np.round(X[:, 0], 1)  # ties
    assert stats.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    for C in (0.01, 1.0, 100.0):
        coef, b = stats.logistic_fit(X, y, C)
        ref = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, y)
        assert coef == pytest.approx(ref.coef_[0], abs=1e-4) and b == pytest.approx(ref.intercept_[0], abs=1e-4)


def _synthetic(separable: bool, n=400, seed=0, by_exposure: bool = False) -> pl.DataFrame:
    """Features and labels with known structure. by_exposure: the label is decided by exposure alone (half the
    duplicated samples, none of the unique ones), and the features carry no content signal."""
    rng = np.random.default_rng(seed)
    expo = np.where(rng.random(n) < 0.3, 16, 1)
    y = (expo == 16) & (rng.random(n) < 0.5) if by_exposure else rng.random(n) < 0.15
    shift = 3.0 if separable else 0.0
    # exposure lowers perplexity for every duplicated sample, memorized or not: a signal of exposure, not of content
    expo_shift = 1.0 * (expo == 16) if by_exposure else 0.0
    return classifier.design(pl.DataFrame({
        "sample_id": [str(i) for i in range(n)], "teacher_ppl": np.exp(rng.normal(2.3, 0.1, n) - shift * y * 0.1 - expo_shift),
        "baseline_ppl": np.exp(rng.normal(2.5, 0.1, n) - shift * y * 0.1 - expo_shift), "kl_teacher_baseline": rng.normal(1, 0.2, n),
        "zlib_bytes": rng.normal(100, 10, n) - 10 * shift * y, "n_exposures": expo, "label": y}))


def test_classifier_separable_vs_inseparable():
    cfg = kconfig.validate({**MICRO, "classifier": {"trials": 20}})
    good = classifier.run(_synthetic(True), Classifier.of(cfg), 0)
    bad = classifier.run(_synthetic(False), Classifier.of(cfg), 0)
    assert good["status"] == "ok" and good["auc_mean"] > 0.95
    assert 0.35 < bad["auc_mean"] < 0.65
    paper = good["protocols"]["paper"]
    assert len([t for t in good["trials"] if t["protocol"] == "paper" and t["features"] == "all"]) == 20
    # the content signal is in zlib (and the perplexities); KL carries none
    assert paper["single"]["zlib_bytes"]["auc"] > 0.95 and 0.35 < paper["single"]["kl_teacher_baseline"]["auc"] < 0.65
    assert paper["permutation"]["zlib_bytes"]["mean"] > paper["permutation"]["kl_teacher_baseline"]["mean"]
    assert paper["drop_one"]["kl_teacher_baseline"]["auc"] > 0.95
    assert paper["C"] in classifier.C_GRID
    assert abs(good["placebo_auc"] - 0.5) < 0.1  # shuffled labels: chance
    d = good["on_all_of_d"]
    assert d["n_predicted"] == sum(d["predicted_by_exposure"].values()) and 0 <= d["precision_ci"][0] <= d["precision"]
    pred = classifier.predict(good["model"], _synthetic(True, seed=1))
    assert pred["predicted"].sum() > 0


def test_exposure_matched_classifier_sees_through_exposure():
    """Memorization decided by exposure alone, perplexity lowered by exposure: the paper protocol (random
    negatives, mostly once-seen) scores well, the exposure-matched one finds nothing, as it must."""
    cfg = kconfig.validate({**MICRO, "classifier": {"trials": 30}})
    res = classifier.run(_synthetic(False, n=1200, by_exposure=True), Classifier.of(cfg), 0)
    assert res["protocols"]["paper"]["all"]["auc"] > 0.85
    matched = res["protocols"]["exposure_matched"]["all"]
    assert matched["ci"][0] < 0.5 < matched["ci"][1] and abs(matched["auc"] - 0.5) < 0.1


def test_classifier_too_few_positives():
    cfg = kconfig.validate({**MICRO, "classifier": {"min_positives": 5}})
    df = _synthetic(True).with_columns(label=pl.Series([i < 3 for i in range(400)]))
    res = classifier.run(df, Classifier.of(cfg), 0)
    assert res["status"] == "too_few_positives" and "memorized 3 samples" in res["message"] and res["model"] is None
