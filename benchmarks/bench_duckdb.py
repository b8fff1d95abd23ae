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
from kdmem.layout import Layout  # noqa: E402
from kdmem.roster import ModelSpec  # noqa: E402
from kdmem.vocab import DEFAULT_LOSS, DataVariant, Role, Split  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
FAM, DS = "fam", "ds"
MODELS = [ModelSpec(Role.TEACHER, 0, family=FAM, dataset=DS), ModelSpec(Role.BASELINE, 0, family=FAM, dataset=DS),
          ModelSpec(Role.BASELINE, 1, family=FAM, dataset=DS), ModelSpec(Role.STUDENT, 0, 2.0, DEFAULT_LOSS, family=FAM, dataset=DS),
          ModelSpec(Role.HARD_STUDENT, 0, family=FAM, dataset=DS)]


def make(root: Path) -> dict:
    rng = np.random.default_rng(0)
    lay = Layout(str(root / "results"))
    ids = pl.Series("sample_id", [f"{i:016x}" for i in range(N)])
    samples = pl.DataFrame({"family": FAM, "dataset": DS, "split": str(Split.TRAIN), "sample_id": ids, "doc_id": pl.Series([f"d{i // 4}" for i in range(N)]), "offset": pl.Series(np.zeros(N, np.int32)),
                            "input_ids": pl.Series([[1, 2, 3, 4]] * N, dtype=pl.List(pl.Int32)), "text": pl.Series(["some text"] * N),
                            "n_exposures": pl.Series(np.ones(N, np.int32)), "zlib_bytes": rng.integers(150, 400, N),
                            "zlib_ratio": rng.random(N)})
    files: dict[str, list[str]] = {"samples": [lay.samples(FAM, DS, Split.TRAIN), lay.samples(FAM, DS, Split.VAL)], "models": [], "scores": []}
    Path(files["samples"][0]).parent.mkdir(parents=True)
    samples.write_parquet(files["samples"][0])
    samples.head(1000).with_columns(split=pl.lit(str(Split.VAL))).write_parquet(files["samples"][1])
    for spec in MODELS:
        m = Path(lay.model(FAM, DS, spec.name))
        m.mkdir(parents=True)
        (m / "metrics.json").write_text(json.dumps(spec.record()))
        files["models"].append(str(m / "metrics.json"))
        rate = {Role.TEACHER: 0.0033, Role.BASELINE: 0.0017, Role.STUDENT: 0.0007, Role.HARD_STUDENT: 0.0007}[Role(spec.role)]
        sc = pl.DataFrame({"model": spec.name, "family": FAM, "dataset": DS, "role": spec.role, "seed": spec.seed, "temperature": spec.temperature,
                           "data_variant": str(DataVariant.FULL), "fingerprint": "x", "split": str(Split.TRAIN), "sample_id": ids,
                           "exact": rng.random(N) < rate, "exact_gen": None, "frac": None, "tf_acc": rng.random(N),
                           "suffix_logprob_sum": rng.normal(-60, 10, N), "suffix_logprob_mean": rng.normal(-2, 0.5, N),
                           "ppl": rng.lognormal(3, 0.5, N), "entropy": rng.random(N) * 4, "zlib_bytes": rng.integers(150, 400, N),
                           "kl_to_teacher": rng.random(N), "n_exposures": np.ones(N, np.int32),
                           "extract_logprob": rng.normal(-40, 10, N), "extractable": rng.random(N) < rate,
                           "extractable_full": rng.random(N) < rate, "min_k": rng.normal(-5, 1, N), "min_k_pp": rng.normal(-1, 0.5, N)},
                          schema_overrides={"temperature": pl.Float64, "exact_gen": pl.Boolean, "frac": pl.Float64})
        f = Path(lay.scores(FAM, DS, spec.name, Split.TRAIN))
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
    db.build(out, **files, primary={"models": [m.name for m in MODELS if m != MODELS[2]]})  # the second baseline seed is not primary
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
