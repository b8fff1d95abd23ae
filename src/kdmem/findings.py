"""The paper's claims F1-F8 (docs/protocol.md "Findings"), each measured the way a referee would ask:
a value, an interval that means what it says, a seed placebo, the value within exposure strata, and a
verdict among reproduced / not reproduced / inconclusive (kdmem.stats.verdict).

Definitions that differ from a naive reading, and why:
- The baseline is every baseline seed, not the first: its rate is the seed mean, "teacher ∩ baseline"
  is the teacher's set memorized by *any* baseline seed, and "teacher-only" is the teacher's set memorized
  by *no* baseline seed. Against one seed, samples another seed memorizes count as teacher-only.
- A student or hard student with several seeds enters with every seed (rates: the seed mean; shares:
  counts pooled over seeds).
- Seed placebo: the same statistic between two seeds of the baseline (the largest such gap). A role
  difference no larger than it is seed noise.
- Exposure: the roles are scored on the same samples, so a rate difference cannot be confounded by
  exposure, but an overlap can: two sets that both hold the most-seen samples overlap whatever the
  samples are. For F3 and F4 the verdict therefore compares the observed share with the share exposure
  alone would give (membership independent given the exposure level; stats.exposure_only_share); for F6
  with the exposure-matched classifier; for F7 with a removal of as many samples chosen by exposure alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from kdmem import paper, stats
from kdmem.stats import INCONCLUSIVE


@dataclass
class Study:
    """Per-sample arrays of one (family, dataset): D's samples in sample_id order."""

    doc_ids: np.ndarray  # (n,)
    exposures: np.ndarray  # (n,) exposures per epoch
    mem: dict[str, np.ndarray]  # role -> (seeds, n) bool: teacher, baseline, student, hard_student, student_cleaned, base_*
    removed: np.ndarray | None = None  # (n,) bool: the classifier's predicted set (dropped from the cleaned D)
    # split (val: windows of D's documents; heldout: documents no model saw) -> role -> per seed, per sample loss (nats)
    val: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=dict)
    val_doc_ids: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (m,) document of each sample
    extractable: dict[str, np.ndarray] = field(default_factory=dict)  # role -> (seeds, n) bool: (n, p)-extractable

    @property
    def n(self) -> int:
        return len(self.exposures)

    def has(self, role: str) -> bool:
        return role in self.mem and self.mem[role].shape[0] > 0

    def any_baseline(self, exclude: int | None = None) -> np.ndarray:
        b = self.mem["baseline"]
        keep = [i for i in range(b.shape[0]) if i != exclude]
        return b[keep].any(0) if keep else np.zeros(self.n, dtype=bool)

    def teacher_only(self, exclude: int | None = None) -> np.ndarray:
        return self.mem["teacher"][0] & ~self.any_baseline(exclude)

    def teacher_and_baseline(self) -> np.ndarray:
        return self.mem["teacher"][0] & self.any_baseline()


def row(fid: str, claim: str, rule: str, value=None, ci=None, ci_method: str = "", placebo=None, placebo_what: str = "",
        strata=None, exposure_only=None, verdict: tuple[str, str] = (INCONCLUSIVE, "not measurable"), positives: int | None = None) -> dict:
    return {"id": fid, "claim": claim, "value": value, "ci": ci, "ci_method": ci_method, "placebo": placebo,
            "placebo_what": placebo_what, "strata": strata or {}, "exposure_only": exposure_only,
            "verdict": verdict[0], "why": verdict[1], "rule": rule, "paper": paper.FINDINGS[fid], "positives": positives}


def missing(fid: str, claim: str, rule: str, what: str) -> dict:
    return row(fid, claim, rule, verdict=(INCONCLUSIVE, f"not computed: {what}"))


def _pairs_gap(values: list[float]) -> float | None:
    """The largest gap between two seeds' values: the seed placebo. None with fewer than two seeds."""
    return max(abs(a - b) for a, b in combinations(values, 2)) if len(values) > 1 else None


