"""One row of reports/regime.md from a finished run: base and model val losses, memorized counts per role,
memorization per exposure level, the power table (newly memorized samples in each model's 5-95 % levels, once-seen
memorized) and the summed job time.

    .venv/bin/python benchmarks/regime_row.py results/regime/<name>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

from kdmem.analysis import pairs, power_rows, study


def row(results: Path) -> dict:
    con = duckdb.connect(str(results / "kdmem.duckdb"), read_only=True)
    util = {r[0]: r[1] for r in con.execute("SELECT model, val_loss FROM utility").fetchall()}
    mem = dict(con.execute("SELECT model, memorized FROM memorization_rates WHERE split = 'train'").fetchall())
    val_mem = dict(con.execute("SELECT model, memorized FROM memorization_rates WHERE split = 'val'").fetchall())
    groups = con.execute("""SELECT model, n_exposures, sum(exact::INT) FROM scores WHERE split = 'train'
                            GROUP BY ALL ORDER BY model, n_exposures""").fetchall()
    by_group: dict[str, dict[int, int]] = {}
    for m, e, k in groups:
        by_group.setdefault(m, {})[e] = k
    sizes = dict(con.execute("""SELECT n_exposures, count(*) FROM samples WHERE split = 'train' GROUP BY 1 ORDER BY 1""").fetchall())
    tail = dict(con.execute("SELECT model, cache_mean_tail_mass FROM models WHERE cache_mean_tail_mass IS NOT NULL").fetchall())
    bench = list((results / "benchmarks").rglob("*.tsv"))
    job_s = sum(float(b.read_text().splitlines()[1].split("\t")[0]) for b in bench)
    power = [r for fam, ds in pairs(con) for r in power_rows(study(con, fam, ds))]
    return {"power": power, "val_loss": util, "memorized": mem, "val_memorized": val_mem, "by_exposure": by_group, "group_sizes": sizes,
            "tail_mass": tail, "job_seconds": round(job_s, 1)}


if __name__ == "__main__":
    print(json.dumps(row(Path(sys.argv[1])), indent=1, default=str))
