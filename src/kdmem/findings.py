"""The paper's claims F1-F8 (docs/protocol.md "Findings"), each measured the way a referee would ask:
a value, an interval that means what it says, a seed placebo, the value within exposure strata, and a
verdict among reproduced / not reproduced / inconclusive (kdmem.stats.verdict).

Definitions that differ from a naive reading, and why:
- The baseline is every baseline seed, not the first: its rate is the seed mean, "teacher ∩ baseline"
  is the teacher's set memorized by *any* baseline seed, and "teacher-only" is the teacher's set memorized
  by *no* baseline seed. Against one seed, samples another seed memorizes count as teacher-only.
- A student or hard student with several seeds enters with every seed (rates: the seed mean; shares:
  counts pooled over seeds).
- The teacher every student distils from is the first teacher seed (row 0); further teacher seeds give F2 a
  placebo of its own and inheritance its placebo: a student should take more of its own teacher's samples
  (memorized by teacher 0 alone, no baseline) than of another teacher seed's.
- Proportions count distinct samples: a sample memorized by k of a role's s seeds weighs k / s (stats.sample_ci).
- Seed placebo: the same statistic between two seeds of one role (the largest such gap). A role
  difference no larger than it is seed noise.
- Exposure: the roles are scored on the same samples, so a rate difference cannot be confounded by
  exposure, but an overlap can: two sets that both hold the most-seen samples overlap whatever the
  samples are. F3, F4 and F8 are therefore tested against a permutation null within exposure levels
  (kdmem.nulls.set_null): reproduced only where the excess over that null is significant in the paper's
  direction. F6's verdict reads the content test on every sample of the student's transition levels
  (kdmem.nulls.content_test); F7 is compared with a removal of as many samples chosen by exposure alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from kdmem import nulls, paper, stats
from kdmem.stats import INCONCLUSIVE
from kdmem.vocab import Label


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
    # per-sample features of D for the content test (log teacher / baseline / base ppl, KL, zlib, near-copy n-grams)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    n_perm: int = 10000  # draws of each exposure null

    @property
    def n(self) -> int:
        return len(self.exposures)

    def has(self, role: str) -> bool:
        return role in self.mem and self.mem[role].shape[0] > 0

    def any_baseline(self, exclude: int | None = None) -> np.ndarray:
        b = self.mem[Label.BASELINE]
        keep = [i for i in range(b.shape[0]) if i != exclude]
        return b[keep].any(0) if keep else np.zeros(self.n, dtype=bool)

    def teacher_only(self, exclude: int | None = None) -> np.ndarray:
        return self.mem[Label.TEACHER][0] & ~self.any_baseline(exclude)

    def teacher_and_baseline(self) -> np.ndarray:
        return self.mem[Label.TEACHER][0] & self.any_baseline()

    def own_of_teacher(self, j: int) -> np.ndarray:
        """Samples teacher seed j memorizes and no other teacher seed and no baseline seed does: that teacher's own."""
        t = self.mem[Label.TEACHER]
        others = np.delete(t, j, axis=0).any(0) if t.shape[0] > 1 else np.zeros(self.n, dtype=bool)
        return t[j] & ~others & ~self.any_baseline()

    @property
    def clusters(self) -> stats.Clusters:
        return stats.Clusters.of(self.doc_ids)


