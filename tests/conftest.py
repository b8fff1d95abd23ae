"""Shared fixtures: a micro config on the real embedded corpus, and a real tokenizer trained once."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "resources" / "enwiki-gensim.jsonl.gz"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MICRO_YAML = ROOT / "tests" / "micro.yaml"


def load_micro() -> dict:
    """tests/micro.yaml, as the suite runs it: in a temporary working directory, so results go to its
    results/ and the corpus is named by absolute path."""
    cfg = yaml.safe_load(MICRO_YAML.read_text())
    cfg["results"] = "results"
    cfg["datasets"]["wiki"]["path"] = str(CORPUS)
    return cfg


MICRO = load_micro()


@pytest.fixture
def micro_cfg() -> dict:
    return copy.deepcopy(MICRO)


def write_cfg(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def micro_tokenizer(tmp_path_factory) -> Path:
    """A real byte-level BPE trained on the micro config's pretraining documents."""
    from kdmem import config as kconfig
    from kdmem.data import pretrain_texts
    from kdmem.tokenizer import train_bpe

    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    cfg = kconfig.validate(MICRO)
    train_bpe(pretrain_texts(cfg, "wiki"), 512, out)
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, micro_tokenizer) -> dict:
    """The suite's one tiny-model world, built once: the micro config's samples (frames and parquet files), a
    tiny teacher (d48) and small model (d32) saved as local checkpoints, and the tokenizer. Tests read it and
    write their own outputs elsewhere."""
    from kdmem.tokenizer import load_tokenizer

    from .helpers import micro_samples, tiny_model_dir

    d = tmp_path_factory.mktemp("tiny")
    train, val = micro_samples(MICRO, micro_tokenizer)
    train.write_parquet(d / "train.parquet")
    val.write_parquet(d / "val.parquet")
    return {"dir": d, "train": train, "val": val, "tok": load_tokenizer(str(micro_tokenizer)), "tok_dir": micro_tokenizer,
            "teacher": tiny_model_dir(d / "teacher", micro_tokenizer, hidden=48, seed=1),
            "small": tiny_model_dir(d / "small", micro_tokenizer, hidden=32, seed=2)}


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """One uninterrupted local run of the long-test micro config: the tables every other run must equal."""
    from . import longrun

    work = tmp_path_factory.mktemp("reference")
    proc, seconds = longrun.local_run(work, longrun.long_micro(), umask=0o022)  # a single user's umask; the e2e run takes 002
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, longrun.fingerprint(work), seconds


@pytest.fixture(scope="session")
def micro_run(tmp_path_factory):
    """The whole Snakefile on the micro config, once per session: the end-to-end and rerun tests read it.
    It runs under umask 002, a lab's shared project folder, so the outputs' modes can be checked against it."""
    from . import longrun

    work = tmp_path_factory.mktemp("e2e")
    cfg = write_cfg(MICRO, work / "micro.yaml")
    proc = longrun.snakemake(work, "--configfile", str(cfg), "--cores", "2", "--profile", str(ROOT / "profiles" / "default"), timeout=600,
                             umask=0o002)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, proc


@pytest.fixture
def built(tmp_path):
    """The hand-made store (tests/store.py) built into a DuckDB file: (database path, its input files)."""
    from kdmem import db

    from .store import make_world

    files = make_world(tmp_path)
    out = tmp_path / "results" / "kdmem.duckdb"
    db.build(out, **files, primary={"models": ["teacher-s0", "baseline-s0", "student-T2.0-s0", "hard_student-s0", "student-T2.0-s0-cleaned"]})
    return out, files


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_models):
    """The shared tiny models (conftest.tiny_models) and a folder of this module's own for what tests write."""
    return {**tiny_models, "dir": tmp_path_factory.mktemp("train")}
