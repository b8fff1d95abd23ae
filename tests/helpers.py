"""Real tiny objects for tests: GPT-NeoX models saved as HF folders, and prepared samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from kdmem import config as kconfig
from kdmem.args import KDArgs, OptimArgs
from kdmem.data import prepare
from kdmem.models import build_scratch, load_model, pick_device
from kdmem.settings import Arch, Memorization
from kdmem.tokenizer import load_tokenizer
from kdmem.training import train_model
from kdmem.vocab import Loss

from .conftest import MICRO

# The schema's own defaults (the micro config sets no other memorization or mia key): what a test scores with
# unless it says otherwise, so that no test keeps a second copy of a default.
_SCHEMA_CFG = kconfig.validate({**MICRO, "memorization": {"prefix_len": 16, "suffix_len": 16}})
MIN_K = _SCHEMA_CFG["mia"]["k"]


def mem_settings(prefix_len: int, suffix_len: int, **changes) -> Memorization:
    """The schema's memorization settings with a test's window (and any other field changed)."""
    return dataclasses.replace(Memorization.of(_SCHEMA_CFG), prefix_len=prefix_len, suffix_len=suffix_len, **changes)


def tiny_model_dir(path: Path, tok_dir: Path, hidden: int = 32, layers: int = 1, seed: int = 0, vocab: int | None = None) -> Path:
    """Save a tiny GPT-NeoX (a locally saved Pythia-config stand-in for a hub checkpoint)."""
    tok = load_tokenizer(str(tok_dir))
    model = build_scratch(Arch("gpt_neox", hidden, layers, 2, 2 * hidden), vocab or len(tok), 64, seed, tok.eos_token_id)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def micro_samples(cfg_dict: dict, tok_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    cfg = kconfig.validate(cfg_dict)
    out = prepare(cfg, "wiki", load_tokenizer(str(tok_dir)))
    return out["train"], out["val"]


# A short constant-rate run and the paper's KD loss at T = 2: what the training and cache tests train with.
OPTIM = {"lr": 3e-3, "schedule": "constant", "epochs": 1, "batch_size": 16, "grad_accum": 1, "warmup_ratio": 0.0,
         "weight_decay": 0.0, "max_grad_norm": 1.0, "save_steps": 1000}
KD = KDArgs(temperature=2.0, loss=Loss.FORWARD_KL, alpha_ce=0.0, jsd_beta=0.5, kl_chunk=64, tail="uniform")
CPU = pick_device("cpu")


def train_tiny(world: dict, out: Path, seed: int = 0, epochs: int = 1, **kw) -> dict:
    """Train the world's small model on its samples (conftest.world), checkpoints beside `out`."""
    model = load_model(str(world["small"]))
    return train_model(
        model=model, tok=world["tok"], vocab=len(world["tok"]), train_df=world["train"], val_df=world["val"],
        optim=OptimArgs(**{**OPTIM, "epochs": epochs}), seed=seed, out_dir=out, ckpt_dir=Path(str(out) + ".ckpt"), dev=CPU, **kw,
    )



