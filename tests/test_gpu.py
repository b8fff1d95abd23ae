"""The CUDA path (marker `gpu`): skipped on a machine without CUDA, so the CPU suite always runs.

Run on a GPU machine with `pytest -m gpu tests/test_gpu.py`. It checks what the CPU suite cannot:
bf16 autocast and TF32 are on, a training run on the GPU lands its model, and the one-pass
memorization verdicts on the GPU agree with greedy generation there, as they do on the CPU.
"""

from __future__ import annotations

import pytest
import torch

from kdmem.args import OptimArgs
from kdmem.models import load_model, pick_device
from kdmem.scoring import score_samples
from kdmem.tokenizer import load_tokenizer
from kdmem.training import train_model

from .conftest import MICRO
from .helpers import MIN_K, mem_settings, micro_samples, tiny_model_dir

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_cuda_device_uses_bf16_and_tf32():
    dev = pick_device("auto")
    assert dev.is_cuda and dev.dtype == torch.bfloat16
    assert torch.backends.cuda.matmul.allow_tf32


def test_train_and_score_on_gpu(tmp_path, micro_tokenizer):
    dev = pick_device("cuda")
    tok = load_tokenizer(str(micro_tokenizer))
    train, val = micro_samples(MICRO, micro_tokenizer)
    base = tiny_model_dir(tmp_path / "base", micro_tokenizer, hidden=64, layers=2)
    optim = OptimArgs(**{"lr": 3e-3, "schedule": "constant", "epochs": 20, "batch_size": 16, "grad_accum": 1, "warmup_ratio": 0.0,
                           "weight_decay": 0.0, "max_grad_norm": 1.0, "save_steps": 10000})
    metrics = train_model(model=load_model(str(base)), tok=tok, vocab=len(tok), train_df=train, val_df=val, optim=optim,
                          seed=0, out_dir=tmp_path / "m", ckpt_dir=tmp_path / "ck", dev=dev, meta={"role": "baseline"})
    assert metrics["steps"] > 0 and (tmp_path / "m" / "model.safetensors").is_file()
    sc = score_samples(load_model(str(tmp_path / "m")), tok, dev, train, len(tok), mem_settings(16, 16, batch_size=32), MIN_K)
    assert sc.height == train.height
    assert (sc["exact"] == sc["exact_gen"]).mean() >= 0.98  # bf16 may flip a near-tie; CPU fp32 agrees on every sample
