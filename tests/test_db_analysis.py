"""DuckDB store, views, analyses and classifier on hand-built tables with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from kdmem import analysis, classifier, db, findings, stats
from kdmem import config as kconfig
from kdmem.errors import KdmemError

from .conftest import MICRO

N = 40
IDS = [f"s{i:03d}" for i in range(N)]
# Known sets: teacher {0..19}, baseline seed0 {10..29}, seed1 {10..25}, student {10..14, 18, 30}, hard {10..13, 0, 1, 2}
SETS = {
    "teacher-s0": set(range(20)),
    "baseline-s0": set(range(10, 30)),
    "baseline-s1": set(range(10, 26)),
    "student-T2.0-s0": {10, 11, 12, 13, 14, 18, 30},
    "hard_student-s0": {10, 11, 12, 13, 0, 1, 2},
    "student-T2.0-s0-cleaned": {11, 35},
}
ROLE = {"teacher-s0": ("teacher", 0, None, "full"), "baseline-s0": ("baseline", 0, None, "full"), "baseline-s1": ("baseline", 1, None, "full"),
        "student-T2.0-s0": ("student", 0, 2.0, "full"), "hard_student-s0": ("hard_student", 0, None, "full"),
        "student-T2.0-s0-cleaned": ("student", 0, 2.0, "cleaned")}


def make_world(root: Path) -> dict:
    """Every file under flat, meaningless names: the database must learn family, dataset, split and model
    from the files' own columns and metrics.json, never from where they lie."""
    base = root / "results" / "anywhere"
    base.mkdir(parents=True)
    samples = pl.DataFrame({"family": "fam", "dataset": "ds", "split": "train", "sample_id": IDS, "doc_id": [f"d{i % 5}" for i in range(N)],
                            "offset": list(range(N)), "input_ids": [[1, 2, 3]] * N, "text": [f"text {i}" for i in range(N)],
                            "n_exposures": [1 if i % 2 else 8 for i in range(N)], "zlib_bytes": [30 + i for i in range(N)],
                            "zlib_ratio": [(30 + i) / 100 for i in range(N)]},
                           schema_overrides={"offset": pl.Int32, "n_exposures": pl.Int32})
    samples.write_parquet(base / "a.parquet")
    samples.head(5).with_columns(pl.col("sample_id") + "v", split=pl.lit("val")).write_parquet(base / "b.parquet")
    files = {"samples": [str(base / "a.parquet"), str(base / "b.parquet")], "models": [], "scores": []}
    for k, (name, mem) in enumerate(SETS.items()):
        role, seed, temp, variant = ROLE[name]
        mdir = base / f"m{k}"
        mdir.mkdir(parents=True)
        (mdir / "metrics.json").write_text(json.dumps({"model": name, "family": "fam", "dataset": "ds", "role": role, "seed": seed,
                                                       "temperature": temp, "data_variant": variant, "val_loss": 3.0, "val_ppl": 20.0,
                                                       "n_params": 10}))
        files["models"].append(str(mdir / "metrics.json"))
        for split, ids in (("train", IDS), ("val", [i + "v" for i in IDS[:5]])):
            sc = pl.DataFrame({"model": name, "family": "fam", "dataset": "ds", "role": role, "seed": seed, "temperature": temp,
                               "data_variant": variant, "fingerprint": "x", "split": split, "sample_id": ids,
                               "exact": [split == "train" and i in mem for i in range(len(ids))],
                               "entropy": [1.0 + i / 100 for i in range(len(ids))], "suffix_logprob_sum": [-5.0] * len(ids),
                               "ppl": [np.exp(2.0 + (0.1 if role == "baseline" else 0.0))] * len(ids), "zlib_bytes": [30 + i for i in range(len(ids))],
                               "kl_to_teacher": [0.1] * len(ids), "n_exposures": [1] * len(ids),
                               "extract_logprob": [-0.01 if split == "train" and i in mem else -30.0 for i in range(len(ids))],
                               "extractable": [split == "train" and i in mem for i in range(len(ids))]},
                              schema_overrides={"temperature": pl.Float64, "seed": pl.Int64})
            f = base / f"m{k}-{split}-scores.parquet"
            sc.write_parquet(f)
            files["scores"].append(str(f))
    return files


