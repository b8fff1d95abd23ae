"""What exposure alone would give (docs/protocol.md "Statistics", "Exposure nulls").

Memorization in the miniature is a sharp function of how often a sample is seen, so two sets that both
hold the most-seen samples overlap whatever the samples are. A set finding therefore counts only where
it beats a null in which exposure is all there is:

- set_null: the labels of a set (teacher ∩ baseline, teacher-only) are permuted among the samples of the
  same exposure level. A sample's seeds travel together (its per-seed verdicts become one weight, the share
  of seeds that memorize it), so no seed × sample pair is an independent draw. The observed statistic is
  compared with the permutation distribution (one-sided p in the paper's direction); its expected value is
  exact (the level-wise hypergeometric mean), so the excess observed − expected gets a clustered bootstrap
  interval (documents and seeds resampled) by recomputing both on each resample.
- content_test: within the exposure levels where a role's rate is neither ~0 nor ~1, does a per-sample
  feature tell memorized from not? A level-stratified AUC (pairs compared only within a level), with a
  permutation p (the feature permuted within levels) and a clustered bootstrap interval; and a logistic
  model with level fixed effects, whose likelihood-ratio statistics get permutation p-values (the rows
  are seed × sample, so their chi-square p-values would count pairs as independent; both are stated).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kdmem import stats

CHUNK = 500  # permutations drawn at once: CHUNK x (samples in a level) uniforms in memory


def level_subset_sums(values: np.ndarray, label: np.ndarray, strata: np.ndarray, n_perm: int,
                      seed: int | tuple[int, ...]) -> np.ndarray:
    """(n_perm, q) draws of values[label'].sum(0), label' a permutation of `label` within each stratum
    (each level keeps its number of labelled samples). values: (n, q)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_perm, values.shape[1]))
    for v in np.unique(strata):
        idx = np.flatnonzero(strata == v)
        k = int(label[idx].sum())
        if k == 0:
            continue
        if k == idx.size:
            out += values[idx].sum(0)
            continue
        vals = values[idx]
        for s in range(0, n_perm, CHUNK):
            m = min(CHUNK, n_perm - s)
            pick = rng.random((m, idx.size)).argpartition(k - 1, axis=1)[:, :k]  # a uniform k-subset per row
            out[s : s + m] += vals[pick].sum(1)
    return out


