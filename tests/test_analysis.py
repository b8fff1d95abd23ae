"""kdmem.analysis: per-role rates, exposure response and power, on the hand-made store and hand-made studies."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest

from kdmem import analysis, db, findings

from .store import N, make_world


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
    base = {p["n_exposures"]: (p["memorized"], p["seeds"], p["n"]) for p in curves["baseline"]["points"]}
    assert base == {1: (10 + 8, 2, 20), 8: (10 + 8, 2, 20)}  # both seeds' verdicts (10..29 and 10..25) on 20 distinct samples


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
