"""kdmem.stats: intervals against known values."""

from __future__ import annotations

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