@pytest.fixture
def built(tmp_path):
    files = make_world(tmp_path)
    out = tmp_path / "results" / "kdmem.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    return out, files


def test_views_against_hand_counts(built):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    inh = analysis.overlaps(con, "fam", "ds")
    assert inh["teacher"] == 20 and inh["baseline"] == 20 and inh["student"] == 7
    assert inh["teacher_and_baseline"] == 10  # 10..19
    assert inh["teacher_only"] == 10  # 0..9
    assert inh["student_in_teacher_and_baseline"] == 6  # 10,11,12,13,14,18
    assert inh["share_student_in_teacher_and_baseline"] == pytest.approx(6 / 7)
    assert inh["student_inherits_teacher_only"] == 0
    assert inh["hard_inherits_teacher_only"] == 3  # 0,1,2
    assert inh["teacher_and_baseline_not_student"] == 4  # 15,16,17,19
    # baseline in every seed: 10..25; student in none of those: 15..17, 19..25 -> 10
    assert inh["baseline_all_seeds_student_none"] == 10
    assert inh["teacher_coverage_of_baseline"] == pytest.approx(10 / 20)
    rem = analysis._one(con, "SELECT * FROM removal", [])
    assert rem["baseline_on_d"] == 20 and rem["student_on_d"] == 7 and rem["student_on_cleaned_d"] == 2 and rem["new_in_cleaned"] == 1
    rates = dict(con.execute("SELECT model, memorized FROM memorization_rates WHERE split = 'train'").fetchall())
    assert rates == {k: len(v) for k, v in SETS.items()}
    assert con.execute("SELECT sum(memorized) FROM memorization_rates WHERE split = 'val'").fetchone()[0] == 0
    extractable = dict(con.execute("SELECT model, extractable FROM memorization_rates WHERE split = 'train'").fetchall())
    assert extractable == {k: len(v) for k, v in SETS.items()}  # this world makes exactly the memorized samples extractable
    assert analysis.venn_regions(con, "fam", "ds") == {"T": 10, "TB": 4, "TBS": 6, "B": 10, "S": 1}
    # zlib_bytes and zlib_ratio come from the samples files, computed once in prepare
    assert con.execute("SELECT min(zlib_bytes), max(zlib_bytes), max(zlib_ratio) FROM samples WHERE split = 'train'").fetchone() == (30, 69, 0.69)


def test_rebuild_is_idempotent(built, tmp_path):
    out, files = built
    q = 'SELECT * FROM "{}" ORDER BY ALL'

    def dump(path):
        con = duckdb.connect(str(path), read_only=True)
        tabs = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        d = {t: con.execute(q.format(t)).fetchall() for t in tabs if t != "runs"}
        con.close()
        return d

    first = dump(out)
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    assert dump(out) == first
    assert not list(out.parent.glob(".kdmem.duckdb.*"))  # no temp file left behind


def test_corrupt_parquet_is_one_line_and_old_db_survives(built):
    out, files = built
    before = out.read_bytes()
    Path(files["scores"][0]).write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(KdmemError, match="corrupt parquet .*m0-train-scores.parquet"):
        db.build(out, **files)
    assert out.read_bytes() == before


def test_findings_on_known_sets(built):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    rows = {f["id"]: f for f in analysis.all_findings(con, "fam", "ds", None, 200, 0, min_positives=1)}
    assert rows["F2"]["value"] == pytest.approx((20 - 18) / 40)  # teacher 20 vs the baseline seed mean (20 + 16) / 2
    assert rows["F2"]["placebo"] == pytest.approx((20 - 16) / 40)  # the two baseline seeds differ by 4 samples
    assert rows["F2"]["verdict"] == "inconclusive"  # 2 samples of 40: the interval spans 0, and the seeds differ more
    assert rows["F3"]["value"] == pytest.approx(6 / 7) and rows["F3"]["ci_method"] == "clopper-pearson"
    assert rows["F3"]["ci"] == pytest.approx(stats.clopper_pearson(6, 7))
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