def _rate_diff(s: Study, a: str, b: str, fid: str, claim: str, n_boot: int, seed: int) -> dict:
    """Rate of role a (seed mean) minus rate of role b (seed mean), > 0 claimed."""
    rule = "difference > 0: 95 % interval above 0 and larger than the baseline seed placebo"
    if not (s.has(a) and s.has(b)):
        return missing(fid, claim, rule, f"no {a if not s.has(a) else b} in this run")
    A, B = s.mem[a], s.mem[b]
    value = float(A.mean() - B.mean())
    draws = stats.cluster_bootstrap(lambda i, rng: stats.seed_mean(A, i, rng) - stats.seed_mean(B, i, rng),
                                    stats.Clusters.of(s.doc_ids), n_boot, seed)
    ka, na, kb, nb = int(A.sum()), A.size, int(B.sum()), B.size
    ci, method = stats.interval(draws, stats.newcombe_diff(ka, na, kb, nb))
    placebo = _pairs_gap([float(x.mean()) for x in s.mem["baseline"]])
    strata = stats.by_stratum(s.exposures, lambda m: A[:, m].mean() - B[:, m].mean())
    return row(fid, claim, rule, value, ci, method, placebo, "largest rate gap between two baseline seeds", strata,
               verdict=stats.verdict(value, ci, +1, placebo), positives=int(min(A.sum(1).mean(), B.sum(1).mean())))


def f1(s: Study, n_boot: int, seed: int, **_) -> dict:
    return _rate_diff(s, "baseline", "student", "F1", "the student memorizes less than the baseline (rate: baseline − student)", n_boot, seed)


def f2(s: Study, n_boot: int, seed: int, **_) -> dict:
    return _rate_diff(s, "teacher", "baseline", "F2", "the teacher memorizes more than the baseline (rate: teacher − baseline)", n_boot, seed)


def _share(s: Study, target: str, within: np.ndarray) -> tuple[int, int]:
    """Members of `target`'s sets (pooled over its seeds) that lie in `within`, and their number."""
    t = s.mem[target]
    return int((t & within).sum()), int(t.sum())


