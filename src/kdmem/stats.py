"""Intervals and verdicts for the findings (docs/protocol.md "Statistics").

Why these and not a plain percentile bootstrap over samples:
- A proportion counts distinct samples: a sample memorized by k of a role's s seeds weighs k / s, and n samples
  are n trials (sample_ci), never seeds x n. Its exact fallback is Clopper-Pearson on those weights.
- A proportion k / n gets an exact Clopper-Pearson interval. It is never of zero width on a finite
  sample (0 / n has an upper bound above 0), where a bootstrap of 0 / n or n / n collapses to a point.
- Samples cut from one document are not independent (they share a topic, a style, an author), and a
  model's seed is a second source of variation. Differences and ratios therefore take a *clustered*
  bootstrap: documents are drawn with replacement (every sample of a drawn document comes along), and
  each role's seeds are drawn with replacement too. Where every draw gives one value (both rates 0, say),
  the bootstrap says nothing, and the interval falls back to Newcombe's hybrid score interval built from
  the two Clopper-Pearson intervals; the row names the method it used.
- A verdict weighs the interval, a seed placebo (the same statistic between two seeds of one role) and,
  where the design allows, what exposure alone would give: see `verdict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def clopper_pearson(k: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials (0/n and n/n included). k may be fractional: the summed
    seed shares of n distinct samples (sample_ci)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def newcombe_diff(k1: int, n1: int, k2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Interval for p1 - p2 from the two exact intervals (Newcombe 1998's hybrid, with Clopper-Pearson
    components): never of zero width for finite n, though it ignores pairing and clustering."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = clopper_pearson(k1, n1, alpha)
    l2, u2 = clopper_pearson(k2, n2, alpha)
    d = p1 - p2
    return d - float(np.hypot(p1 - l1, u2 - p2)), d + float(np.hypot(u1 - p1, p2 - l2))


def percentile(draws: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    draws = np.asarray(draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return (float("nan"), float("nan"))
    return float(np.percentile(draws, 100 * alpha / 2)), float(np.percentile(draws, 100 * (1 - alpha / 2)))


@dataclass(frozen=True)
class Clusters:
    """The sampling units of D: which document each sample came from."""

    ids: np.ndarray  # (n,) cluster index per sample

    @classmethod
    def of(cls, doc_ids: list[str] | np.ndarray) -> Clusters:
        _, inv = np.unique(np.asarray(doc_ids), return_inverse=True)
        return cls(inv.astype(np.int64))

    def members(self) -> list[np.ndarray]:
        order = np.argsort(self.ids, kind="stable")
        bounds = np.flatnonzero(np.diff(self.ids[order])) + 1
        return np.split(order, bounds)

    def draw(self, rng: np.random.Generator, members: list[np.ndarray]) -> np.ndarray:
        """Sample indices of one clustered resample: documents with replacement, each with all its samples."""
        pick = rng.integers(0, len(members), len(members))
        return np.concatenate([members[i] for i in pick])


def cluster_bootstrap(stat: Callable[[np.ndarray, np.random.Generator], float], clusters: Clusters, n_boot: int, seed: int) -> np.ndarray:
    """Draws of stat(sample indices, rng) over clustered resamples; the rng lets stat resample seeds too."""
    rng = np.random.default_rng(seed)
    members = clusters.members()
    return np.asarray([stat(clusters.draw(rng, members), rng) for _ in range(n_boot)], dtype=float)


def seed_mean(rows: np.ndarray, i: np.ndarray, rng: np.random.Generator | None) -> float:
    """Mean over seeds (rows) of the rate on samples i; with an rng, the seeds are resampled too."""
    pick = np.arange(rows.shape[0]) if rng is None else rng.integers(0, rows.shape[0], rows.shape[0])
    return float(rows[pick][:, i].mean())


def interval(draws: np.ndarray, fallback: tuple[float, float]) -> tuple[tuple[float, float], str]:
    """The clustered bootstrap's percentile interval, or `fallback` where the draws have no spread."""
    lo, hi = percentile(draws)
    if np.isnan(lo) or hi - lo <= 0:
        return fallback, "newcombe (bootstrap degenerate)"
    return (lo, hi), "clustered bootstrap (documents, seeds)"