def test_clopper_pearson_and_newcombe_match_known_values():
    lo, hi = stats.clopper_pearson(0, 10)
    assert lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))  # the closed form for 0/n
    lo, hi = stats.clopper_pearson(10, 10)
    assert hi == 1 and lo == pytest.approx(0.025 ** (1 / 10))
    assert stats.clopper_pearson(5, 10) == pytest.approx((0.18708, 0.81292), abs=1e-5)  # R's binom.test(5, 10)
    lo, hi = stats.newcombe_diff(0, 50, 0, 50)
    assert lo < 0 < hi


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
    good = classifier.run(_synthetic(True), cfg)
    bad = classifier.run(_synthetic(False), cfg)
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
    res = classifier.run(_synthetic(False, n=1200, by_exposure=True), cfg)
    assert res["protocols"]["paper"]["all"]["auc"] > 0.85
    matched = res["protocols"]["exposure_matched"]["all"]
    assert matched["ci"][0] < 0.5 < matched["ci"][1] and abs(matched["auc"] - 0.5) < 0.1


def test_classifier_too_few_positives():
    cfg = kconfig.validate({**MICRO, "classifier": {"min_positives": 5}})
    df = _synthetic(True).with_columns(label=pl.Series([i < 3 for i in range(400)]))
    res = classifier.run(df, cfg)
    assert res["status"] == "too_few_positives" and "memorized 3 samples" in res["message"] and res["model"] is None


def test_rate_rows_cover_every_role_with_cis(built):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    rows = {r["role"]: r for r in analysis.rate_rows(con, "fam", "ds", 100, 0)}
    assert set(rows) == {"teacher", "baseline", "student", "hard_student", "student_cleaned"}
    assert rows["teacher"]["memorized"] == [20] and rows["teacher"]["rate"] == pytest.approx(0.5)
    assert rows["teacher"]["ci_method"] == "clopper-pearson" and rows["teacher"]["lo"] < 0.5 < rows["teacher"]["hi"]
    assert rows["baseline"]["seeds"] == 2 and rows["baseline"]["rate"] == pytest.approx(36 / 80)
    assert rows["baseline"]["memorized"] == [20, 16]
    assert rows["student"]["lo"] <= rows["student"]["rate"] <= rows["student"]["hi"]


def test_rebuild_under_an_open_reader_keeps_both_consistent(built):
    out, files = built
    reader = duckdb.connect(str(out), read_only=True)
    before = reader.execute("SELECT count(*) FROM scores").fetchone()[0]
    db.build(out, **files)  # builds aside and renames over the file the reader holds
    assert reader.execute("SELECT count(*) FROM scores").fetchone()[0] == before
    fresh = duckdb.connect(str(out), read_only=True)
    assert fresh.execute("SELECT count(*) FROM scores").fetchone()[0] == before
    reader.close()
    fresh.close()


@pytest.mark.parametrize("name", ["F1", "F2"])
def test_seed_mean_findings_lie_inside_their_ci(built, name):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    f = {r["id"]: r for r in analysis.all_findings(con, "fam", "ds", None, 400, 0)}[name]
    lo, hi = f["ci"]
    assert lo <= f["value"] <= hi, f


