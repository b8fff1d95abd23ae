"""kdmem.findings: F1-F8 and their verdicts on the hand-made store and on hand-made studies with known answers."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from kdmem import analysis, db, findings, stats

from .store import SETS, make_world


def test_findings_on_known_sets(built):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    rows = {f["id"]: f for f in analysis.all_findings(con, "fam", "ds", None, 200, 0, min_positives=1)}
    assert rows["F2"]["value"] == pytest.approx((20 - 18) / 40)  # teacher 20 vs the baseline seed mean (20 + 16) / 2
    assert rows["F2"]["placebo"] == pytest.approx((20 - 16) / 40)  # the two baseline seeds differ by 4 samples
    assert rows["F2"]["verdict"] == "inconclusive"  # 2 samples of 40: the interval spans 0, and the seeds differ more
    assert rows["F3"]["value"] == pytest.approx(6 / 7) and rows["F3"]["ci_method"] == "clustered bootstrap (documents, seeds)"
    assert rows["F3"]["ci"][0] <= 6 / 7 <= rows["F3"]["ci"][1]
    assert 0 < rows["F3"]["exposure_only"]["p"] <= 1 and rows["F3"]["exposure_only"]["permutations"] == 10000
    # teacher-only against every seed: 0..9 (seed 1's set lies inside seed 0's); the hard student has 0, 1, 2 of them
    assert rows["F8"]["value"] == pytest.approx(3 / 10 - 0 / 10)
    assert rows["F4"]["value"] == 0 and rows["F4"]["ci"][1] > 0  # 0 of 10, with an exact interval of positive width
    assert {k: rows[k]["positives"] for k in ("F3", "F4", "F8")} == {"F3": 7, "F4": 10, "F8": 10}
    for r in rows.values():
        if r["ci"] is not None and r["id"] != "F5":  # F5: this world gives every validation sample one loss, no spread to find
            lo, hi = r["ci"]
            assert hi > lo, r  # no interval of zero width on a finite sample, 0 / n and n / n included
    assert rows["F6"]["verdict"] == "inconclusive" and "not computed" in rows["F6"]["why"]
    assert rows["F7"]["verdict"] == "inconclusive" and "not computed" in rows["F7"]["why"]  # the classifier removed nothing here
    strict = {f["id"]: f for f in analysis.all_findings(con, "fam", "ds", None, 200, 0, min_positives=8)}
    assert strict["F3"]["why"].endswith("rests on 7 < 8 positives") and "rests on" not in strict["F4"]["why"]


def test_missing_role_is_reported_not_crashed(tmp_path):
    files = make_world(tmp_path)
    k = list(SETS).index("hard_student-s0")  # its files are m{k}/metrics.json and m{k}-{split}-scores.parquet
    files["models"] = [f for f in files["models"] if Path(f).parent.name != f"m{k}"]
    files["scores"] = [f for f in files["scores"] if not Path(f).name.startswith(f"m{k}-")]
    out = tmp_path / "x.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0"]})
    con = duckdb.connect(str(out), read_only=True)
    rows = {f["id"]: f for f in analysis.all_findings(con, "fam", "ds", None, 50, 0, min_positives=1)}
    assert rows["F8"]["verdict"] == "inconclusive" and "not computed" in rows["F8"]["why"]
    # baseline seed mean (20 + 16) / 2 = 18 of 40 against the student's 7: 11 apart, more than the seeds' 4
    assert rows["F1"]["value"] == pytest.approx((18 - 7) / 40)
    assert rows["F1"]["verdict"] == "reproduced"


def _study(mem: dict[str, list[list[int]]], exposures, n: int, removed=None) -> findings.Study:
    """A hand-made study: per role, per seed, the memorized sample indices."""
    arr = {r: np.asarray([[i in set(seed) for i in range(n)] for seed in seeds], dtype=bool) for r, seeds in mem.items()}
    return findings.Study(doc_ids=np.asarray([f"d{i % 20}" for i in range(n)]), exposures=np.asarray(exposures), mem=arr,
                          removed=None if removed is None else np.asarray([i in removed for i in range(n)]))


def test_verdict_inconclusive_when_the_seed_placebo_exceeds_the_role_difference():
    """The student memorizes 10 fewer samples than the baseline's seed mean, but two baseline seeds differ by 40: seed noise."""
    n = 400
    base = [list(range(0, 60)), list(range(0, 20))]  # seed mean 40, seeds 40 apart
    s = _study({"teacher": [list(range(80))], "baseline": base, "student": [list(range(30))]}, [1] * n, n)
    f1 = findings.f1(s, n_boot=300, seed=0)
    assert f1["value"] == pytest.approx((40 - 30) / n) and f1["placebo"] == pytest.approx(40 / n)
    assert f1["verdict"] == "inconclusive" and ("seed placebo" in f1["why"] or "contains 0" in f1["why"])
    # the same difference with two seeds that agree is reproduced
    agree = _study({"teacher": [list(range(80))], "baseline": [list(range(40)), list(range(40))], "student": [list(range(30))]},
                   [1] * n, n)
    f1a = findings.f1(agree, n_boot=300, seed=0)
    assert f1a["ci"][0] > 0 and f1a["verdict"] == "reproduced"
    # with the agreeing seeds' interval, only the placebo stands between the value and "reproduced"
    verdict, why = stats.verdict(f1["value"], f1a["ci"], +1, placebo=f1["placebo"])
    assert verdict == "inconclusive" and "seed placebo" in why


