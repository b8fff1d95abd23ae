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
    con.execute("CREATE TABLE samples (family VARCHAR, dataset VARCHAR, split VARCHAR, sample_id VARCHAR, zlib_bytes BIGINT, "
                "n_exposures INTEGER)")
    con.execute("CREATE TABLE models (model VARCHAR, family VARCHAR, dataset VARCHAR, role VARCHAR, is_primary BOOLEAN, data_variant VARCHAR)")
    con.execute("CREATE TABLE scores (model VARCHAR, family VARCHAR, dataset VARCHAR, split VARCHAR, sample_id VARCHAR, exact BOOLEAN)")
    for fam in ("neox", "llama"):
        ids = [f"{'x' if other_tokenizer and fam == 'llama' else 's'}{i}" for i in range(N)]
        con.executemany("INSERT INTO samples VALUES (?, 'wiki', 'train', ?, ?, 1)", [(fam, s, 20 + i) for i, s in enumerate(ids)])
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
    [x] = families.across_families(con, n_perm=200, seed=0)
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
    [x] = families.across_families(con, n_perm=200, seed=0)
    z = {r["role"]: r for r in x["zlib"]}
    # D's zlib is 20..59, ten equal-mass bins of four; teacher sets: neox 0..9 (bins 0,0,0,0,1,1,1,1,2,2), llama 20..29
    prof = {fam: np.bincount(np.array(sorted(MEMORIZED[(fam, "teacher")])) // 4, minlength=10) / 10 for fam in ("llama", "neox")}
    assert z["teacher"]["r"] == pytest.approx(float(np.corrcoef(prof["llama"], prof["neox"])[0, 1]))
    assert z["teacher"]["lo"] <= z["teacher"]["r"] <= z["teacher"]["hi"]
    assert (z["teacher"]["mean_zlib_a"], z["teacher"]["mean_zlib_b"]) == (20 + 24.5, 20 + 4.5)
    assert z["student"]["r"] is None and z["student"]["n_b"] == 2  # llama's student memorized nothing
    # the same profile gives r = 1: shift both sets by one sample inside their bins
    same = families.zlib_correlation(np.array([20.0, 21, 24, 28]), np.array([22.0, 23, 25, 29]), np.arange(20, 61, 4))
    assert same["r"] == pytest.approx(1.0)


def test_the_interval_is_fishers_z_over_the_bins_and_holds_r():
    # Two noisy draws of one skewed profile, ~100 members each: a bootstrap over members lay wholly below r here.
    rng, edges = np.random.default_rng(3), np.arange(20, 61, 4)
    shape = np.array([8, 6, 5, 4, 3, 2, 2, 1, 1, 1], float)
    za, zb = (20 + 4 * rng.choice(10, n, p=shape / shape.sum()) + rng.integers(0, 4, n) for n in (113, 219))
    c = families.zlib_correlation(za.astype(float), zb.astype(float), edges)
    z, half = np.arctanh(c["r"]), 1.959963984540054 / np.sqrt(10 - 3)
    assert (c["lo"], c["hi"]) == pytest.approx((np.tanh(z - half), np.tanh(z + half)))
    assert c["lo"] < c["r"] < c["hi"]


def _family_d(member: np.ndarray, expo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return 20.0 + np.arange(N), expo, member


def test_exposure_null_a_set_that_exposure_fixes_gets_p_one():
    # Samples 0..9 are D's only 8x-exposed ones and both families memorize exactly them: any draw within the levels
    # is that set again, so exposure alone gives r = 1 every time.
    expo, member = np.where(np.arange(N) < 10, 8, 1), np.arange(N) < 10
    edges = np.arange(20, 61, 4)
    r = families.zlib_correlation(20.0 + np.arange(10), 20.0 + np.arange(10), edges)["r"]
    n = families.exposure_null(_family_d(member, expo), _family_d(member, expo), edges, r, n_perm=300, seed=0)
    assert r == pytest.approx(1.0)
    assert n["r_exposure_null"] == pytest.approx(1.0) and n["p_exposure"] == 1.0


def test_exposure_null_rejects_a_shared_profile_that_exposure_does_not_give():
    # Every sample seen once: a draw within the one level is a random 10 of D, whose profile is flat plus noise, while
    # the two sets share a steep profile (bins 0-2 only).
    expo = np.ones(N, np.int64)
    a, b = np.arange(N) < 10, (np.arange(N) >= 1) & (np.arange(N) <= 10)
    edges = np.arange(20, 61, 4)
    r = families.zlib_correlation(20.0 + np.flatnonzero(a), 20.0 + np.flatnonzero(b), edges)["r"]
    n = families.exposure_null(_family_d(a, expo), _family_d(b, expo), edges, r, n_perm=500, seed=0)
    assert r > 0.9
    assert abs(n["r_exposure_null"]) < 0.2 and n["r_exposure_null_hi"] < r and n["p_exposure"] < 0.01


def test_families_with_different_samples_are_not_comparable():
    [x] = families.across_families(_store(other_tokenizer=True), n_perm=200, seed=0)
    assert not x["comparable"]
    assert all(r["n_both"] == 0 for r in x["overlaps"] if not r["same_family"])
    assert {r["role"] for r in x["zlib"]} == {"teacher", "baseline", "student"}


def test_a_single_family_study_has_no_cross_family_section():
    con = _store()
    con.execute("DELETE FROM models WHERE family = 'llama'")
    assert families.across_families(con, n_perm=200, seed=0) == []
