"""The sweep configs beyond the paper: each dry-runs in the plain suite (test_workflow dry-runs every
configs/**/*.yaml), and a micro variant runs end to end in the long suite (marker `configs`)."""

from __future__ import annotations

import copy

import duckdb
import pytest

from . import longrun
from .conftest import MICRO, ROOT


def test_the_temperature_sweep_is_the_default_with_four_temperatures():
    from kdmem import config as kconfig

    sweep, default = kconfig.load(ROOT / "configs" / "sweep-temperature.yaml"), kconfig.load(ROOT / "config.yaml")
    assert sweep["distill"]["soft"]["temperatures"] == [1.0, 2.0, 4.0, 8.0] and sweep["analysis"]["primary_temperature"] == 2.0
    for key in ("datasets", "families", "finetune", "baseline_seeds", "memorization", "classifier", "removal"):
        assert sweep[key] == default[key], key
    assert sweep["results"] == "results/sweep-temperature"


@pytest.mark.configs
def test_micro_temperature_sweep_reports_every_student(tmp_path):
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"]["temperatures"] = [1.0, 2.0]
    proc, _ = longrun.local_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "results" / "kdmem.duckdb"), read_only=True)
    temps = [r[0] for r in con.execute("SELECT temperature FROM models WHERE role = 'student' AND data_variant = 'full' ORDER BY 1").fetchall()]
    assert temps == [1.0, 2.0]
    primary = con.execute("SELECT model FROM models WHERE is_primary AND role = 'student' AND data_variant = 'full'").fetchall()
    assert primary == [("student-T2.0-s0",)]  # analysis.primary_temperature, not the first listed
    html = (tmp_path / "results" / "report" / "report.html").read_text()
    assert "<h3>Soft students by temperature (beyond the paper)</h3>" in html and "tiny-wiki-temperature.png" not in html
    assert html.count("<figcaption>Soft students by temperature: memorized, validation loss, MIA AUC.</figcaption>") == 1
