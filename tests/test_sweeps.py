"""The sweep configs beyond the paper: each dry-runs in the plain suite (test_workflow dry-runs every
configs/**/*.yaml), and a micro variant runs end to end in the long suite (marker `configs`)."""

from __future__ import annotations

import copy
import json

import duckdb
import pytest

from . import longrun
from .conftest import MICRO, ROOT, write_cfg

SWEEP_SAME = ("datasets", "families", "memorization", "classifier", "mia")  # what a sweep keeps of the default


def test_the_temperature_sweep_is_the_default_with_four_temperatures():
    from kdmem import config as kconfig

    sweep, default = kconfig.load(ROOT / "configs" / "sweep-temperature.yaml"), kconfig.load(ROOT / "config.yaml")
    assert sweep["distill"]["soft"]["temperatures"] == [1.0, 2.0, 4.0, 8.0] and sweep["analysis"]["primary_temperature"] == 2.0
    for key in SWEEP_SAME:
        assert sweep[key] == default[key], key
    assert sweep["distill"]["soft"]["optim"] == default["distill"]["soft"]["optim"] and sweep["finetune"]["teacher"] == default["finetune"]["teacher"]
    assert sweep["results"] == "results/sweep-temperature"
    # the study measured on the old default stays reproducible, as an overlay on r6
    old = kconfig.load(ROOT / "configs" / "regime" / "sweep-temperature-r6.yaml")
    r6 = kconfig.load(ROOT / "configs" / "regime" / "r6.yaml")
    assert old["distill"]["soft"]["temperatures"] == [1.0, 2.0, 4.0, 8.0] and old["datasets"] == r6["datasets"]


@pytest.mark.configs
def test_micro_temperature_sweep_reports_every_student(tmp_path):
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"].update(temperatures=[1.0, 2.0], seeds=[0])  # one student per temperature
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


def test_the_loss_sweep_is_the_default_with_three_losses():
    from kdmem import config as kconfig

    sweep, default = kconfig.load(ROOT / "configs" / "sweep-loss.yaml"), kconfig.load(ROOT / "config.yaml")
    assert sweep["distill"]["soft"]["losses"] == ["forward_kl", "reverse_kl", "jsd"] and sweep["analysis"]["primary_loss"] == "forward_kl"
    for key in SWEEP_SAME:
        assert sweep[key] == default[key], key
    assert sweep["distill"]["soft"]["temperatures"] == [2.0] and sweep["results"] == "results/sweep-loss"
    assert sweep["distill"]["soft"]["cache"] == "full"  # every divergence exact, not the top-k buckets' approximation


def test_two_families_share_the_data_and_tokenizer_and_differ_in_architecture():
    from kdmem import config as kconfig

    two, default = kconfig.load(ROOT / "configs" / "two-families.yaml"), kconfig.load(ROOT / "config.yaml")
    assert two["datasets"] == default["datasets"] and two["families"]["tiny"] == default["families"]["tiny"]
    llama = two["families"]["llama"]
    assert llama["tokenizer"] == default["families"]["tiny"]["tokenizer"]  # one vocabulary: the same samples
    assert {llama[s]["arch"]["type"] for s in ("large", "small")} == {"llama"} and llama["large"]["init"] == "scratch"
    assert two["pretrain"]["dataset"] in two["datasets"] and two["results"] == "results/two-families"


