"""Models of a family: built from scratch (GPT-NeoX, Pythia's architecture, or Llama, OLMo-2's and Qwen-3's kind)
or a checkpoint by hub name / path.

Security: weights load from safetensors only (a pickle-based .bin can run code on load), and
`trust_remote_code` stays off unless the family's config turns it on.
The device is picked here and nowhere else: CUDA with bf16 autocast where present, CPU fp32 otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
import torch.nn.functional as F

from kdmem.errors import KdmemError
from kdmem.io import sha256_dir
from kdmem.settings import Arch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for fp32

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def pick_device(choice: str = "auto") -> Device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise KdmemError("config: device is cuda but no CUDA device is visible; set device: auto or run on a GPU node")
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        if "LOCAL_RANK" in os.environ:  # under torchrun: "cuda" means this process's own GPU
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return Device(torch.device("cuda"), torch.bfloat16)
    if choice == "cpu_bf16":  # the GPU's mixed precision on the CPU: exercises the bf16 code path without a GPU
        return Device(torch.device("cpu"), torch.bfloat16)
    return Device(torch.device("cpu"), None)


def build_scratch(arch: Arch, vocab_size: int, max_len: int, seed: int, eos_id: int):
    """A fresh model of the configured widths: GPT-NeoX (Pythia's architecture, the default) or Llama
    (OLMo-2's and Qwen-3's kind: RMSNorm, SwiGLU MLP, full rotary, sequential residual), so a study can
    compare two architecture families trained on the same data."""
    import transformers

    torch.manual_seed(seed)
    common = {
        "vocab_size": vocab_size, "hidden_size": arch.hidden_size, "num_hidden_layers": arch.num_layers,
        "num_attention_heads": arch.num_heads, "intermediate_size": arch.intermediate_size,
        "max_position_embeddings": max(2048, max_len), "tie_word_embeddings": False, "attention_dropout": 0.0,
        "bos_token_id": eos_id, "eos_token_id": eos_id, "pad_token_id": eos_id,
    }
    if arch.type == "llama":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(**common))
    cfg = transformers.GPTNeoXConfig(**common, rotary_pct=0.25, use_parallel_residual=True, hidden_dropout=0.0)
    return transformers.GPTNeoXForCausalLM(cfg)


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1


def check_checkpoint(name_or_path: str) -> None:
    """A local checkpoint must exist and hold safetensors weights; pickle-only folders are refused."""
    if not _looks_local(name_or_path):
        return
    p = Path(name_or_path).expanduser()
    if not p.is_dir():
        raise KdmemError(f"checkpoint {name_or_path} does not exist; fix the family's checkpoint path or hub name")
    if not any(p.glob("*.safetensors")):
        pickles = [f.name for f in p.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt")]
        if pickles:
            raise KdmemError(
                f"checkpoint {name_or_path} has only pickle weights ({', '.join(sorted(pickles))}); kdmem loads safetensors only: "
                "convert it (model.save_pretrained(dir) writes safetensors)"
            )
        raise KdmemError(f"checkpoint {name_or_path} has no weights (*.safetensors); point it at a saved model folder")


def load_model(name_or_path: str, trust_remote_code: bool = False, revision: str | None = None):
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on stderr would bury kdmem's one-line errors
    check_checkpoint(name_or_path)
    try:
        AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise KdmemError(
                f"checkpoint {name_or_path} needs its own code (trust_remote_code); enable it for this family only if you trust it"
            ) from None
        raise KdmemError(f"cannot read the config of checkpoint {name_or_path}: {str(e).splitlines()[0]}") from None
    except OSError as e:
        raise KdmemError(f"cannot load checkpoint {name_or_path}: {str(e).splitlines()[0]}") from None
    try:
        return AutoModelForCausalLM.from_pretrained(
            name_or_path, revision=revision, trust_remote_code=trust_remote_code, use_safetensors=True, dtype=torch.float32
        )
    except OSError as e:
        raise KdmemError(f"cannot load weights of {name_or_path} (safetensors only): {str(e).splitlines()[0]}") from None


def shared_vocab(model, tok, what: str) -> int:
    """The number of logits to use: the tokenizer's vocabulary.

    A checkpoint may pad its embedding matrix beyond the tokenizer (Pythia pads 50277 -> 50304 for
    speed). The padded rows are never targets, so logits are sliced to the tokenizer's ids (as
    torchtune's maintainers advise) and the KL is taken over the ids both models share. Fewer rows
    than the tokenizer has is a true mismatch.
    """
    rows = model.get_input_embeddings().weight.shape[0]
    n_tok = len(tok)
    if rows < n_tok:
        raise KdmemError(
            f"{what}: vocab mismatch, the model has {rows} embedding rows but the tokenizer has {n_tok} tokens; "
            "teacher, student and tokenizer must share one vocabulary"
        )
    if rows > n_tok:
        log.info("%s: embedding padded to %d rows; using the tokenizer's %d ids", what, rows, n_tok)
    return n_tok


def fingerprint(model_dir: str | Path) -> str:
    """Hash of a saved model folder's weights and config; for hub names, the name itself."""
    p = Path(model_dir)
    return sha256_dir(p) if p.is_dir() else f"hub:{model_dir}"


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def evaluate_loss(model, df: pl.DataFrame, vocab: int, dev: Device, batch_size: int = 64) -> dict:
    """Mean next-token CE (and perplexity) over every position of every sample."""
    model.to(dev.device).eval()
    total, count = 0.0, 0
    for s in range(0, df.height, batch_size):
        x = torch.tensor(df["input_ids"].slice(s, batch_size).to_list(), device=dev.device)
        with dev.autocast():
            logits = model(input_ids=x).logits[:, :-1, :vocab]
        total += F.cross_entropy(logits.float().reshape(-1, vocab), x[:, 1:].reshape(-1), reduction="sum").item()
        count += x[:, 1:].numel()
    loss = total / count
    return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50))}
