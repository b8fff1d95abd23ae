"""kdmem.stats: intervals against known values."""

from __future__ import annotations

import numpy as np
import pytest

from kdmem import stats


def test_clopper_pearson_and_newcombe_match_known_values():
    lo, hi = stats.clopper_pearson(0, 10)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))  # the closed form for 0/n
    lo, hi = stats.clopper_pearson(10, 10)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / 10))
    assert stats.clopper_pearson(5, 10) == pytest.approx((0.18708, 0.81292), abs=1e-5)  # R's binom.test(5, 10)
    lo, hi = stats.newcombe_diff(0, 50, 0, 50)
    assert lo < 0 < hi


def test_resampled_aucs_equal_auc_on_each_resample_exactly():
    # ties (rounded scores), a resample with no negatives (nan), and every value bit-equal to the sorting auc
    rng = np.random.default_rng(3)
    y = rng.random(400) < 0.7
    score = np.round(rng.normal(size=400) + 0.5 * y, 1)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    idx = [np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)]) for _ in range(50)] + [pos[:20]]
    got = stats.resampled_aucs(y, score, idx)
    want = np.asarray([stats.auc(y[i], score[i]) for i in idx])
    assert np.array_equal(got[:-1], want[:-1]) and np.isnan(got[-1]) and np.isnan(want[-1])
    assert 0.55 < got[:-1].mean() < 0.9, "a real signal, so a wrong sign or scale would show"