def _dry_run_commands(tmp_path, cfg: dict) -> str:
    proc = longrun.snakemake(tmp_path, "-n", "-p", "--configfile", str(write_cfg(cfg, tmp_path / "c.yaml")), "--cores", "1", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return "\n".join(line.removeprefix("Shell command: ") for line in proc.stdout.splitlines())


@pytest.mark.parametrize("kind", ["topk", "sampled", "dense"])
def test_the_cache_kind_shapes_the_students_jobs(tmp_path, kind):
    """topk: the students read cache/T2.0; sampled: a cache_logits_sampled job writes cache/sampled-T2.0 and the
    students read it; dense: no student cache at all (online KD). The kl_to_teacher cache at T = 1 stays top-k in
    every case. (full, the micro's and the default's, reads cache/full-T2.0: test_a_student_per_loss_and_temperature.)"""
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"]["cache"] = kind
    out = _dry_run_commands(tmp_path, cfg)
    distill = [line for line in out.splitlines() if line.startswith("kdmem distill --mode soft")]
    assert len(distill) == 3  # the students of seeds 0 and 1 and the removal experiment's cleaned student
    want = {"topk": "--cache results/tiny/wiki/cache/T2.0 ", "sampled": "--cache results/tiny/wiki/cache/sampled-T2.0 ", "dense": None}[kind]
    for line in distill:
        assert (want in line) if want else ("--cache" not in line)
    assert ("kdmem cache-logits" in out and "--kind sampled" in out) == (kind == "sampled")
    assert "--temperature 1.0 --kind topk" in out


def test_a_student_per_loss_and_temperature(tmp_path):
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"]["temperatures"], cfg["distill"]["soft"]["losses"] = [1.0, 2.0], ["forward_kl", "jsd"]
    out = _dry_run_commands(tmp_path, cfg)
    outs = sorted(line.split(" --out ")[1].split()[0].rsplit("/", 1)[1] for line in out.splitlines() if line.startswith("kdmem distill --mode soft"))
    assert outs == ["student-T1.0-jsd-s0", "student-T1.0-jsd-s1", "student-T1.0-s0", "student-T1.0-s1", "student-T2.0-jsd-s0",
                    "student-T2.0-jsd-s1", "student-T2.0-s0", "student-T2.0-s0-cleaned", "student-T2.0-s1"]
    assert "--temperature 2.0 --loss jsd" in out and "--temperature 1.0 --loss forward_kl" in out
    assert "--cache results/tiny/wiki/cache/full-T2.0 " in out and "--cache results/tiny/wiki/cache/full-T1.0 " in out
    assert "--temperature 1.0 --kind full" in out and "--temperature 1.0 --kind topk" in out  # T = 1: the student's and the feature's


@pytest.mark.configs
def test_micro_loss_sweep_reports_every_student(tmp_path):
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"].update(losses=["forward_kl", "reverse_kl", "jsd"], seeds=[0])  # one student per loss
    proc, _ = longrun.local_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "results" / "kdmem.duckdb"), read_only=True)
    rows = con.execute("SELECT model, loss, is_primary FROM models WHERE role = 'student' AND data_variant = 'full' ORDER BY loss").fetchall()
    assert rows == [("student-T2.0-s0", "forward_kl", True), ("student-T2.0-jsd-s0", "jsd", False), ("student-T2.0-reverse_kl-s0", "reverse_kl", False)]
    html = (tmp_path / "results" / "report" / "report.html").read_text()
    assert "<h3>Soft students by loss (beyond the paper)</h3>" in html and "Soft students by temperature" not in html
    assert html.count("<figcaption>Soft students by KD loss: memorized, validation loss, MIA AUC.</figcaption>") == 1


@pytest.mark.configs
def test_micro_sampled_cache_runs_end_to_end(tmp_path):
    cfg = copy.deepcopy(MICRO)
    cfg["distill"]["soft"]["cache"] = "sampled"
    proc, _ = longrun.local_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((tmp_path / "results" / "tiny" / "wiki" / "cache" / "sampled-T2.0" / "meta.json").read_text())
    assert meta["kind"] == "sampled" and meta["draws"] == 16 and meta["bytes_per_token"] < 32
    con = duckdb.connect(str(tmp_path / "results" / "kdmem.duckdb"), read_only=True)
    assert con.execute("SELECT DISTINCT cache FROM models WHERE role = 'student'").fetchall() == [("sampled",)]


@pytest.mark.configs
def test_micro_two_families_report_the_cross_family_section(tmp_path, micro_tokenizer):
    """The micro study with a second, Llama-architecture family sharing the first's tokenizer (and so its samples)."""
    cfg = copy.deepcopy(MICRO)
    tiny = cfg["families"]["tiny"]
    tiny["tokenizer"] = str(micro_tokenizer)
    llama = {"tokenizer": str(micro_tokenizer)}
    for size in ("large", "small"):
        llama[size] = {"init": "scratch", "arch": {**tiny[size]["arch"], "type": "llama"}}
    cfg["families"]["llama"] = llama
    cfg["baseline_seeds"], cfg["distill"]["hard"]["enabled"], cfg["removal"], cfg["mia"] = [0], False, {"enabled": False}, {"enabled": False}
    proc, _ = longrun.local_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "results" / "kdmem.duckdb"), read_only=True)
    n = con.execute("SELECT family, count(*) FROM samples WHERE split = 'train' GROUP BY 1 ORDER BY 1").fetchall()
    assert n == [("llama", MICRO["datasets"]["wiki"]["n_train"]), ("tiny", MICRO["datasets"]["wiki"]["n_train"])]
    result = json.loads((tmp_path / "results" / "report" / "analysis.json").read_text())
    [x] = result["across_families"]
    assert x["families"] == ["llama", "tiny"] and x["comparable"] and len(x["overlaps"]) == 15
    assert {(r["role"], r["family_a"], r["family_b"]) for r in x["zlib"]} == {(r, "llama", "tiny") for r in ("teacher", "baseline", "student")}
    assert all(r["r"] is None or (r["lo"] <= r["r"] <= r["hi"] and 0 < r["p_exposure"] <= 1) for r in x["zlib"])
    html = (tmp_path / "results" / "report" / "report.html").read_text()
    assert "<h2>Across families on wiki (beyond the paper)</h2>" in html and "families-wiki-coverage.png" not in html  # embedded, not linked
    assert (tmp_path / "results" / "llama" / "base" / "large" / "config.json").read_text().count('"model_type": "llama"') == 1