def test_soft_students_by_temperature_and_loss(tmp_path):
    """Two more soft students, T = 4 (memorizing samples 1, 10, 11) and a JSD student at T = 2 (2 and 10): each
    sweep keeps the students that differ from the primary in its own key alone, in order, and counts the
    memorized samples each shares with the primary student."""
    files = make_world(tmp_path)
    base = tmp_path / "results" / "anywhere"
    for name, t, loss, mem in (("student-T4.0-s0", 4.0, "forward_kl", (1, 10, 11)), ("student-T2.0-jsd-s0", 2.0, "jsd", (2, 10))):
        (base / name).mkdir()
        (base / name / "metrics.json").write_text(json.dumps({"model": name, "family": "fam", "dataset": "ds", "role": "student",
                                                              "seed": 0, "temperature": t, "loss": loss, "data_variant": "full", "val_loss": 2.5}))
        files["models"].append(str(base / name / "metrics.json"))
        one = pl.read_parquet(files["scores"][0]).with_columns(model=pl.lit(name), role=pl.lit("student"), temperature=pl.lit(t),
                                                               exact=pl.Series([i in mem for i in range(N)]))
        one.write_parquet(base / f"{name}-train.parquet")
        files["scores"].append(str(base / f"{name}-train.parquet"))
    out = tmp_path / "t.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    rows = analysis.soft_student_rows(duckdb.connect(str(out), read_only=True), "fam", "ds")
    got = [(r["temperature"], r["loss"], r["model"], r["memorized"], r["shared_with_primary"], r["val_loss"], r["mia_loss_auc"]) for r in rows]
    assert got == [(2.0, "forward_kl", "student-T2.0-s0", 7, 7, 3.0, None),
                   (2.0, "jsd", "student-T2.0-jsd-s0", 2, 1, 2.5, None),  # 10 is the primary's too
                   (4.0, "forward_kl", "student-T4.0-s0", 3, 2, 2.5, None)]  # 10 and 11
    assert [r["model"] for r in analysis.sweep_rows(rows, "temperature")] == ["student-T2.0-s0", "student-T4.0-s0"]
    assert [r["model"] for r in analysis.sweep_rows(rows, "loss")] == ["student-T2.0-s0", "student-T2.0-jsd-s0"]


def test_bases_are_scored_models_and_newly_memorized_subtracts_each_roles_own_base(tmp_path):
    """base-large reproduces sample 0, base-small samples 10 and 11: the teacher's newly memorized set loses 0, every
    small-model role loses 10 and 11 where it memorized them, and the bases themselves have no 'newly'."""
    files = make_world(tmp_path)
    base = tmp_path / "results" / "anywhere"
    for name, mem in (("base-large", {0}), ("base-small", {10, 11})):
        for split in ("train", "val"):
            ids = IDS if split == "train" else [i + "v" for i in IDS[:5]]
            one = pl.read_parquet(files["scores"][0 if split == "train" else 1]).with_columns(
                model=pl.lit(name), role=pl.lit("base"), seed=pl.lit(None, dtype=pl.Int64), temperature=pl.lit(None, dtype=pl.Float64),
                sample_id=pl.Series(ids), exact=pl.Series([split == "train" and i in mem for i in range(len(ids))]))
            one.write_parquet(base / f"{name}-{split}.parquet")
            files["scores"].append(str(base / f"{name}-{split}.parquet"))
    out = tmp_path / "b.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    con = duckdb.connect(str(out), read_only=True)
    got = {m: (int(k), None if nw is None else int(nw)) for m, k, nw in
           con.execute("SELECT model, memorized, newly_memorized FROM memorization_rates WHERE split = 'train'").fetchall()}
    assert got["teacher-s0"] == (20, 19) and got["baseline-s0"] == (20, 18) and got["student-T2.0-s0"] == (7, 5)
    assert got["hard_student-s0"] == (7, 5) and got["base-small"] == (2, None) and got["base-large"] == (1, None)
    assert con.execute("SELECT count(*) FROM models WHERE role = 'base'").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM utility WHERE model LIKE 'base-%'").fetchone()[0] == 0  # their val loss is the bases table's
    rows = {r["role"]: r for r in analysis.rate_rows(con, "fam", "ds", 50, 0)}
    assert rows["teacher"]["newly_memorized"] == [19] and rows["baseline"]["newly_memorized"] == [18, 14]
    assert rows["base_small"]["memorized"] == [2] and rows["base_small"]["newly_memorized"] is None
    # without scored bases, 'newly' is unknown (null), never 0
    plain = tmp_path / "p.duckdb"
    db.build(plain, **make_world(tmp_path / "again"))
    assert duckdb.connect(str(plain), read_only=True).execute(
        "SELECT count(newly_memorized) FROM memorization_rates").fetchone()[0] == 0