def expected_sums(values: np.ndarray, label: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """The permutation null's exact mean of values[label'].sum(0): per level, (labelled share) x (level's sum)."""
    out = np.zeros(values.shape[1])
    for v in np.unique(strata):
        m = strata == v
        out += label[m].mean() * values[m].sum(0)
    return out


def p_value(draws: np.ndarray, observed: float, direction: int) -> float:
    """One-sided permutation p in the paper's direction (+1: observed large; -1: small), counting the observed
    arrangement itself (Phipson and Smyth 2010), so it is never 0."""
    d = draws[~np.isnan(draws)]
    hits = (d >= observed - 1e-12).sum() if direction > 0 else (d <= observed + 1e-12).sum()
    return float((1 + hits) / (1 + d.size))


def set_null(weights: Callable[[np.ndarray, np.random.Generator | None], np.ndarray], label: Callable[[np.ndarray], np.ndarray],
             stat: Callable[[np.ndarray, np.ndarray, np.ndarray], float], strata: np.ndarray, clusters: stats.Clusters,
             direction: int, n_perm: int, n_boot: int, seed: int) -> dict:
    """A set finding against exposure.

    weights(idx, rng) -> (n_idx, q) per-sample seed shares (rng: resample seeds); label(idx) -> (n_idx,) bool set
    membership; stat(sums over the labelled samples (q,), all weights (n_idx, q), label) -> the statistic.
    Returns observed, expected, excess with its interval, p and the null's 2.5-97.5 % range."""
    n = strata.size
    every = np.arange(n)
    w, lab = weights(every, None), label(every)
    observed = stat(w[lab].sum(0), w, lab)
    expected = stat(expected_sums(w, lab, strata), w, lab)
    draws = np.asarray([stat(row, w, lab) for row in level_subset_sums(w, lab, strata, n_perm, seed)])

    def excess(i: np.ndarray, rng: np.random.Generator) -> float:
        wi, li = weights(i, rng), label(i)
        if not li.any():
            return float("nan")
        return stat(wi[li].sum(0), wi, li) - stat(expected_sums(wi, li, strata[i]), wi, li)

    boot = stats.cluster_bootstrap(excess, clusters, n_boot, seed)
    return {"observed": observed, "expected": expected, "excess": observed - expected, "excess_ci": stats.percentile(boot),
            "p": p_value(draws, observed, direction),
            "p_two_sided": min(1.0, 2 * min(p_value(draws, observed, +1), p_value(draws, observed, -1))), "null_range": stats.percentile(draws), "permutations": n_perm,
            "direction": "greater" if direction > 0 else "less"}


def null_verdict(n: dict, direction: int, value_ci: tuple[float, float] | None = None, threshold: float | None = None,
                 alpha: float = 0.05) -> tuple[str, str]:
    """Reproduced only where the excess over exposure is significant in the paper's direction (p < alpha and its
    interval off 0 on that side) and, where the paper gives a bound, the value's interval lies on its side; not
    reproduced where the value's interval lies beyond the paper's bound, or the excess is significant the other way;
    else inconclusive: exposure explains it."""
    ex, (lo, hi), p = n["excess"], n["excess_ci"], n["p"]
    if any(np.isnan(x) for x in (ex, lo, hi, p)):
        return stats.INCONCLUSIVE, "the exposure null is not measurable"
    txt = f"observed {n['observed']:.4g} vs {n['expected']:.4g} under exposure alone, excess {ex:+.4g} [{lo:.4g}, {hi:.4g}], p = {p:.3g}"
    if value_ci is not None and threshold is not None:
        vlo, vhi = value_ci
        if (direction > 0 and vhi < threshold) or (direction < 0 and vlo > threshold):
            return stats.NOT_REPRODUCED, f"the value's interval lies beyond the paper's bound {threshold:g}; {txt}"
    against = hi < 0 if direction > 0 else lo > 0
    if against:
        return stats.NOT_REPRODUCED, f"opposite to the paper's direction beyond exposure: {txt}"
    beyond = p < alpha and (lo > 0 if direction > 0 else hi < 0)
    inside = value_ci is None or threshold is None or (value_ci[0] > threshold if direction > 0 else value_ci[1] < threshold)
    if beyond and inside:
        return stats.REPRODUCED, f"beyond exposure: {txt}"
    if beyond:
        return stats.INCONCLUSIVE, f"beyond exposure, but the value's interval reaches the paper's bound {threshold:g}: {txt}"
    return stats.INCONCLUSIVE, f"exposure explains it: {txt}"


# ---- content within exposure levels ---------------------------------------------------------------------------

def transition_levels(M: np.ndarray, strata: np.ndarray, lo: float = 0.05, hi: float = 0.95) -> list[int]:
    """Exposure levels where the role's rate (seed mean) lies in [lo, hi]: where exposure does not decide."""
    return [int(v) for v in np.unique(strata) if lo <= M[:, strata == v].mean() <= hi]


def stratified_auc(x: np.ndarray, M: np.ndarray, strata: np.ndarray) -> float:
    """AUC of feature x for memorized (per seed), comparing only samples of one level, pooled over levels by their
    number of pairs and averaged over seeds. 0.5: x says nothing within levels; below 0.5: low x goes with memorized."""
    out = []
    for y in M:
        num = den = 0.0
        for v in np.unique(strata):
            m = strata == v
            n1, n0 = int(y[m].sum()), int((~y[m]).sum())
            if n1 and n0:
                num += stats.auc(y[m], x[m]) * n1 * n0
                den += n1 * n0
        out.append(num / den if den else np.nan)
    return float(np.nanmean(out)) if not np.all(np.isnan(out)) else float("nan")


def _permute_within(x: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x (n,) or (n, q) with its rows permuted among the samples of each level (a block of columns moves together)."""
    out = x.copy()
    for v in np.unique(strata):
        i = np.flatnonzero(strata == v)
        out[i] = x[rng.permutation(i)]
    return out


def _loglik(X: np.ndarray, y: np.ndarray) -> float:
    coef, b = stats.logistic_fit(X, y, 1e6)  # C = 1e6: the maximum-likelihood fit, kept finite under separation
    z = X @ coef + b
    return float(-np.logaddexp(0.0, np.where(y, -z, z)).sum())


def lr_stat(F: np.ndarray, M: np.ndarray, strata: np.ndarray, drop: list[int]) -> float:
    """2 (log L(full) - log L(without columns `drop`)) of memorized ~ level fixed effects + standardized features,
    over seed x sample rows."""
    levels = np.unique(strata)
    fe = (strata[:, None] == levels[None, 1:]).astype(float)  # (n, levels - 1); the intercept is the first level
    Z = (F - F.mean(0)) / np.where(F.std(0) > 0, F.std(0), 1.0)
    keep = [j for j in range(F.shape[1]) if j not in drop]
    full, red = np.hstack([fe, Z]), np.hstack([fe, Z[:, keep]])
    y = M.reshape(-1)
    return 2 * (_loglik(np.tile(full, (M.shape[0], 1)), y) - _loglik(np.tile(red, (M.shape[0], 1)), y))


def content_test(features: dict[str, np.ndarray], model_features: list[str], M: np.ndarray, strata: np.ndarray,
                 clusters: stats.Clusters, n_perm: int, n_boot: int, seed: int) -> dict:
    """Does content predict memorization where exposure does not decide? On every sample of the transition levels
    (no subsampling): per feature, the stratified AUC with its clustered bootstrap interval and permutation p; the
    joint likelihood-ratio test of `model_features` over level fixed effects (the verdict's test) and each feature's
    drop-one test, with permutation p-values (Holm-adjusted over the features) beside the chi-square ones."""
    from scipy.stats import chi2

    levels = transition_levels(M, strata)
    if not levels:
        return {"status": "no_transition_levels", "message": "no exposure level has a rate between 5 % and 95 %"}
    sel = np.isin(strata, levels)
    Ms, st, cl = M[:, sel], strata[sel], stats.Clusters(clusters.ids[sel])
    rng = np.random.default_rng(seed)
    n_fit = min(n_perm, 1000)  # each draw refits two logistic models
    rows = []
    for name, x in features.items():
        xs = x[sel].astype(float)
        a = stratified_auc(xs, Ms, st)
        null = np.asarray([stratified_auc(_permute_within(xs, st, rng), Ms, st) for _ in range(min(n_perm, 2000))])
        boot = stats.cluster_bootstrap(lambda i, r, xs=xs: stratified_auc(xs[i], Ms[:, i], st[i]), cl, n_boot, seed)
        rows.append({"feature": name, "auc": a, "auc_ci": stats.percentile(boot),
                     "p": float((1 + (np.abs(null - 0.5) >= abs(a - 0.5) - 1e-12).sum()) / (1 + null.size))})
    F = np.column_stack([features[f][sel].astype(float) for f in model_features])
    tests = {}
    for label, drop in [("joint", list(range(F.shape[1])))] + [(f"drop:{f}", [j]) for j, f in enumerate(model_features)]:
        obs = lr_stat(F, Ms, st, drop)
        def permuted(drop=drop) -> np.ndarray:  # the tested columns' rows move together within levels
            G = F.copy()
            G[:, drop] = _permute_within(F[:, drop], st, rng)
            return G

        null = [lr_stat(permuted(), Ms, st, drop) for _ in range(n_fit)]
        tests[label] = {"lr": obs, "df": len(drop), "p_chi2": float(chi2.sf(obs, len(drop))),
                        "p_perm": float((1 + (np.asarray(null) >= obs - 1e-9).sum()) / (1 + n_fit))}
    singles = sorted((t["p_perm"], k) for k, t in tests.items() if k != "joint")
    for rank, (p, k) in enumerate(singles):  # Holm's step-down adjustment over the drop-one tests
        tests[k]["p_holm"] = min(1.0, max(p * (len(singles) - r) for r, (p, _) in enumerate(singles[: rank + 1])))
    return {"status": "ok", "levels": levels, "n_samples": int(sel.sum()), "positives_per_seed": Ms.sum(1).tolist(),
            "negatives_per_seed": (~Ms).sum(1).tolist(), "features": rows, "tests": tests, "n_tests": 1 + len(singles),
            "permutations": {"auc": min(n_perm, 2000), "lr": n_fit}}
