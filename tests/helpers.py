"""Real tiny objects for tests: GPT-NeoX models saved as HF folders, and prepared samples."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from kdmem import config as kconfig
from kdmem.data import prepare
from kdmem.models import build_scratch
from kdmem.tokenizer import load_tokenizer


def tiny_model_dir(path: Path, tok_dir: Path, hidden: int = 32, layers: int = 1, seed: int = 0, vocab: int | None = None) -> Path:
    """Save a tiny GPT-NeoX (a locally saved Pythia-config stand-in for a hub checkpoint)."""
    tok = load_tokenizer(str(tok_dir))
    model = build_scratch({"hidden_size": hidden, "num_layers": layers, "num_heads": 2, "intermediate_size": 2 * hidden}, vocab or len(tok), 64, seed, tok.eos_token_id)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def micro_samples(cfg_dict: dict, tok_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    cfg = kconfig.validate(cfg_dict)
    out = prepare(cfg, "wiki", load_tokenizer(str(tok_dir)))
    return out["train"], out["val"]