def test_exposure_response_points_and_e50():
    """10 %, 50 % and 90 % memorized at 1x, 8x and 64x lie on one logistic curve in log(exposures), whose
    midpoint, E50, is 8x. A role with no rising rate has no E50."""
    expo = np.asarray([1] * 100 + [8] * 100 + [64] * 100)
    m = np.zeros((1, 300), dtype=bool)
    m[0, :10] = m[0, 100:150] = m[0, 200:290] = True
    fit = analysis._logistic_e50(m, expo)
    assert fit["slope"] > 0 and fit["e50"] == pytest.approx(8.0, rel=1e-3)
    flat = np.zeros((1, 300), dtype=bool)
    flat[0, ::4] = True  # 25 % at every level
    assert analysis._logistic_e50(flat, expo)["e50"] is None


def test_exposure_response_on_the_store(built):
    out, _ = built
    con = duckdb.connect(str(out), read_only=True)
    curves = analysis.exposure_response(con, "fam", "ds", 50, 0)
    # make_world: odd samples seen once, even ones 8x; the teacher memorizes 0..19, ten of each
    pts = {p["n_exposures"]: (p["memorized"], p["n"]) for p in curves["teacher"]["points"]}
    assert pts == {1: (10, 20), 8: (10, 20)}
    base = {p["n_exposures"]: (p["memorized"], p["n"]) for p in curves["baseline"]["points"]}
    assert base == {1: (10 + 8, 40), 8: (10 + 8, 40)}  # both seeds pooled: 10..29 and 10..25


def test_f6_needs_the_exposure_matched_check():
    """A high paper-protocol AUC is reproduced only if the exposure-matched classifier also beats chance; where
    that check cannot run (no negatives at the positives' exposure levels) the verdict is inconclusive."""
    s = _study({"teacher": [[0]], "baseline": [[0]], "student": [[0]]}, [1] * 10, 10)
    paper_ok = {"status": "ok", "all": {"auc": 0.99, "ci": (0.97, 1.0)}}
    matched_ok = {"status": "ok", "all": {"auc": 0.9, "ci": (0.8, 0.97)}}
    matched_chance = {"status": "ok", "all": {"auc": 0.52, "ci": (0.4, 0.63)}}
    absent = {"status": "too_few_negatives", "message": "exposure_matched: 2 negatives at the positives' exposure levels"}
    for matched, want in ((matched_ok, "reproduced"), (matched_chance, "inconclusive"), (absent, "inconclusive")):
        clf = {"status": "ok", "n_positives": 30, "placebo_auc": 0.5, "protocols": {"paper": paper_ok, "exposure_matched": matched}}
        assert findings.f6(s, n_boot=10, seed=0, classifier=clf)["verdict"] == want, matched


def test_power_counts_newly_memorized_samples_in_the_levels_exposure_does_not_decide():
    """Levels 1 (10 %), 4 (50 %, 40 % newly), 16 (100 %): 1 and 4 are transition levels, 16 is not. A sample the
    base already reproduces is not newly memorized; once-seen samples are counted apart too."""
    from kdmem.analysis import power_rows

    expo = np.array([1] * 10 + [4] * 10 + [16] * 10)
    t = np.zeros(30, dtype=bool)
    t[[0]] = True  # one once-seen sample
    t[10:15] = True  # half of level 4
    t[20:30] = True  # all of level 16
    base = np.zeros(30, dtype=bool)
    base[10] = True  # the base already reproduces one of level 4's
    s = findings.Study(doc_ids=np.asarray([f"d{i}" for i in range(30)]), exposures=expo,
                       mem={"teacher": t[None], "base_large": base[None]})
    (r,) = power_rows(s)
    assert r["transition_levels"] == [1, 4] and r["newly_in_transition"] == 1 + 4 and r["newly_memorized"] == 1 + 4 + 10
    assert r["once_seen_memorized"] == 1 and r["once_seen_newly"] == 1 and r["once_seen_n"] == 10
    # without the base the control is off: level 4 holds 5
    (r2,) = power_rows(findings.Study(doc_ids=s.doc_ids, exposures=expo, mem={"teacher": t[None]}))
    assert r2["newly_in_transition"] == 1 + 5 and not r2["base_scored"]