def row(fid: str, claim: str, rule: str, value=None, ci=None, ci_method: str = "", placebo=None, placebo_what: str = "",
        strata=None, exposure_only=None, verdict: tuple[str, str] = (INCONCLUSIVE, "not measurable"), positives: int | None = None,
        **extra) -> dict:
    """One finding. exposure_only: the exposure null (kdmem.nulls.set_null: observed, expected, excess, excess_ci, p);
    extra: a finding's own detail (F6's content test, F4/F8's teacher-seed placebo)."""
    return {"id": fid, "claim": claim, "value": value, "ci": ci, "ci_method": ci_method, "placebo": placebo,
            "placebo_what": placebo_what, "strata": strata or {}, "exposure_only": exposure_only,
            "verdict": verdict[0], "why": verdict[1], "rule": rule, "paper": paper.FINDINGS[fid], "positives": positives, **extra}


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
    # exact fallback over distinct samples: a sample weighs the share of seeds that memorize it
    ci, method = stats.interval(draws, stats.newcombe_diff(float(A.mean(0).sum()), s.n, float(B.mean(0).sum()), s.n))
    # the placebo of a role comparison: two seeds of the same role; the teacher's own where it has several
    own = a if a == Label.TEACHER and s.mem[a].shape[0] > 1 else Label.BASELINE
    placebo = _pairs_gap([float(x.mean()) for x in s.mem[own]])
    strata = stats.by_stratum(s.exposures, lambda m: A[:, m].mean() - B[:, m].mean())
    return row(fid, claim, rule, value, ci, method, placebo, f"largest rate gap between two {own} seeds", strata,
               verdict=stats.verdict(value, ci, +1, placebo), positives=int(min(A.sum(1).mean(), B.sum(1).mean())))


def f1(s: Study, n_boot: int, seed: int, **_) -> dict:
    return _rate_diff(s, Label.BASELINE, Label.STUDENT, "F1", "the student memorizes less than the baseline (rate: baseline − student)", n_boot, seed)


def f2(s: Study, n_boot: int, seed: int, **_) -> dict:
    return _rate_diff(s, Label.TEACHER, Label.BASELINE, "F2", "the teacher memorizes more than the baseline (rate: teacher − baseline)", n_boot, seed)


