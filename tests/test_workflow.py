"""End to end: the real Snakefile on the micro config, in a temp dir, through the snakemake CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, write_cfg


def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=workdir)


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory):
    from .conftest import MICRO

    work = tmp_path_factory.mktemp("e2e")
    cfg = write_cfg(MICRO, work / "micro.yaml")
    proc = _snakemake(work, "--configfile", str(cfg), "--cores", "2", "--profile", str(ROOT / "profiles" / "default"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, proc


def test_data_stage_outputs(micro_run):
    work, _ = micro_run
    r = work / "results" / "tiny"
    for f in ("wiki/data/train.parquet", "wiki/data/val.parquet", "wiki/data/data_stats.json", "pretrain/pretrain.parquet", "tokenizer/tokenizer.json"):
        assert (r / f).is_file(), f
    assert (work / "results" / "benchmarks" / "tiny" / "wiki" / "prepare.tsv").is_file()


def test_bad_config_stops_the_dag_with_one_line(tmp_path):
    from .conftest import MICRO

    bad = {**MICRO, "memorization": {"prefix_len": 20, "suffix_len": 20}}
    proc = _snakemake(tmp_path, "--configfile", str(write_cfg(bad, tmp_path / "bad.yaml")), "-n", "--cores", "1")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "kdmem:" in ln]
    assert lines == ["kdmem: config: memorization.prefix_len + suffix_len = 40 exceeds datasets.wiki.seq_len = 32; shorten the window or lengthen the samples"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "tiny").exists()
