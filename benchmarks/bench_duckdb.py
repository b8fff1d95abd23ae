"""DuckDB store at the paper's scale: 1 M samples x 5 models of synthetic scores.
Measures the build time (target <= 60 s) and each view / README query (target <= 1 s)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from common import ROOT

sys.path.insert(0, str(ROOT / "tests"))

from kdmem import db  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
MODELS = [("teacher-s0", "teacher", 0, None), ("baseline-s0", "baseline", 0, None), ("baseline-s1", "baseline", 1, None),
          ("student-T2.0-s0", "student", 0, 2.0), ("hard_student-s0", "hard_student", 0, None)]


def make(root: Path) -> dict:
    rng = np.random.default_rng(0)
    base = root / "results" / "fam" / "ds"
    (base / "data").mkdir(parents=True)
    ids = pl.Series("sample_id", [f"{i:016x}" for i in range(N)])
    samples = pl.DataFrame({"family": "fam", "dataset": "ds", "split": "train", "sample_id": ids, "doc_id": pl.Series([f"d{i // 4}" for i in range(N)]), "offset": pl.Series(np.zeros(N, np.int32)),
                            "input_ids": pl.Series([[1, 2, 3, 4]] * N, dtype=pl.List(pl.Int32)), "text": pl.Series(["some text"] * N),
                            "n_exposures": pl.Series(np.ones(N, np.int32)), "zlib_bytes": rng.integers(150, 400, N),
                            "zlib_ratio": rng.random(N)})
    samples.write_parquet(base / "data" / "train.parquet")
    samples.head(1000).with_columns(split=pl.lit("val")).write_parquet(base / "data" / "val.parquet")
    files = {"samples": [str(base / "data" / "train.parquet"), str(base / "data" / "val.parquet")], "models": [], "scores": []}
    for name, role, seed, temp in MODELS:
        m = base / "models" / name
        m.mkdir(parents=True)
        (m / "metrics.json").write_text(json.dumps({"model": name, "family": "fam", "dataset": "ds", "role": role, "seed": seed, "temperature": temp}))
        files["models"].append(str(m / "metrics.json"))
        rate = {"teacher": 0.0033, "baseline": 0.0017, "student": 0.0007, "hard_student": 0.0007}[role]
        sc = pl.DataFrame({"model": name, "family": "fam", "dataset": "ds", "role": role, "seed": seed, "temperature": temp,
                           "data_variant": "full", "fingerprint": "x", "split": "train", "sample_id": ids,
                           "exact": rng.random(N) < rate, "exact_gen": None, "frac": None, "tf_acc": rng.random(N),
                           "suffix_logprob_sum": rng.normal(-60, 10, N), "suffix_logprob_mean": rng.normal(-2, 0.5, N),
                           "ppl": rng.lognormal(3, 0.5, N), "entropy": rng.random(N) * 4, "zlib_bytes": rng.integers(150, 400, N),
                           "kl_to_teacher": rng.random(N), "n_exposures": np.ones(N, np.int32),
                           "extract_logprob": rng.normal(-40, 10, N), "extractable": rng.random(N) < rate},
                          schema_overrides={"temperature": pl.Float64, "exact_gen": pl.Boolean, "frac": pl.Float64})
        f = base / "scores" / name / "train.parquet"
        f.parent.mkdir(parents=True)
        sc.write_parquet(f)
        files["scores"].append(str(f))
    return files


QUERIES = {
    "view memorization_rates": 'SELECT * FROM memorization_rates',
    "view overlaps (count)": 'SELECT count(*) FROM "overlaps"',
    "view inheritance": 'SELECT * FROM inheritance',
    "view removal": 'SELECT * FROM removal',
    "README: rate per role": "SELECT role, avg(rate) FROM memorization_rates WHERE split = 'train' GROUP BY role",
    "README: baseline all seeds, student none": 'SELECT count(*) FROM "overlaps" WHERE baseline_all_seeds AND NOT student',
    "README: top-10 lowest-zlib memorized": """SELECT s.sample_id, s.zlib_bytes FROM samples s JOIN "overlaps" o USING (family, dataset, sample_id)
                                               WHERE o.baseline OR o.student ORDER BY s.zlib_bytes LIMIT 10""",
}


def main() -> dict:
    import duckdb

    work = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    files = make(work)
    t_make = time.perf_counter() - t
    out = work / "kdmem.duckdb"
    t = time.perf_counter()
    db.build(out, **files, primary={"models": [m[0] for m in MODELS if m[0] != "baseline-s1"]})
    t_build = time.perf_counter() - t
    con = duckdb.connect(str(out), read_only=True)
    times = {}
    for name, q in QUERIES.items():
        t = time.perf_counter()
        con.execute(q).fetchall()
        times[name] = time.perf_counter() - t
    con.close()
    res = {"samples": N, "models": len(MODELS), "score_rows": N * len(MODELS), "synthetic_data_s": t_make, "build_s": t_build,
           "db_bytes": out.stat().st_size, "query_s": times, "max_query_s": max(times.values())}
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