def test_verdict_inconclusive_when_exposure_alone_explains_the_overlap():
    """Every role memorizes exactly the 56x samples and nothing else: the student's set lies wholly in
    teacher ∩ baseline (share 1.0, the paper's direction), but membership given exposure is independent
    by construction, so exposure alone predicts the share and the verdict must not say reproduced."""
    n = 400
    expo = [56 if i < 40 else 1 for i in range(n)]
    top = list(range(40))
    s = _study({"teacher": [top], "baseline": [top, top], "student": [top]}, expo, n)
    f3 = findings.f3(s, n_boot=200, seed=0)
    assert f3["value"] == 1.0 and f3["ci"][0] > 0.9
    assert f3["exposure_only"]["expected"] == pytest.approx(1.0)
    assert f3["verdict"] == "inconclusive" and "exposure" in f3["why"]
    # content, not exposure: within one exposure level the student picks the samples teacher and baseline share
    mixed = _study({"teacher": [list(range(0, 100))], "baseline": [list(range(0, 60)), list(range(0, 60))], "student": [list(range(0, 50))]},
                   [1] * n, n)
    f3m = findings.f3(mixed, n_boot=200, seed=0)
    assert f3m["value"] == 1.0 and f3m["exposure_only"]["expected"] == pytest.approx(60 / n)
    assert f3m["verdict"] == "reproduced"


def test_f7_compares_the_cleaned_student_on_the_samples_it_trained_on():
    """The removal takes out 10 samples the student memorized; the cleaned student memorizes 2 of the 10 retained
    ones the student memorized. A removed sample must not count as forgotten."""
    n = 400
    expo = [1] * n
    s = _study({"teacher": [list(range(40))], "baseline": [list(range(30)), list(range(30))], "student": [list(range(20))],
                "student_cleaned": [[10, 11]]}, expo, n, removed=set(range(10)))
    f7 = findings.f7(s, n_boot=200, seed=0)
    assert f7["value"] == pytest.approx(1 - 2 / 10)  # not 1 - 2 / 20
    assert f7["positives"] == 10
    same = _study({"teacher": [list(range(40))], "baseline": [list(range(30)), list(range(30))], "student": [list(range(20))],
                   "student_cleaned": [list(range(10, 20))]}, expo, n, removed=set(range(10)))
    f7s = findings.f7(same, n_boot=200, seed=0)
    assert f7s["value"] == pytest.approx(0.0) and f7s["verdict"] != "reproduced"


def test_teacher_only_is_defined_against_every_baseline_seed():
    """Seed 1 memorizes 5 of the teacher's samples that seed 0 does not: they are not teacher-only."""
    n = 100
    s = _study({"teacher": [list(range(20))], "baseline": [list(range(10)), list(range(15))], "student": [[]],
                "hard_student": [[12, 13, 17]]}, [1] * n, n)
    assert s.teacher_only().sum() == 5  # 15..19
    f8 = findings.f8(s, n_boot=100, seed=0)
    assert f8["value"] == pytest.approx(1 / 5)  # 17 only; 12 and 13 are seed 1's


@pytest.mark.parametrize("name", ["F1", "F2"])
def test_seed_mean_findings_lie_inside_their_ci(built, name):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    f = {r["id"]: r for r in analysis.all_findings(con, "fam", "ds", None, 400, 0)}[name]
    lo, hi = f["ci"]
    assert lo <= f["value"] <= hi, f


def _content_study(effect: float, seed: int = 0) -> findings.Study:
    """600 samples on three exposure levels; the student (3 seeds) memorizes by exposure and, with `effect`, by a
    content feature (low zlib_bytes); the other features are noise."""
    rng = np.random.default_rng(seed)
    n = 600
    expo = rng.choice([1, 4, 16], n)
    feats = {f: rng.normal(size=n) for f in findings.PAPER_FEATURES}
    p = 1 / (1 + np.exp(-(2.0 * np.log(expo) - 3.0 - effect * feats["zlib_bytes"])))
    M = rng.random((3, n)) < p
    mem = {"teacher": M[:1] | M[1:2], "baseline": M[1:], "student": M}
    return findings.Study(doc_ids=np.asarray([f"d{i % 60}" for i in range(n)]), exposures=expo, mem=mem, features=feats, n_perm=400)


