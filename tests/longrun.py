"""Helpers for the long tests (SLURM, faults): run the real Snakefile, and fingerprint what it produced.

A fingerprint is a sha256 per per-sample parquet file and per DuckDB table, so two runs compare
table by table. Columns that record *when* or *how fast* a run happened (wall clock, throughput,
timestamps, the runs table) are left out: they differ by nature, and every other column must match.
`train_loss` is left out too, because the HF Trainer averages it only over the steps since the last
resume, so a resumed model reports a different mean for the same weights.
"""

from __future__ import annotations

import copy
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from .conftest import MICRO, ROOT, write_cfg

VOLATILE = {"train_seconds", "tokens_per_s", "finished_at", "started_at", "train_loss", "resumed_from_step", "wall_s", "seconds"}
SKIP_TABLES = {"runs"}


def long_micro() -> dict:
    """The micro config with checkpoints every 4 optimizer steps, so a kill always has one to resume from."""
    cfg = copy.deepcopy(MICRO)
    for optim in (cfg["pretrain"]["optim"], cfg["finetune"]["teacher"], cfg["finetune"]["baseline"],
                  cfg["distill"]["soft"]["optim"], cfg["distill"]["hard"]["optim"]):
        optim["save_steps"] = 4
    # The teacher's fine-tune is the job the SLURM test cancels mid-training: at 3 epochs it trains for under
    # a second on one thread, shorter than the watcher's reaction; 12 epochs give it a few seconds.
    cfg["finetune"]["teacher"]["epochs"] = 12
    # One teacher and no control baseline here: the kill and cancel tests find the teacher's job by its command
    # line (`kdmem finetune --role teacher`), which a second teacher seed would make ambiguous.
    cfg["finetune"]["teacher_seeds"], cfg["finetune"]["once_seen_baseline"] = [0], False
    return cfg


PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"
# A test that runs kdmem itself (not through the pipeline) names this venv's command: the plain PATH has none.
KDMEM = str(Path(sys.executable).parent / "kdmem")


def _no_slurm_dir() -> str:
    """A folder holding only an `scontrol` that exits 1 at once (see env)."""
    d = Path(tempfile.gettempdir()) / f"kdmem-no-slurm-{os.getuid()}"
    exe = d / "scontrol"
    if not exe.is_file():
        d.mkdir(exist_ok=True)
        tmp = d / f".scontrol.{os.getpid()}"
        tmp.write_text("#!/bin/sh\n# kdmem tests: no SLURM controller for runs that do not use SLURM\nexit 1\n")
        tmp.chmod(0o755)
        tmp.replace(exe)
    return str(d)


def env(slurm: bool = False) -> dict[str, str]:
    """The environment a pipeline under test runs in: a plain PATH with no venv on it, so the pipeline
    must find its own kdmem (rules/common.smk puts the running Python's bin folder first), exactly as
    `make run` from a fresh clone in a plain shell does. The harness never puts kdmem or Python on PATH.

    Snakemake's SLURM executor plugin runs `scontrol show config` whenever Snakemake starts. On a machine
    where SLURM is installed but no controller runs (after `make test-slurm` stopped its daemons), that
    waits out a 10 s timeout at every start: most of the fast suite's wall time. Runs that do not use
    SLURM get a folder with only an `scontrol` that fails at once in front of the plain PATH; the SLURM
    test (slurm=True) gets the real one."""
    path = PLAIN_PATH if slurm else f"{_no_slurm_dir()}:{PLAIN_PATH}"
    return {**os.environ, "PATH": path, "HF_HUB_OFFLINE": "1"}


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]


def snakemake(workdir: Path, *args: str, timeout: int = 900, umask: int | None = None, slurm: bool = False) -> subprocess.CompletedProcess:
    """The pipeline in a subprocess; `umask` sets the process umask its jobs inherit (a shared project folder's 002, say)."""
    preexec = None if umask is None else (lambda: os.umask(umask))
    return subprocess.run(snakemake_cmd(workdir, *args), capture_output=True, text=True, env=env(slurm), timeout=timeout, cwd=workdir,
                          preexec_fn=preexec)


def mode_violations(root: Path, umask: int) -> list[str]:
    """Files and folders under root whose permission bits differ from what a plain open()/mkdir() gives under
    `umask` (0666/0777 masked): what a colleague on a shared folder could not read, or write, that they should."""
    bad = []
    for p in [root, *root.rglob("*")]:
        if p.is_symlink():
            continue
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        have = p.stat().st_mode & 0o777
        # An executable bit a job sets on purpose (none today) would be extra, never missing: compare the rw bits.
        if have & 0o666 != want & 0o666 or (p.is_dir() and have != want):
            bad.append(f"{oct(have)} {p.relative_to(root)}")
    return bad


def local_run(workdir: Path, cfg: dict, umask: int | None = None) -> tuple[subprocess.CompletedProcess, float]:
    cfg_path = write_cfg(cfg, workdir / "micro.yaml")
    t0 = time.time()
    proc = snakemake(workdir, "--configfile", str(cfg_path), "--cores", "2", "--profile", str(ROOT / "profiles" / "default"), umask=umask)
    return proc, time.time() - t0


def _frame_digest(df: pl.DataFrame) -> str:
    df = df.drop([c for c in df.columns if c in VOLATILE])
    df = df.select(sorted(df.columns))
    flat = [c for c, t in df.schema.items() if not t.is_nested()]
    df = df.sort(flat, nulls_last=True) if df.height and flat else df
    return hashlib.sha256(df.write_ndjson().encode()).hexdigest()


def fingerprint(workdir: Path) -> dict[str, str]:
    """sha256 of every per-sample parquet (data, scores, predictions) and every DuckDB table's content."""
    res = workdir / "results"
    out: dict[str, str] = {}
    for p in sorted(res.rglob("*.parquet")):
        rel = p.relative_to(res).as_posix()
        if "/checkpoints/" in rel or "/cache/" in rel:
            continue
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    con = duckdb.connect(str(res / "kdmem.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        for t in tables:
            if t not in SKIP_TABLES:
                out[f"duckdb:{t}"] = _frame_digest(con.sql(f'SELECT * FROM "{t}"').pl())  # names from the catalogue
    finally:
        con.close()
    return out


def diff(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
