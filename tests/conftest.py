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

MICRO = {
    "results": "results",
    "seed": 0,
    "datasets": {
        "wiki": {
            "source": "local",
            "path": str(CORPUS),
            "text_field": "text",
            "id_field": "doc_id",
            "min_chars": 200,
            "seq_len": 32,
            "n_train": 48,
            "n_val": 16,
            "val_frac": 0.1,
            "pretrain_frac": 0.5,
            "exposures": [{"count": 1, "share": 0.5}, {"count": 8, "share": 0.5}],
        }
    },
    "families": {
        "tiny": {
            "tokenizer": {"train": {"vocab_size": 512}},
            "teacher": {"init": "scratch", "arch": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}},
            "small": {"init": "scratch", "arch": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
        }
    },
    "pretrain": {"dataset": "wiki", "max_tokens": 8000, "optim": {"lr": 3e-3, "epochs": 1, "batch_size": 16, "save_steps": 1000}},
    "finetune": {
        "teacher": {"lr": 3e-3, "epochs": 3, "batch_size": 16},
        "baseline": {"lr": 3e-3, "epochs": 3, "batch_size": 16},
    },
    "baseline_seeds": [0, 1],
    "distill": {
        "soft": {"temperatures": [2.0], "top_k": 8, "optim": {"lr": 3e-3, "epochs": 3, "batch_size": 16}},
        "hard": {"prefix_len": 16, "optim": {"lr": 3e-3, "epochs": 3, "batch_size": 16}},
    },
    "memorization": {"prefix_len": 16, "suffix_len": 16, "batch_size": 32},
    "classifier": {"trials": 5, "min_positives": 2},
    "analysis": {"bootstrap": 50},
}


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
def reference_run(tmp_path_factory):
    """One uninterrupted local run of the long-test micro config: the tables every other run must equal."""
    from . import longrun

    work = tmp_path_factory.mktemp("reference")
    proc, seconds = longrun.local_run(work, longrun.long_micro())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work, longrun.fingerprint(work), seconds