def _seed_share(rows: np.ndarray, i: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Per sample i, the share of the role's seeds (resampled with rng) that memorize it."""
    pick = np.arange(rows.shape[0]) if rng is None else rng.integers(0, rows.shape[0], rows.shape[0])
    return rows[pick][:, i].mean(0)


def _null(s: Study, roles: tuple[str, ...], label: np.ndarray, stat, direction: int, n_boot: int, seed: int) -> dict:
    """kdmem.nulls.set_null over the roles' per-sample seed shares and a fixed set `label` of D's samples."""
    return nulls.set_null(lambda i, rng: np.column_stack([_seed_share(s.mem[r], i, rng) for r in roles]), lambda i: label[i],
                          stat, s.exposures, s.clusters, direction, s.n_perm, n_boot, seed)


def _share_in(t_sum, w, lab) -> float:
    """Share of a role's memorized mass (seed shares) that lies in the labelled set."""
    return float(t_sum[0] / w[:, 0].sum()) if w[:, 0].sum() else float("nan")


def _share_of(t_sum, w, lab) -> float:
    """Share of the labelled set that a role memorizes (seed shares)."""
    return float(t_sum[0] / lab.sum()) if lab.sum() else float("nan")


def _diff_of(t_sum, w, lab) -> float:
    """Share of the labelled set role 0 memorizes minus role 1's."""
    return float((t_sum[0] - t_sum[1]) / lab.sum()) if lab.sum() else float("nan")


def f3(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "the student's memorized samples lie in teacher ∩ baseline (share; a sample weighs its share of student seeds)"
    rule = (f"share > {paper.F3_LOWEST_SHARE:g} (the paper's lowest), and above what exposure alone gives: the excess over the "
            "within-level permutation null significant (p < 0.05, interval above 0)")
    if not all(s.has(r) for r in (Label.TEACHER, Label.BASELINE, Label.STUDENT)):
        return missing("F3", claim, rule, "needs teacher, baseline and student")
    tb = s.teacher_and_baseline()
    S = s.mem[Label.STUDENT]
    distinct = S.any(0)
    if not distinct.any():
        return row("F3", claim, rule, verdict=(INCONCLUSIVE, "the student memorized no sample"), positives=0)
    w = S.mean(0)
    value = float((w * tb).sum() / w.sum())
    def stat(i: np.ndarray, rng: np.random.Generator) -> float:
        wi = _seed_share(S, i, rng)
        return float((wi * tb[i]).sum() / wi.sum()) if wi.sum() else float("nan")

    draws = stats.cluster_bootstrap(stat, s.clusters, n_boot, seed)
    ci, method = stats.interval(draws, stats.clopper_pearson(int((distinct & tb).sum()), int(distinct.sum())))
    # placebo: how much of one baseline seed's set lies in teacher ∩ the other seeds
    loo = [float((s.mem[Label.BASELINE][j] & s.mem[Label.TEACHER][0] & s.any_baseline(j)).sum() / max(1, s.mem[Label.BASELINE][j].sum()))
           for j in range(s.mem[Label.BASELINE].shape[0])] if s.mem[Label.BASELINE].shape[0] > 1 else []
    null = _null(s, (Label.STUDENT,), tb, _share_in, +1, n_boot, seed)
    strata = stats.by_stratum(s.exposures, lambda m: (w[m] * tb[m]).sum() / w[m].sum() if w[m].sum() else float("nan"))
    return row("F3", claim, rule, value, ci, method, float(np.mean(loo)) if loo else None,
               "share of one baseline seed's set in teacher ∩ the other seeds (mean over seeds)", strata,
               null, nulls.null_verdict(null, +1, ci, paper.F3_LOWEST_SHARE), positives=int(distinct.sum()))


def f4(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "the student inherits little of the teacher-only set (share inherited; a sample weighs its share of student seeds)"
    rule = (f"share < {paper.F4_HIGHEST_SHARE:g} (the paper's highest), and below what exposure alone gives: the deficit under the "
            "within-level permutation null significant (p < 0.05, interval below 0)")
    if not all(s.has(r) for r in (Label.TEACHER, Label.BASELINE, Label.STUDENT)):
        return missing("F4", claim, rule, "needs teacher, baseline and student")
    to = s.teacher_only()
    if not to.any():
        return row("F4", claim, rule, verdict=(INCONCLUSIVE, "the teacher-only set is empty"), positives=0)
    S = s.mem[Label.STUDENT]
    value = float(S.mean(0)[to].mean())

    def stat(i: np.ndarray, rng: np.random.Generator) -> float:
        i = i[to[i]]
        return float(_seed_share(S, i, rng).mean()) if i.size else float("nan")

    draws = stats.cluster_bootstrap(stat, s.clusters, n_boot, seed)
    ci, method = stats.interval(draws, stats.clopper_pearson(int(S.any(0)[to].sum()), int(to.sum())))
    loo = _baseline_inheritance(s)
    null = _null(s, (Label.STUDENT,), to, _share_of, -1, n_boot, seed)
    strata = stats.by_stratum(s.exposures, lambda m: S[:, m & to].mean() if (m & to).any() else float("nan"))
    return row("F4", claim, rule, value, ci, method, float(np.mean(loo)) if loo else None,
               "share of the teacher-only set (against the other seeds) a held-out baseline seed memorizes", strata,
               null, nulls.null_verdict(null, -1, ci, paper.F4_HIGHEST_SHARE), positives=int(to.sum()),
               teacher_placebo=teacher_placebo(s, (Label.STUDENT,), n_boot, seed))


def teacher_placebo(s: Study, roles: tuple[str, ...], n_boot: int, seed: int) -> dict | None:
    """Inheritance's placebo: the share of teacher 0's own samples the role(s) memorize against the share of the other
    teacher seeds' own samples (the students never saw those teachers). For two roles, the difference role 0 - role 1.
    A student that takes its teacher's private memorization shows own > other beyond the interval."""
    if s.mem[Label.TEACHER].shape[0] < 2 or not all(s.has(r) for r in roles):
        return None
    own = s.own_of_teacher(0)
    other = np.zeros(s.n, dtype=bool)
    for j in range(1, s.mem[Label.TEACHER].shape[0]):
        other |= s.own_of_teacher(j)

    def share(mask: np.ndarray, i: np.ndarray, rng) -> float:
        i = i[mask[i]]
        if not i.size:
            return float("nan")
        v = [_seed_share(s.mem[r], i, rng).mean() for r in roles]
        return float(v[0] - v[1]) if len(v) > 1 else float(v[0])

    every = np.arange(s.n)
    diff = lambda i, rng: share(own, i, rng) - share(other, i, rng)  # noqa: E731 - one line, used twice
    return {"own": share(own, every, None), "other": share(other, every, None), "diff": diff(every, None),
            "diff_ci": stats.percentile(stats.cluster_bootstrap(diff, s.clusters, n_boot, seed)),
            "n_own": int(own.sum()), "n_other": int(other.sum()), "teacher_seeds": int(s.mem[Label.TEACHER].shape[0])}


def _baseline_inheritance(s: Study) -> list[float]:
    """Per baseline seed j: the share of teacher-only-against-the-other-seeds that seed j memorizes."""
    b = s.mem[Label.BASELINE]
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
    split = "heldout" if s.val.get("heldout", {}).get(Label.STUDENT) else "val"
    vb, vs = s.val.get(split, {}).get(Label.BASELINE), s.val.get(split, {}).get(Label.STUDENT)
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
    if split == "heldout" and s.val.get("val", {}).get(Label.STUDENT) and s.val["val"].get(Label.BASELINE):
        other = {"window validation": float(np.mean(s.val["val"][Label.BASELINE]) - np.mean(s.val["val"][Label.STUDENT]))}
    return row("F5", claim, rule, value, ci, method, placebo, "largest validation-loss gap between two baseline seeds", other,
               verdict=stats.verdict(value, ci, +1, placebo, threshold=-margin), positives=B.shape[1])


PAPER_FEATURES = ("log_teacher_ppl", "log_baseline_ppl", "kl_teacher_baseline", "zlib_bytes")  # the classifier's four


def f6(s: Study, n_boot: int, seed: int, classifier: dict | None = None, **_) -> dict:
    claim = ("memorization is predictable before distillation (headline: the paper protocol's mean ROC-AUC; "
             "interval: the spread of trial AUCs, 2.5–97.5 %, not a confidence interval)")
    rule = (f"AUC > {paper.F6_AUC:g}, and content predicts within exposure levels: the joint likelihood-ratio test of the four "
            "features over level fixed effects, on every sample of the student's transition levels, permutation p < 0.05")
    c = classifier or {}
    if c.get("status") != "ok":
        return missing("F6", claim, rule, c.get("message", "no classifier output"))
    paper_p = c["protocols"]["paper"]
    auc, spread = paper_p["all"]["auc"], tuple(paper_p["all"]["ci"])
    content = None
    if s.has(Label.STUDENT) and all(f in s.features for f in PAPER_FEATURES):
        content = nulls.content_test(s.features, list(PAPER_FEATURES), s.mem[Label.STUDENT], s.exposures, s.clusters, s.n_perm, n_boot, seed)
    if auc <= paper.F6_AUC:
        v = (stats.NOT_REPRODUCED if spread[1] < paper.F6_AUC else INCONCLUSIVE, f"the paper protocol's AUC {auc:.4g} is not above {paper.F6_AUC:g}")
    elif content is None or content["status"] != "ok":
        v = (INCONCLUSIVE, "the content test could not run (" + (content or {}).get("message", "no features") +
             "), so exposure alone may explain the AUC")
    else:
        t = content["tests"]["joint"]
        where = f"levels {content['levels']}, {content['n_samples']} samples, LR {t['lr']:.3g} on {t['df']} df, permutation p = {t['p_perm']:.3g}"
        v = (stats.REPRODUCED, f"content predicts within exposure levels ({where})") if t["p_perm"] < 0.05 else \
            (INCONCLUSIVE, f"exposure explains the AUC: no content effect within levels ({where})")
    matched = c["protocols"].get("exposure_matched", {})
    m_all = matched.get("all") if matched.get("status") == "ok" else None
    strata = {"exposure_matched_auc": m_all["auc"], "exposure_matched_spread": m_all["ci"]} if m_all else {}
    return row("F6", claim, rule, auc, spread, "spread of trial AUCs (not a confidence interval)", c.get("placebo_auc"),
               "mean AUC with shuffled labels (permutation placebo)", strata, None, v, positives=c.get("n_positives"), content_test=content)


def f7(s: Study, n_boot: int, seed: int, **_) -> dict:
    claim = "removing the predicted-memorized samples cuts the student's memorization (1 − cleaned student / student, on the samples both trained on)"
    rule = f"reduction > {paper.F7_REDUCTION:g}, beyond the baseline seed placebo and a removal by exposure alone"
    if not (s.has(Label.STUDENT) and s.has(Label.STUDENT_CLEANED)) or s.removed is None:
        return missing("F7", claim, rule, "no removal experiment in this run")
    kept = ~s.removed
    if kept.all():
        return missing("F7", claim, rule, "the classifier removed no sample, so the cleaned D equals D")
    S, C = s.mem[Label.STUDENT], s.mem[Label.STUDENT_CLEANED]
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
    k_c, k_sw = float(C[:, kept].mean(0).sum()), float(S[:, kept].mean(0).sum())  # distinct samples, seed-weighted
    lo, hi = stats.clopper_pearson(min(k_c, k_sw), max(1, round(k_sw)))
    ci, method = stats.interval(draws, (1 - hi, 1 - lo))
    b = s.mem[Label.BASELINE]
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
    claim = "hard KD inherits more of the teacher-only set than soft KD (share inherited: hard − soft; samples weigh their seed shares)"
    rule = ("difference above what the two roles' exposure curves give on the same samples: the excess over the within-level "
            "permutation null significant (p < 0.05, interval above 0)")
    if not all(s.has(r) for r in (Label.TEACHER, Label.BASELINE, Label.STUDENT, Label.HARD_STUDENT)):
        return missing("F8", claim, rule, "needs teacher, baseline, student and hard student")
    to = s.teacher_only()
    if not to.any():
        return row("F8", claim, rule, verdict=(INCONCLUSIVE, "the teacher-only set is empty"), positives=0)
    H, S = s.mem[Label.HARD_STUDENT], s.mem[Label.STUDENT]
    value = float(H.mean(0)[to].mean() - S.mean(0)[to].mean())

    def stat(i: np.ndarray, rng: np.random.Generator) -> float:
        i = i[to[i]]
        return float(_seed_share(H, i, rng).mean() - _seed_share(S, i, rng).mean()) if i.size else float("nan")

    draws = stats.cluster_bootstrap(stat, s.clusters, n_boot, seed)
    hw, sw = H.mean(0)[to].sum(), S.mean(0)[to].sum()
    ci, method = stats.interval(draws, stats.newcombe_diff(float(hw), int(to.sum()), float(sw), int(to.sum())))
    placebo = _pairs_gap(_baseline_inheritance(s))
    null = _null(s, (Label.HARD_STUDENT, Label.STUDENT), to, _diff_of, +1, n_boot, seed)
    strata = stats.by_stratum(s.exposures, lambda m: H[:, m & to].mean() - S[:, m & to].mean() if (m & to).any() else float("nan"))
    return row("F8", claim, rule, value, ci, method, placebo, "largest gap between two baseline seeds' inheritance (leave-one-seed-out)",
               strata, null, nulls.null_verdict(null, +1), positives=int(to.sum()),
               teacher_placebo=teacher_placebo(s, (Label.HARD_STUDENT, Label.STUDENT), n_boot, seed))


def overlap_nulls(s: Study, n_boot: int, seed: int) -> list[dict]:
    """Every overlap share the report shows, against the within-level permutation null (two-sided: the report calls
    none of these a finding, so neither direction is the paper's): observed, expected under exposure, excess, p."""
    if not all(s.has(r) for r in (Label.TEACHER, Label.BASELINE)):
        return []
    tb, to = s.teacher_and_baseline(), s.teacher_only()
    cases = [(Label.STUDENT, tb, "share of the student's set in teacher ∩ baseline (F3)"),
             (Label.HARD_STUDENT, tb, "share of the hard student's set in teacher ∩ baseline"),
             (Label.STUDENT, to, "share of the teacher-only set the student inherits (F4)"),
             (Label.HARD_STUDENT, to, "share of the teacher-only set the hard student inherits")]
    if s.has(Label.HARD_STUDENT) and s.has(Label.STUDENT):
        cases.append((Label.STUDENT, s.mem[Label.HARD_STUDENT].any(0), "share of the student's set the hard student also memorizes (any seed)"))
    out = []
    for role, label, what in cases:
        if not s.has(role) or not label.any():
            continue
        stat = _share_of if label is to else _share_in
        n = _null(s, (role,), label, stat, +1, n_boot, seed)
        out.append({"quantity": what, **n})
    return out


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