def test_f6_reads_the_content_test_not_the_trial_auc():
    """The paper protocol's AUC is high in both worlds (exposure alone separates); only the world with a planted content
    effect within exposure levels is reproduced, and a trial spread is never called an interval."""
    clf = {"status": "ok", "n_positives": 30, "placebo_auc": 0.5,
           "protocols": {"paper": {"status": "ok", "all": {"auc": 0.99, "ci": (0.97, 1.0)}}, "exposure_matched": {"status": "skipped"}}}
    planted = findings.f6(_content_study(1.5), n_boot=50, seed=0, classifier=clf)
    assert planted["verdict"] == "reproduced", planted["why"]
    assert planted["content_test"]["tests"]["joint"]["p_perm"] < 0.05
    zlib = next(r for r in planted["content_test"]["features"] if r["feature"] == "zlib_bytes")
    assert zlib["auc"] < 0.4 and zlib["auc_ci"][1] < 0.5  # low zlib goes with memorized
    none = findings.f6(_content_study(0.0), n_boot=50, seed=0, classifier=clf)
    assert none["verdict"] == "inconclusive" and "exposure explains" in none["why"], none["why"]
    assert "not a confidence interval" in planted["ci_method"]


def test_f8_is_judged_against_the_roles_exposure_curves():
    """The hard student's curve rises earlier than the soft one's: it inherits more of the teacher-only set only because
    those samples are the most exposed; exposure explains it. A hard student that takes exactly the teacher-only samples
    within each level is beyond exposure."""
    n = 600
    rng = np.random.default_rng(1)
    expo = np.repeat([1, 8, 32], 200)
    teacher = (expo >= 8) & (rng.random(n) < 0.6)
    base = np.vstack([(expo == 32) & (rng.random(n) < 0.5)] * 2) & teacher
    to = teacher & ~base.any(0)
    hard_curve = np.vstack([(expo >= 8) & (rng.random(n) < 0.5) for _ in range(3)])
    soft_curve = np.vstack([(expo == 32) & (rng.random(n) < 0.3) for _ in range(3)])
    mk = lambda h: findings.Study(doc_ids=np.asarray([f"d{i % 50}" for i in range(n)]), exposures=expo,  # noqa: E731
                                  mem={"teacher": teacher[None], "baseline": base, "student": soft_curve, "hard_student": h}, n_perm=1000)
    f8 = findings.f8(mk(hard_curve), n_boot=100, seed=0)
    assert f8["value"] > 0 and f8["exposure_only"]["expected"] > 0
    assert f8["verdict"] != "reproduced" and abs(f8["exposure_only"]["excess"]) < 0.1, f8["why"]
    taking = np.vstack([to & (rng.random(n) < 0.9) for _ in range(3)]) | hard_curve & ~teacher
    f8t = findings.f8(mk(taking), n_boot=100, seed=0)
    assert f8t["verdict"] == "reproduced" and f8t["exposure_only"]["p"] < 0.01, f8t["why"]


def test_shares_count_distinct_samples_not_seed_pairs():
    """Three student seeds memorizing the same 10 samples are 10 samples: the exact fallback interval is CP(10, 10),
    not CP(30, 30)."""
    n = 200
    s = _study({"teacher": [list(range(20))], "baseline": [list(range(20)), list(range(20))],
                "student": [list(range(10))] * 3}, [1] * n, n)
    f3 = findings.f3(s, n_boot=100, seed=0)
    assert f3["value"] == 1.0 and f3["positives"] == 10
    assert f3["ci"] == pytest.approx(stats.clopper_pearson(10, 10)) and f3["ci"][0] < stats.clopper_pearson(30, 30)[0]
    assert stats.sample_ci(s.mem["student"]) == pytest.approx(stats.clopper_pearson(10, n))


def test_teacher_seeds_give_f2_and_inheritance_their_own_placebo():
    n = 300
    s = _study({"teacher": [list(range(0, 40)), list(range(20, 60)), list(range(20, 50)) + list(range(100, 120))],
                "baseline": [list(range(20, 30)), list(range(20, 30))], "student": [list(range(0, 15)), list(range(0, 10))]}, [1] * n, n)
    f2 = findings.f2(s, n_boot=50, seed=0)
    assert f2["placebo"] == pytest.approx(10 / n) and "teacher" in f2["placebo_what"]  # teacher seeds of 40, 40, 50 samples
    tp = findings.f4(s, n_boot=50, seed=0)["teacher_placebo"]
    assert tp["n_own"] == 20 and tp["n_other"] == 10 + 20  # teacher 0's 0..19; the others' 50..59 and 100..119
    assert tp["own"] == pytest.approx((15 + 10) / 2 / 20) and tp["other"] == 0.0 and tp["diff"] > 0