def verdict(value: float | None, ci: tuple[float, float] | None, direction: int, placebo: float | None = None,
            exposure_explains: bool = False, threshold: float | None = None) -> tuple[str, str]:
    """Reproduced / not reproduced / inconclusive, and why.

    direction: +1 if the paper claims the value is above `threshold` (0 for a difference), -1 if below.
    - inconclusive when the value is missing, when the interval straddles the threshold, when the value is
      no further from the threshold than the seed placebo (two seeds of one role differ as much), or when
      exposure alone predicts what is observed;
    - otherwise reproduced if the whole interval lies on the paper's side, not reproduced if on the other.
    """
    t = 0.0 if threshold is None else threshold
    if value is None or ci is None or np.isnan(value) or any(np.isnan(ci)):
        return INCONCLUSIVE, "not measurable"
    lo, hi = ci
    if lo <= t <= hi:
        return INCONCLUSIVE, f"the 95 % interval [{lo:.4g}, {hi:.4g}] contains {t:g}"
    if placebo is not None and not np.isnan(placebo) and abs(value - t) <= abs(placebo):
        return INCONCLUSIVE, f"|{value:.4g} - {t:g}| is within the seed placebo ({abs(placebo):.4g})"
    if exposure_explains:
        return INCONCLUSIVE, "exposure alone predicts it"
    agrees = (lo > t) if direction > 0 else (hi < t)
    return (REPRODUCED, "interval on the paper's side") if agrees else (NOT_REPRODUCED, "interval on the other side")


def sample_ci(M: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Exact interval for a rate over distinct samples: M (seeds, n) bool; a sample memorized by k of the s seeds
    weighs k / s, so n samples are n trials whatever the number of seeds (never seeds x n)."""
    return clopper_pearson(float(M.mean(0).sum()), M.shape[1], alpha)


def by_stratum(strata: np.ndarray, fn: Callable[[np.ndarray], float]) -> dict[int, float]:
    """fn(mask of the stratum's samples) per exposure level."""
    return {int(v): float(fn(strata == v)) for v in np.unique(strata)}


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (ties count one half): equal to sklearn's roc_auc_score,
    without its input validation, which cost ~10 ms a call here, and the classifier makes thousands."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def resampled_aucs(y: np.ndarray, score: np.ndarray, resamples: Iterable[np.ndarray]) -> np.ndarray:
    """auc(y[i], score[i]) for each index array i, without a sort per resample: the scores are sorted and their ties
    grouped once, and a resample's Mann-Whitney U is the sum over tie groups of its positives there times its
    negatives below plus half those tied. U is a sum of half-integers either way, so each value equals auc's exactly.
    (The bootstrap of a membership AUC sorted 7,000 scores 200 times per model and signal: most of mia's time.)"""
    y = np.asarray(y, dtype=bool)
    _, group = np.unique(np.asarray(score), return_inverse=True)  # tie group of each sample, in score order
    n_groups = int(group.max()) + 1 if group.size else 0
    out = []
    for i in resamples:
        gp, gn = group[i][y[i]], group[i][~y[i]]
        if gp.size == 0 or gn.size == 0:
            out.append(float("nan"))
            continue
        pos_k = np.bincount(gp, minlength=n_groups).astype(np.float64)
        neg_k = np.bincount(gn, minlength=n_groups).astype(np.float64)
        below = np.cumsum(neg_k) - neg_k
        out.append(float((pos_k * (below + 0.5 * neg_k)).sum() / (gp.size * gn.size)))
    return np.asarray(out)


def logistic_fit(X: np.ndarray, y: np.ndarray, C: float, iters: int = 50, tol: float = 1e-10,
                 weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method, sklearn's objective exactly
    (0.5·|w|² + C·Σ log-loss, intercept unpenalised): the same optimum as LogisticRegression(C=C), at a
    fraction of its per-call overhead for the few features and thousands of refits the classifier needs.
    weight: each row's count (rows with equal features and outcome given once, weighted: the same objective)."""
    if weight is not None:
        return _weighted_logistic_fit(X, y, C, iters, tol, weight)
    n, k = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(k + 1)
    reg = np.full(k + 1, 1.0 / C)
    reg[-1] = 0.0
    yf = y.astype(float)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(A @ w)))
        grad = A.T @ (p - yf) + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-12 * np.eye(k + 1)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < tol:
            break
    return w[:k], float(w[k])


def _weighted_logistic_fit(X: np.ndarray, y: np.ndarray, C: float, iters: int, tol: float, weight: np.ndarray) -> tuple[np.ndarray, float]:
    n, k = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(k + 1)
    reg = np.full(k + 1, 1.0 / C)
    reg[-1] = 0.0
    yf, c = y.astype(float), np.asarray(weight, dtype=float)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(A @ w)))
        grad = A.T @ (c * (p - yf)) + reg * w
        H = (A * (c * p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-12 * np.eye(k + 1)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < tol:
            break
    return w[:k], float(w[k])