def f3(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "the student's memorized samples lie in teacher ∩ baseline (share)"
    rule = f"share > {paper.F3_LOWEST_SHARE:g} (the paper's lowest), beyond what exposure alone gives"
    if not all(s.has(r) for r in ("teacher", "baseline", "student")):
        return missing("F3", claim, rule, "needs teacher, baseline and student")
    tb = s.teacher_and_baseline()
    k, n = _share(s, "student", tb)
    if n == 0:
        return row("F3", claim, rule, verdict=(INCONCLUSIVE, "the student memorized no sample"), positives=0)
    value, ci = k / n, stats.clopper_pearson(k, n)
    # placebo: how much of one baseline seed's set lies in teacher ∩ the other seeds
    loo = [float((s.mem["baseline"][j] & s.mem["teacher"][0] & s.any_baseline(j)).sum() / max(1, s.mem["baseline"][j].sum()))
           for j in range(s.mem["baseline"].shape[0])] if s.mem["baseline"].shape[0] > 1 else []
    expected, (elo, ehi) = stats.exposure_only_share(s.mem["student"].any(0), tb, s.exposures, n_boot, seed)
    strata = stats.by_stratum(s.exposures, lambda m: (s.mem["student"][:, m] & tb[m]).sum() / max(1, s.mem["student"][:, m].sum()))
    v = stats.verdict(value, ci, +1, threshold=paper.F3_LOWEST_SHARE, exposure_explains=bool(value <= ehi))
    return row("F3", claim, rule, value, ci, "clopper-pearson", float(np.mean(loo)) if loo else None,
               "share of one baseline seed's set in teacher ∩ the other seeds (mean over seeds)", strata,
               {"expected": expected, "ci": (elo, ehi)}, v, positives=n)


def f4(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "the student inherits little of the teacher-only set (share inherited)"
    rule = f"share < {paper.F4_HIGHEST_SHARE:g} (the paper's highest), and below what exposure alone gives"
    if not all(s.has(r) for r in ("teacher", "baseline", "student")):
        return missing("F4", claim, rule, "needs teacher, baseline and student")
    to = s.teacher_only()
    if not to.any():
        return row("F4", claim, rule, verdict=(INCONCLUSIVE, "the teacher-only set is empty"), positives=0)
    S = s.mem["student"]
    k, n = int(S[:, to].sum()), int(to.sum()) * S.shape[0]
    value, ci = k / n, stats.clopper_pearson(k, n)
    loo = _baseline_inheritance(s)
    expected, (elo, ehi) = stats.exposure_only_share(to, S.any(0), s.exposures, n_boot, seed)
    strata = stats.by_stratum(s.exposures, lambda m: S[:, m & to].mean() if (m & to).any() else float("nan"))
    v = stats.verdict(value, ci, -1, threshold=paper.F4_HIGHEST_SHARE, exposure_explains=bool(value >= elo))
    return row("F4", claim, rule, value, ci, "clopper-pearson", float(np.mean(loo)) if loo else None,
               "share of the teacher-only set (against the other seeds) a held-out baseline seed memorizes", strata,
               {"expected": expected, "ci": (elo, ehi)}, v, positives=int(to.sum()))


def _baseline_inheritance(s: Study) -> list[float]:
    """Per baseline seed j: the share of teacher-only-against-the-other-seeds that seed j memorizes."""
    b = s.mem["baseline"]
    if b.shape[0] < 2:
        return []
    out = []
    for j in range(b.shape[0]):
        to = s.teacher_only(exclude=j)
        out.append(float(b[j][to].mean()) if to.any() else float("nan"))
    return out


def f5(s: Study, n_boot: int, seed: int, margin: float = 0.05, **_) -> dict:
    claim = f"the student is no worse than the baseline on validation (loss: baseline − student, non-inferiority margin {margin:g} nats)"
    rule = f"non-inferiority: 95 % interval above −{margin:g} nats and further from it than the seed placebo"
    # Held-out documents where the run has them (the paper's validation is unseen web text), else the window validation.
    split = "heldout" if s.val.get("heldout", {}).get("student") else "val"
    vb, vs = s.val.get(split, {}).get("baseline"), s.val.get(split, {}).get("student")
    if not vb or not vs:
        return missing("F5", claim, rule, "needs baseline and student validation scores")
    B, S = np.asarray(vb), np.asarray(vs)
    value = float(B.mean() - S.mean())
    docs = s.val_doc_ids.get(split)
    clusters = stats.Clusters.of(docs if docs is not None else np.arange(B.shape[1]))
    draws = stats.cluster_bootstrap(lambda i, rng: stats.seed_mean(B, i, rng) - stats.seed_mean(S, i, rng), clusters, n_boot, seed)
    ci, method = stats.percentile(draws), f"clustered bootstrap (documents, seeds) on the {split} split"
    placebo = _pairs_gap([float(x.mean()) for x in B])
    other = {}
    if split == "heldout" and s.val.get("val", {}).get("student") and s.val["val"].get("baseline"):
        other = {"window validation": float(np.mean(s.val["val"]["baseline"]) - np.mean(s.val["val"]["student"]))}
    return row("F5", claim, rule, value, ci, method, placebo, "largest validation-loss gap between two baseline seeds", other,
               verdict=stats.verdict(value, ci, +1, placebo, threshold=-margin), positives=B.shape[1])


def f6(s: Study, n_boot: int, seed: int, classifier: dict | None = None, **_) -> dict:
    claim = "memorization is predictable before distillation (mean ROC-AUC; interval: 2.5–97.5 percentile of trial AUCs)"
    rule = f"AUC > {paper.F6_AUC:g}, and the exposure-matched classifier's interval above 0.5"
    c = classifier or {}
    if c.get("status") != "ok":
        return missing("F6", claim, rule, c.get("message", "no classifier output"))
    paper_p = c["protocols"]["paper"]
    auc, ci = paper_p["all"]["auc"], tuple(paper_p["all"]["ci"])
    matched = c["protocols"].get("exposure_matched", {})
    m_all = matched.get("all") if matched.get("status") == "ok" else None
    explains = m_all is not None and m_all["ci"][0] <= 0.5
    v = stats.verdict(auc, ci, +1, exposure_explains=explains, threshold=paper.F6_AUC)
    if m_all is None and v[0] == stats.REPRODUCED:
        # Without negatives at the positives' exposure levels nothing shows the classifier used content, not exposure.
        v = (INCONCLUSIVE, "the exposure-matched check could not run (" + matched.get("message", "not run") +
             "), so exposure alone may explain the AUC")
    strata = {"exposure_matched_auc": m_all["auc"], "exposure_matched_ci": m_all["ci"]} if m_all else {}
    return row("F6", claim, rule, auc, ci, "trial percentiles", c.get("placebo_auc"), "mean AUC with shuffled labels (permutation placebo)",
               strata, None, v, positives=c.get("n_positives"))


def f7(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "removing the predicted-memorized samples cuts the student's memorization (1 − cleaned student / student, on the samples both trained on)"
    rule = f"reduction > {paper.F7_REDUCTION:g}, beyond the baseline seed placebo and a removal by exposure alone"
    if not (s.has("student") and s.has("student_cleaned")) or s.removed is None:
        return missing("F7", claim, rule, "no removal experiment in this run")
    kept = ~s.removed
    if kept.all():
        return missing("F7", claim, rule, "the classifier removed no sample, so the cleaned D equals D")
    S, C = s.mem["student"], s.mem["student_cleaned"]
    k_s = int(S[:, kept].sum())
    if k_s == 0:
        return row("F7", claim, rule, verdict=(INCONCLUSIVE, "the student on D memorized none of the retained samples"), positives=0)
    # On the retained samples only: a removed sample counts as "not memorized" by a student that never saw it.
    value = float(1 - C[:, kept].mean() / S[:, kept].mean())

    def stat(i: np.ndarray, rng: np.random.Generator) -> float:
        i = i[kept[i]]
        d = stats.seed_mean(S, i, rng)
        return 1 - stats.seed_mean(C, i, rng) / d if d else float("nan")

    draws = stats.cluster_bootstrap(stat, stats.Clusters.of(s.doc_ids), n_boot, seed)
    k_c = int(C[:, kept].sum())
    lo, hi = stats.clopper_pearson(min(k_c, k_s), k_s)
    ci, method = stats.interval(draws, (1 - hi, 1 - lo))
    b = s.mem["baseline"]
    placebo = _pairs_gap([0.0] + [1 - b[j].sum() / b[i].sum() for i, j in combinations(range(b.shape[0]), 2) if b[i].sum()]) \
        if b.shape[0] > 1 else None
    # Exposure alone: remove as many samples, the most-exposed first (ties in a seeded order).
    order = np.lexsort((np.random.default_rng(seed).permutation(s.n), -s.exposures))
    by_expo = np.zeros(s.n, dtype=bool)
    by_expo[order[: int(s.removed.sum())]] = True
    expo_red = float(S[:, by_expo].sum() / S.sum()) if S.sum() else float("nan")
    strata = stats.by_stratum(s.exposures, lambda m: C[:, m & kept].mean() if (m & kept).any() else float("nan"))
    v = stats.verdict(value, ci, +1, placebo, exposure_explains=bool(expo_red >= value), threshold=paper.F7_REDUCTION)
    return row("F7", claim, rule, value, ci, method, placebo, "largest relative change in memorized count between two baseline seeds",
               strata, {"expected": expo_red, "what": "share of the student's set that removing the same number of most-exposed samples removes"},
               v, positives=k_s)


def f8(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "hard KD inherits more of the teacher-only set than soft KD (share inherited: hard − soft)"
    rule = "difference > 0: 95 % interval above 0 and larger than the gap between baseline seeds' inheritance"
    if not all(s.has(r) for r in ("teacher", "baseline", "student", "hard_student")):
        return missing("F8", claim, rule, "needs teacher, baseline, student and hard student")
    to = s.teacher_only()
    if not to.any():
        return row("F8", claim, rule, verdict=(INCONCLUSIVE, "the teacher-only set is empty"), positives=0)
    H, S = s.mem["hard_student"], s.mem["student"]
    value = float(H[:, to].mean() - S[:, to].mean())

    def stat(i: np.ndarray, rng: np.random.Generator) -> float:
        i = i[to[i]]
        return stats.seed_mean(H, i, rng) - stats.seed_mean(S, i, rng) if i.size else float("nan")

    draws = stats.cluster_bootstrap(stat, stats.Clusters.of(s.doc_ids), n_boot, seed)
    ci, method = stats.interval(draws, stats.newcombe_diff(int(H[:, to].sum()), H[:, to].size, int(S[:, to].sum()), S[:, to].size))
    placebo = _pairs_gap(_baseline_inheritance(s))
    strata = stats.by_stratum(s.exposures, lambda m: H[:, m & to].mean() - S[:, m & to].mean() if (m & to).any() else float("nan"))
    return row("F8", claim, rule, value, ci, method, placebo, "largest gap between two baseline seeds' inheritance (leave-one-seed-out)",
               strata, None, stats.verdict(value, ci, +1, placebo), positives=int(to.sum()))


FINDINGS: dict[str, Callable[..., dict]] = {"F1": f1, "F2": f2, "F3": f3, "F4": f4, "F5": f5, "F6": f6, "F7": f7, "F8": f8}


def all_findings(s: Study, n_boot: int, seed: int, classifier: dict | None = None, margin: float = 0.05,
                 min_positives: int = 25) -> list[dict]:
    out = []
    for fn in FINDINGS.values():
        r = fn(s, n_boot=n_boot, seed=seed, classifier=classifier, margin=margin)
        if r["value"] is not None and r["positives"] is not None and r["positives"] < min_positives:
            r["why"] += f"; rests on {r['positives']} < {min_positives} positives"
        out.append(r)
    return out
