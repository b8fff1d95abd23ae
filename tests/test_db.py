"""kdmem.db: the DuckDB store and its views, built from the hand-made store (tests/store.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from kdmem import analysis, db
from kdmem.errors import KdmemError

from .store import IDS, SETS, make_world


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


@pytest.mark.parametrize("train_gain", [0.0, 0.5])
def test_memorization_gain_is_zero_for_a_model_equal_to_its_base(tmp_path, train_gain):
    """Every trained model of the store scores the suffix as its base does on validation; on D it scores train_gain
    nats per token more. The gain and its calibrated form are 0 for a model equal to its base, and train_gain on D
    (0 on validation) for one that learned D."""
    from .store import add_bases

    files = make_world(tmp_path)
    add_bases(files, tmp_path, train_gain)
    out = tmp_path / "g.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0"]}, near_copy=(1, 2, 2))
    con = duckdb.connect(str(out), read_only=True)
    rows = con.execute("""SELECT split, count(*), min(gain), max(gain), min(gain_calibrated), max(gain_calibrated)
                          FROM memorization_gain GROUP BY split ORDER BY split""").fetchall()
    (tr, ntr, *g_tr), (va, nva, *g_va) = rows
    assert (tr, va, ntr, nva) == ("train", "val", len(SETS) * len(IDS), len(SETS) * 5)
    assert g_tr == pytest.approx([train_gain] * 4) and g_va == pytest.approx([0.0] * 4)
    # near-copy n-grams: every sample of the store is [1, 2, 3], so its one suffix bigram (2, 3) lies in another sample of D
    assert con.execute("SELECT min(near_copy_ngrams), max(near_copy_ngrams) FROM samples").fetchone() == (1, 1)
