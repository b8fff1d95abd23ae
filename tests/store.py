"""A hand-built results store with known answers: every model's memorized set is chosen, so each view,
finding and rate has a count to check by hand. Files lie under flat, meaningless names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

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
                               "suffix_logprob_mean": [-5.0 / 24] * len(ids), "extractable_full": [split == "train" and i in mem for i in range(len(ids))],
                               "ppl": [np.exp(2.0 + (0.1 if role == "baseline" else 0.0))] * len(ids), "zlib_bytes": [30 + i for i in range(len(ids))],
                               "kl_to_teacher": [0.1] * len(ids), "n_exposures": [1] * len(ids),
                               "extract_logprob": [-0.01 if split == "train" and i in mem else -30.0 for i in range(len(ids))],
                               "extractable": [split == "train" and i in mem for i in range(len(ids))]},
                              schema_overrides={"temperature": pl.Float64, "seed": pl.Int64})
            f = base / f"m{k}-{split}-scores.parquet"
            sc.write_parquet(f)
            files["scores"].append(str(f))
    return files


def add_bases(files: dict, root: Path, train_gain: float = 0.0) -> None:
    """Scores of the two bases (role base) on every split: equal to the trained models' suffix log-prob per token,
    less `train_gain` on D's samples, so every trained model's gain is train_gain on D and 0 on validation."""
    for size in ("large", "small"):
        for split, ids in (("train", IDS), ("val", [i + "v" for i in IDS[:5]])):
            lp = -5.0 / 24 - (train_gain if split == "train" else 0.0)
            sc = pl.DataFrame({"model": f"base-{size}", "family": "fam", "dataset": "ds", "role": "base", "seed": None, "temperature": None,
                               "data_variant": "full", "fingerprint": "b", "split": split, "sample_id": ids, "exact": [False] * len(ids),
                               "suffix_logprob_mean": [lp] * len(ids), "ppl": [np.exp(3.0)] * len(ids), "n_exposures": [1] * len(ids)},
                              schema_overrides={"temperature": pl.Float64, "seed": pl.Int64})
            f = root / f"base-{size}-{split}.parquet"
            sc.write_parquet(f)
            files["scores"].append(str(f))
