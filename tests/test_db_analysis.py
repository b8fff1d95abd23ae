"""DuckDB store, views, analyses and classifier on hand-built tables with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from kdmem import analysis, classifier, db
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
                            "n_exposures": [1 if i % 2 else 8 for i in range(N)]},
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
                               "ppl": [np.exp(2.0 + (0.1 if role == "baseline" else 0.0))] * len(ids), "zlib": [30 + i for i in range(len(ids))],
                               "kl_to_teacher": [0.1] * len(ids), "n_exposures": [1] * len(ids)},
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
    assert analysis.venn_regions(con, "fam", "ds") == {"T": 10, "TB": 4, "TBS": 6, "B": 10, "S": 1}
    # samples got their zlib from the scores
    assert con.execute("SELECT min(zlib), max(zlib) FROM samples WHERE split = 'train'").fetchone() == (30, 69)


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
    clf = {"status": "ok", "auc_mean": 0.95, "auc_std": 0.01, "n_predicted": 5, "n_positives": 7, "trial_aucs": [0.9, 0.93, 0.95, 0.97, 1.0]}
    rows = {f["id"]: f for f in analysis.findings(con, "fam", "ds", clf, 200, 0, min_positives=1)}
    assert rows["F6"]["verdict"] == "reproduced"
    assert rows["F6"]["ci"] == pytest.approx((np.percentile(clf["trial_aucs"], 2.5), np.percentile(clf["trial_aucs"], 97.5)))
    assert rows["F2"]["value"] == pytest.approx((20 - 18) / 40)  # teacher 20 vs the baseline seed mean (20 + 16) / 2
    assert rows["F2"]["verdict"] == "not reproduced"  # 2 samples of 40: the CI spans 0
    assert rows["F3"]["value"] == pytest.approx(6 / 7)
    assert rows["F8"]["value"] == 3
    assert rows["F7"]["value"] == pytest.approx(1 - 2 / 7)  # against the student on D (7), not the baseline (20)
    assert rows["F7"]["verdict"].startswith("not reproduced") and "baseline on D 20" in rows["F7"]["verdict"]
    # what each verdict rests on: 7 student-memorized samples, 10 teacher-only ones (0..9), 20 baseline ones
    assert {k: rows[k]["positives"] for k in ("F1", "F2", "F3", "F4", "F8")} == {"F1": 7, "F2": 20, "F3": 7, "F4": 10, "F8": 10}
    strict = {f["id"]: f for f in analysis.findings(con, "fam", "ds", clf, 200, 0, min_positives=8)}
    assert strict["F3"]["verdict"].endswith("(rests on 7 < 8 positives)") and "rests on" not in strict["F4"]["verdict"]
    none = {f["id"]: f for f in analysis.findings(con, "fam", "ds", None, 50, 0)}
    assert none["F6"]["verdict"].startswith("not computed")
    assert none["F7"]["verdict"].startswith("not computed: the classifier removed no sample")


def test_missing_role_is_reported_not_crashed(tmp_path):
    files = make_world(tmp_path)
    k = list(SETS).index("hard_student-s0")  # its files are m{k}/metrics.json and m{k}-{split}-scores.parquet
    files["models"] = [f for f in files["models"] if Path(f).parent.name != f"m{k}"]
    files["scores"] = [f for f in files["scores"] if not Path(f).name.startswith(f"m{k}-")]
    out = tmp_path / "x.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0"]})
    con = duckdb.connect(str(out), read_only=True)
    rows = {f["id"]: f for f in analysis.findings(con, "fam", "ds", None, 50, 0, min_positives=1)}
    assert rows["F8"]["verdict"] == "not computed: no hard_student in this run"
    # baseline seed mean (20 + 16) / 2 = 18 of 40 against the student's 7: the CI of the difference excludes 0
    assert rows["F1"]["value"] == pytest.approx((18 - 7) / 40)
    assert rows["F1"]["verdict"] == "reproduced"


def _synthetic(separable: bool, n=400, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.15
    shift = 3.0 if separable else 0.0
    return pl.DataFrame({"sample_id": [str(i) for i in range(n)], "teacher_ppl": rng.normal(10, 1, n) - shift * y,
                         "baseline_ppl": rng.normal(12, 1, n) - shift * y, "kl_teacher_baseline": rng.normal(1, 0.2, n),
                         "zlib": rng.normal(100, 10, n) - 10 * shift * y, "label": y})


def test_classifier_separable_vs_inseparable():
    cfg = kconfig.validate({**MICRO, "classifier": {"trials": 20}})
    good = classifier.run(_synthetic(True), cfg)
    bad = classifier.run(_synthetic(False), cfg)
    assert good["status"] == "ok" and good["auc_mean"] > 0.95
    assert 0.35 < bad["auc_mean"] < 0.65
    assert len(good["trials"]) == 20
    pred = classifier.predict(good["model"], _synthetic(True, seed=1))
    assert pred["predicted"].sum() > 0


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
    assert rows["teacher"]["memorized"] == 20 and rows["teacher"]["rate"] == pytest.approx(0.5)
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
    f = {r["id"]: r for r in analysis.findings(con, "fam", "ds", None, 400, 0)}[name]
    lo, hi = f["ci"]
    assert lo <= f["value"] <= hi, f


def test_f7_fails_when_the_cleaned_student_equals_the_full_d_student(tmp_path):
    """Removal that changes nothing must not pass F7, however much less than the baseline the student memorizes."""
    SETS_SAVED = dict(SETS)
    try:
        SETS["student-T2.0-s0-cleaned"] = set(SETS["student-T2.0-s0"])
        files = make_world(tmp_path)
    finally:
        SETS.clear()
        SETS.update(SETS_SAVED)
    out = tmp_path / "x.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    con = duckdb.connect(str(out), read_only=True)
    clf = {"status": "ok", "auc_mean": 0.95, "n_predicted": 5, "n_positives": 7, "trial_aucs": [0.95]}
    f7 = {r["id"]: r for r in analysis.findings(con, "fam", "ds", clf, 200, 0, min_positives=1)}["F7"]
    assert f7["value"] == pytest.approx(0.0)
    assert f7["verdict"].startswith("not reproduced")


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
