"""Tokenizers: train a byte-level BPE for scratch families, or load a checkpoint's own.

A family's teacher and small model must share one vocabulary (the KL is taken over it), so the
tokenizer belongs to the family, not to a model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from kdmem.errors import KdmemError

EOS = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: Path) -> None:
    """Train a byte-level BPE (GPT-2/Pythia style) and save it as a HF tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS, pad_token=EOS)
    fast.save_pretrained(str(out_dir))


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """AutoTokenizer by hub name or local folder; a missing local path is one clear line."""
    from transformers import AutoTokenizer

    p = Path(name_or_path)
    looks_local = name_or_path.startswith((".", "/", "~")) or p.exists() or name_or_path.count("/") > 1
    if looks_local and not p.exists():
        raise KdmemError(f"tokenizer path {name_or_path} does not exist; fix the family's tokenizer (hub name or local folder)")
    try:
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise KdmemError(f"cannot load tokenizer {name_or_path}: {str(e).splitlines()[0]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def vocab_fingerprint(tok) -> str:
    """Hash of the token -> id map: two tokenizers with equal fingerprints give equal ids."""
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]


def local_vocab_fingerprint(path: str) -> str | None:
    """Fingerprint of a local checkpoint folder's tokenizer.json, or None if it is not local."""
    f = Path(path) / "tokenizer.json"
    if not f.is_file():
        return None
    model = json.loads(f.read_text()).get("model", {})
    return hashlib.sha256(json.dumps(model.get("vocab"), sort_keys=True).encode()).hexdigest()[:16]
