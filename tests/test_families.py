"""Across families: memorized-set overlaps and zlib-profile correlations on a hand-made DuckDB store."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from kdmem import families

N = 40
MEMORIZED = {  # (family, role) -> memorized sample indices
    ("neox", "teacher"): set(range(0, 10)), ("neox", "baseline"): set(range(5, 13)), ("neox", "student"): {5, 6},
    ("llama", "teacher"): set(range(20, 30)), ("llama", "baseline"): set(range(12, 16)), ("llama", "student"): set(),
}


def _store(other_tokenizer: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE samples (family VARCHAR, dataset VARCHAR, split VARCHAR, sample_id VARCHAR, zlib_bytes BIGINT)")
    con.execute("CREATE TABLE models (model VARCHAR, family VARCHAR, dataset VARCHAR, role VARCHAR, is_primary BOOLEAN, data_variant VARCHAR)")
    con.execute("CREATE TABLE scores (model VARCHAR, family VARCHAR, dataset VARCHAR, split VARCHAR, sample_id VARCHAR, exact BOOLEAN)")
    for fam in ("neox", "llama"):
        ids = [f"{'x' if other_tokenizer and fam == 'llama' else 's'}{i}" for i in range(N)]
        con.executemany("INSERT INTO samples VALUES (?, 'wiki', 'train', ?, ?)", [(fam, s, 20 + i) for i, s in enumerate(ids)])
        for role, model in (("teacher", "teacher-s0"), ("baseline", "baseline-s0"), ("student", "student-T2.0-s0")):
            con.execute("INSERT INTO models VALUES (?, ?, 'wiki', ?, true, 'full')", [model, fam, role])
            con.executemany("INSERT INTO scores VALUES (?, ?, 'wiki', 'train', ?, ?)",
                            [(model, fam, s, i in MEMORIZED[(fam, role)]) for i, s in enumerate(ids)])
        # a second baseline seed is no primary model: it must not appear
        con.execute("INSERT INTO models VALUES ('baseline-s1', ?, 'wiki', 'baseline', false, 'full')", [fam])
        con.executemany("INSERT INTO scores VALUES ('baseline-s1', ?, 'wiki', 'train', ?, true)", [(fam, s) for s in ids])
    return con


def test_overlaps_hierarchy_and_disjoint_families():
    con = _store()
    [x] = families.across_families(con, n_boot=50, seed=0)
    assert x["dataset"] == "wiki" and x["families"] == ["llama", "neox"] and x["comparable"]
    rows = {(r["a"], r["b"]): r for r in x["overlaps"]}
    assert len(rows) == 15  # every pair of the 6 primary models, the non-primary seed left out
    hier = rows[("neox/baseline", "neox/teacher")]  # the size hierarchy: baseline 5..12, teacher 0..9
    assert (hier["n_a"], hier["n_b"], hier["n_both"], hier["share_of_a_in_b"]) == (8, 10, 5, 5 / 8)
    assert hier["jaccard"] == pytest.approx(5 / 13) and hier["same_family"]
    cross = rows[("llama/teacher", "neox/teacher")]
    assert cross["n_both"] == 0 and cross["share_of_a_in_b"] == 0 and not cross["same_family"]
    assert rows[("llama/baseline", "neox/baseline")]["n_both"] == 1  # sample 12
    assert rows[("llama/student", "neox/student")]["share_of_a_in_b"] is None  # an empty set covers nothing


def test_zlib_profile_correlation_by_hand():
    con = _store()
    [x] = families.across_families(con, n_boot=200, seed=0)
    z = {r["role"]: r for r in x["zlib"]}
    # D's zlib is 20..59, ten equal-mass bins of four; teacher sets: neox 0..9 (bins 0,0,0,0,1,1,1,1,2,2), llama 20..29
    prof = {fam: np.bincount(np.array(sorted(MEMORIZED[(fam, "teacher")])) // 4, minlength=10) / 10 for fam in ("llama", "neox")}
    assert z["teacher"]["r"] == pytest.approx(float(np.corrcoef(prof["llama"], prof["neox"])[0, 1]))
    assert z["teacher"]["lo"] <= z["teacher"]["r"] <= z["teacher"]["hi"]
    assert (z["teacher"]["mean_zlib_a"], z["teacher"]["mean_zlib_b"]) == (20 + 24.5, 20 + 4.5)
    assert z["student"]["r"] is None and z["student"]["n_b"] == 2  # llama's student memorized nothing
    # the same profile gives r = 1: shift both sets by one sample inside their bins
    same = families.zlib_correlation(np.array([20.0, 21, 24, 28]), np.array([22.0, 23, 25, 29]), np.arange(20, 61, 4), 20, 0)
    assert same["r"] == pytest.approx(1.0)


def test_families_with_different_samples_are_not_comparable():
    [x] = families.across_families(_store(other_tokenizer=True), n_boot=20, seed=0)
    assert not x["comparable"]
    assert all(r["n_both"] == 0 for r in x["overlaps"] if not r["same_family"])
    assert {r["role"] for r in x["zlib"]} == {"teacher", "baseline", "student"}


def test_a_single_family_study_has_no_cross_family_section():
    con = _store()
    con.execute("DELETE FROM models WHERE family = 'llama'")
    assert families.across_families(con, n_boot=20, seed=0) == []
