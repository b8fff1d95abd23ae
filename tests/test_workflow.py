"""End to end: the real Snakefile on the micro config, in a temp dir, through the snakemake CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from . import longrun
from .conftest import ROOT, write_cfg


def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return longrun.snakemake(workdir, *args, timeout=timeout)


@pytest.mark.slow
def test_data_stage_outputs(micro_run):
    work, _ = micro_run
    r = work / "results" / "tiny"
    for f in ("wiki/data/train.parquet", "wiki/data/val.parquet", "wiki/data/data_stats.json", "pretrain/pretrain.parquet", "tokenizer/tokenizer.json"):
        assert (r / f).is_file(), f
    assert (work / "results" / "benchmarks" / "tiny" / "wiki" / "prepare.tsv").is_file()


@pytest.mark.slow
def test_every_role_is_trained_and_scored(micro_run):
    work, _ = micro_run
    m = work / "results" / "tiny" / "wiki" / "models"
    names = sorted(p.name for p in m.iterdir())
    assert names == ["baseline-s0", "baseline-s0-once", "baseline-s1", "hard_student-s0", "hard_student-s1", "student-T2.0-s0",
                     "student-T2.0-s0-cleaned", "student-T2.0-s1", "teacher-s0", "teacher-s1"]
    once = json.loads((m / "baseline-s0-once" / "metrics.json").read_text())
    assert once["data_variant"] == "once" and once["role"] == "baseline"  # the control: D's once-seen samples alone
    for name in names:
        assert (m / name / "model.safetensors").is_file() and (m / name / "metrics.json").is_file()
        for split in ("train", "val"):
            assert (work / "results" / "tiny" / "wiki" / "scores" / name / f"{split}.parquet").is_file()
    meta = json.loads((work / "results" / "tiny" / "wiki" / "cache" / "full-T2.0" / "meta.json").read_text())
    assert meta["kind"] == "full" and meta["temperature"] == 2.0  # the micro's students learn the teacher's whole distribution


@pytest.mark.slow
def test_duckdb_and_readme_queries(micro_run):
    work, _ = micro_run
    con = duckdb.connect(str(work / "results" / "kdmem.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"samples", "models", "scores", "classifier_trials", "classifier_coefficients", "predictions", "runs",
            "memorization_rates", "overlaps", "inheritance", "removal", "utility"} <= tables
    n_scores = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    assert n_scores == (10 + 2) * (48 + 16 + 16)  # ten trained models and the two bases (the base-model control); D, val, held-out
    expected_columns = {"rate per role": ["role", "rate"], "memorized by the baseline in every seed and by the student in none":
                        ["sample_id", "n_exposures"], "top-10 lowest-zlib memorized samples": ["sample_id", "zlib_bytes", "text"],
                        "memorization against exposures, per model": ["model", "n_exposures", "rate", "n"],
                        "teacher-only samples the student inherited": ["sample_id", "text"],
                        "membership-inference AUC per role and signal": ["role", "data_variant", "signal", "auc"],
                        "memorized, newly memorized (not by the model's own base) and (n, p)-extractable, per model":
                        ["model", "memorized", "newly_memorized", "extractable"]}
    for name, sql in readme_queries().items():
        cur = con.execute(sql)
        assert [d[0] for d in cur.description] == expected_columns[name], name
        cur.fetchall()
    by_exposure = con.execute(readme_queries()["memorization against exposures, per model"]).fetchall()
    assert sum(r[3] for r in by_exposure) == (10 + 2) * 48  # every training sample of every model and base, once
    per_role = dict(con.execute(readme_queries()["rate per role"]).fetchall())
    assert set(per_role) == {"teacher", "baseline", "student", "hard_student", "base"}  # base: the base-model control
    # provenance: every model, and the database itself, records config hash, git commit and versions
    runs = con.sql("SELECT what, config_hash, git_commit, versions FROM runs").pl()
    models = {r[0] for r in con.execute("SELECT model FROM models WHERE role <> 'base'").fetchall()}  # trained models
    assert models <= set(runs["what"]) and runs.height >= len(models) + 1
    assert runs["config_hash"].null_count() == 0 and runs["config_hash"].str.len_chars().min() >= 12
    assert all(len(c or "") == 40 for c in runs["git_commit"]), runs["git_commit"].to_list()  # the tests run in a git checkout
    assert all('"torch": "2.13.0' in v and '"transformers"' in v for v in runs["versions"])


@pytest.mark.slow
def test_report_has_every_table_and_embedded_figures(micro_run):
    work, _ = micro_run
    html = (work / "results" / "report" / "report.html").read_text()
    for title in ("findings", "rates", "overlaps", "entropy_vs_logprob", "removal", "utility", "rates_all"):
        assert f"data-title='{title}'" in html, title
    assert html.count("data:image/png;base64,") >= 5
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    for fid in ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8"):
        assert f"<td>{fid}</td>" in html


@pytest.mark.slow
def test_membership_inference_for_every_model(micro_run):
    work, _ = micro_run
    con = duckdb.connect(str(work / "results" / "kdmem.duckdb"), read_only=True)
    rows = con.execute("SELECT role, model, signal, auc, auc_lo, auc_hi, tpr_at_1pct_fpr, n_members, n_nonmembers FROM mia_summary").fetchall()
    models = {r[0] for r in con.execute("SELECT model FROM models").fetchall()}  # the bases too: the floor of the AUCs
    assert {"base-large", "base-small"} <= models
    trained = [r for r in rows if r[0] != "blind"]
    assert {r[1] for r in trained} == models and {r[2] for r in trained} == {"loss", "zlib_loss_ratio", "min_k", "min_k_pp", "reference"}
    # two comparisons: the validation windows (drawn as D is) and the held-out documents, each with its blind baseline
    splits = dict(con.execute("SELECT nonmember_split, count(*) FROM mia_summary GROUP BY 1").fetchall())
    assert splits == {"val": 5 * len(models) + 1, "heldout": 5 * len(models) + 1}
    # 16 non-members admit no false positive below 1 %: no TPR is reported rather than one set by a single non-member
    assert all(0 <= lo <= auc <= hi <= 1 and tpr is None and (m, n) == (48, 16) for _, _, _, auc, lo, hi, tpr, m, n in rows)
    per_sample = con.execute("SELECT count(*), count(DISTINCT model), sum(member::INT) FROM mia_scores").fetchone()
    assert per_sample == (len(models) * (48 + 16 + 16), len(models), len(models) * 48)
    html = (work / "results" / "report" / "report.html").read_text()
    assert "<h3>Membership inference (beyond the paper)</h3>" in html and "data-title='mia_val'" in html
    assert "data-title='mia_heldout'" in html and "Blind baseline" in html


@pytest.mark.slow
def test_rerun_is_a_noop(micro_run):
    work, _ = micro_run
    from .conftest import MICRO

    proc = _snakemake(work, "--configfile", str(write_cfg(MICRO, work / "micro.yaml")), "-n", "--cores", "1")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr


def readme_queries() -> dict[str, str]:
    """The ad-hoc SQL blocks of docs/sql.md, by their heading."""
    text = (ROOT / "docs" / "sql.md").read_text()
    out = {}
    for block in re.findall(r"-- (.+?)\n(.*?)```", text, flags=re.S):
        out[block[0].strip()] = block[1].strip().rstrip(";")
    assert len(out) >= 5, out
    return out


def test_bad_config_stops_the_dag_with_one_line(tmp_path):
    from .conftest import MICRO

    bad = {**MICRO, "memorization": {"prefix_len": 20, "suffix_len": 20}}
    proc = _snakemake(tmp_path, "--configfile", str(write_cfg(bad, tmp_path / "bad.yaml")), "-n", "--cores", "1")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "kdmem:" in ln]
    assert lines == ["kdmem: config: memorization.prefix_len + suffix_len = 40 exceeds datasets.wiki.seq_len = 32; shorten the window or lengthen the samples"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "tiny").exists()


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_dry_runs_and_lint_write_nothing_into_the_repository():
    """Dry-running every shipped config, and --lint, in the repository itself leaves git status as it was; every
    config dry-runs and the lint finds nothing. The dry runs go two at a time (one per core): each is a process
    start and a DAG build, and they share nothing but the repository they must leave alone."""
    from concurrent.futures import ThreadPoolExecutor

    configs = [ROOT / "config.yaml", *sorted((ROOT / "configs").rglob("*.yaml")), ROOT / "tests" / "micro.yaml"]
    before = _git_status()

    def dry(cfg):
        return cfg, subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1", "--configfile", str(cfg)],
                                   cwd=ROOT, env=longrun.env(), capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for cfg, proc in pool.map(dry, configs):
            assert proc.returncode == 0, (cfg.name, proc.stderr[-2000:])
            assert "Job stats" in proc.stdout + proc.stderr or "Nothing to be done" in proc.stdout + proc.stderr, cfg.name
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=ROOT, env=longrun.env(),
                          capture_output=True, text=True, timeout=120)
    assert "your workflow is in a good condition" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    assert _git_status() == before


@pytest.mark.slow
def test_every_output_follows_the_umask(micro_run):
    """The run took umask 002, a lab's shared folder: every file and folder it wrote is group-writable and
    readable by others, as plain open()/mkdir() would make them (the atomic writer's temporaries are 0600/0700)."""
    work, _ = micro_run
    bad = longrun.mode_violations(work / "results", 0o002)
    assert bad == [], bad[:20]
