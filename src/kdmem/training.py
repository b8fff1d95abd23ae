"""Training loops on the HF Trainer: CE (pretrain, fine-tune, hard KD) and soft KD (cached or online).

The HF Trainer gives gradient accumulation, mixed precision, distributed training (accelerate /
torchrun) and checkpoint resume; kdmem only swaps in its loss. Every loss is a per-token mean over
the shifted positions, with logits sliced to the family's shared vocabulary.

Resume: checkpoints go to a folder outside the Snakemake output, so a killed job's rerun finds them
and continues from the last one (model weights are safetensors; optimizer and RNG state are the
Trainer's own files, written by this run and read back with torch's weights-only loader).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback, TrainingArguments

from kdmem.args import KDArgs, OptimArgs
from kdmem.errors import KdmemError
from kdmem.io import atomic_path, write_json
from kdmem.kd import dense_kd_sum, full_forward_kl_sum, sampled_kd_sum, topk_kd_sum
from kdmem.launch import world_size
from kdmem.models import Device, evaluate_loss, fingerprint, n_params

log = logging.getLogger(__name__)


class SampleDataset(torch.utils.data.Dataset):
    """Samples of a parquet, each repeated n_exposures times (one epoch = the duplication profile)."""

    def __init__(self, df: pl.DataFrame, expand: bool = True, cache_rows: list[int] | None = None):
        self.ids = np.asarray(df["input_ids"].to_list(), dtype=np.int64)  # (n, L)
        reps = df["n_exposures"].to_numpy() if expand and "n_exposures" in df.columns else np.ones(df.height, dtype=int)
        self.index = np.repeat(np.arange(df.height), reps)
        self.cache_rows = cache_rows

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        r = int(self.index[i])
        item = {"input_ids": torch.from_numpy(self.ids[r])}
        if self.cache_rows is not None:
            item["cache_row"] = self.cache_rows[r]
        return item


class Collator:
    def __init__(self, cache=None):
        self.cache = cache

    def __call__(self, items: list[dict]) -> dict:
        batch = {"input_ids": torch.stack([it["input_ids"] for it in items])}
        if self.cache is not None:
            batch.update(self.cache.get([it["cache_row"] for it in items]))
        return batch


class KdmemTrainer(Trainer):
    """mode: 'ce' (cross-entropy), 'cache' (KD from the top-k, sampled or full cache), 'online' (KD, teacher in the step: dense)."""

    def __init__(self, *args, mode: str, vocab: int, kd: KDArgs | None = None, teacher=None, **kwargs):
        super().__init__(*args, **kwargs)
        if mode != "ce" and kd is None:
            raise KdmemError(f"training mode {mode} distills: it needs KDArgs")
        self.mode, self.vocab, self.kd, self.teacher = mode, vocab, kd, teacher
        # Our loss is already a per-token mean; let the Trainer scale it for gradient accumulation.
        self.model_accepts_loss_kwargs = False

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # The Trainer reloads a checkpoint's weights with a bare load_state_dict(strict=False), which
        # skips the key renames from_pretrained applies (transformers#43701): GPT-NeoX saves its head as
        # `embed_out` but names it `lm_head` live, so on resume the head silently kept its pre-training
        # weights (measured: val loss 5.60 instead of 5.33). Load through from_pretrained, strictly.
        if self.is_fsdp_enabled:  # FSDP checkpoints are saved and read with live names
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        model = model if model is not None else self.model
        saved = type(model).from_pretrained(resume_from_checkpoint, use_safetensors=True, dtype=next(model.parameters()).dtype)
        model.load_state_dict(saved.state_dict(), strict=True)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        x = inputs["input_ids"]  # (B, L)
        logits = model(input_ids=x).logits[:, :-1, : self.vocab]  # (B, L-1, V)
        t_logits = None
        if self.mode == "online":
            with torch.no_grad():
                t_logits = self.teacher(input_ids=x).logits[:, :-1, : self.vocab]
        loss = batch_loss(logits, x, self.mode, self.kd, inputs, t_logits)
        return (loss, {"logits": logits}) if return_outputs else loss


def batch_loss(logits: torch.Tensor, x: torch.Tensor, mode: str, kd: KDArgs | None, teacher: dict, t_logits: torch.Tensor | None = None) -> torch.Tensor:
    """One batch's training loss, a mean per predicted token: cross-entropy (mode ce), or the KD divergence at T
    times T² plus alpha_ce of cross-entropy, against the teacher as the batch carries it (`teacher`: a cache's
    arrays, mode cache) or as `t_logits` (B, L-1, V) (mode online). logits: the student's (B, L-1, V); x the ids (B, L)."""
    vocab = logits.shape[-1]
    flat = logits.reshape(-1, vocab)  # (N, V)
    n = flat.shape[0]
    alpha = kd.alpha_ce if mode != "ce" else 1.0
    loss = flat.new_zeros(())
    if alpha > 0:
        loss = loss + alpha * F.cross_entropy(flat.float(), x[:, 1:].reshape(-1))
    if mode == "ce":
        return loss
    t, kind, beta, chunk = kd.temperature, kd.loss, kd.jsd_beta, kd.kl_chunk
    if mode == "cache" and "t_full_logp" in teacher and kind == "forward_kl":
        # The paper's loss from the full cache: the dense loss's value and gradient in fewer passes (kd.full_forward_kl_sum).
        plogp = teacher["t_full_plogp"].reshape(n) if "t_full_plogp" in teacher else None
        div = full_forward_kl_sum(flat, teacher["t_full_logp"].reshape(n, vocab), t, chunk, plogp)
    elif mode == "cache" and "t_full_logp" in teacher:
        # log_softmax(T * logp_T / T) renormalises the float16 log-probs: the exact dense loss.
        div = dense_kd_sum(flat, teacher["t_full_logp"].reshape(n, vocab) * t, t, kind, beta, chunk)
    elif mode == "cache" and "t_draw_ids" in teacher:  # sampled cache: forward KL only (config checks)
        div = sampled_kd_sum(flat, teacher["t_draw_ids"].reshape(n, -1), teacher["t_draw_counts"].reshape(n, -1), t, chunk)
    elif mode == "cache":
        k = teacher["t_ids"].shape[-1]
        div = topk_kd_sum(flat, teacher["t_ids"].reshape(n, k), teacher["t_logp"].reshape(n, k), teacher["t_tail"].reshape(n),
                          t, kind, beta, chunk, kd.tail)
    else:
        div = dense_kd_sum(flat, t_logits.reshape(n, vocab), t, kind, beta, chunk)
    return loss + (1 - alpha) * t * t * div / n


class _LogToFile(TrainerCallback):
    """Loss, lr and tokens/s per logging step into the job's log file (the Trainer prints only to a bar)."""

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step, self.t0, self.step0 = tokens_per_step, time.time(), 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        now = time.time()
        if logs is not None and "loss" in logs:
            tps = (state.global_step - self.step0) * self.tokens_per_step / max(now - self.t0, 1e-9)
            logs["tokens_per_s"] = round(tps, 1)
            log.info("step %d/%d %s", state.global_step, state.max_steps, json.dumps(logs))
        self.t0, self.step0 = now, state.global_step


CHECKPOINT_FILES = ("trainer_state.json", "model.safetensors", "optimizer.pt", "scheduler.pt")


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint with every file written. A kill during a save leaves a partial folder,
    which the Trainer would refuse ("Can't find a valid checkpoint"); it is removed instead."""
    if not ckpt_dir.is_dir():
        return None
    found = sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]), reverse=True)
    for c in found:
        if all((c / f).is_file() for f in CHECKPOINT_FILES):
            return str(c)
        log.warning("removing incomplete checkpoint %s (the run was killed while saving it)", c)
        shutil.rmtree(c, ignore_errors=True)
    return None


def per_device_batch(batch_size: int, world: int) -> int:
    """The config's batch_size is the global batch (per optimizer micro-step), whatever the GPU count,
    so a run on 8 GPUs follows the same protocol as one on a CPU."""
    if batch_size % world:
        raise KdmemError(f"config: batch_size {batch_size} cannot be split over {world} processes; make it a multiple of the job's gpu count")
    return batch_size // world


def distributed_args(model, dev: Device, world: int, fsdp: bool) -> dict:
    if world <= 1:
        return {}
    out: dict = {"ddp_backend": "nccl" if dev.is_cuda else "gloo"}
    if fsdp:
        # One FSDP unit per decoder layer (the class HF marks as never to be split), activation checkpointing on.
        out.update(fsdp=True, fsdp_config={"version": 2, "transformer_layer_cls_to_wrap": list(model._no_split_modules or []),
                                           "activation_checkpointing": True, "state_dict_type": "FULL_STATE_DICT"})
    return out


def train_model(
    *, model, tok, vocab: int, train_df: pl.DataFrame, val_df: pl.DataFrame, optim: OptimArgs, seed: int,
    out_dir: str | Path, ckpt_dir: str | Path, dev: Device, mode: str = "ce", cache=None,
    teacher=None, kd: KDArgs | None = None, meta: dict | None = None, expand: bool = True, fsdp_min_params: float = 7e9,
) -> dict:
    """Train, evaluate on validation, and save model + metrics.json + train_log.jsonl atomically."""
    if train_df.height == 0:
        raise KdmemError("the training set is empty; check the prepare step's n_train and the removal step")
    cache_rows = cache.rows(train_df["sample_id"].to_list()) if cache is not None else None
    ds = SampleDataset(train_df, expand=expand, cache_rows=cache_rows)
    seq_len = ds.ids.shape[1]
    steps_per_epoch = math.ceil(len(ds) / (optim.batch_size * optim.grad_accum))
    total_steps = max(1, math.ceil(steps_per_epoch * optim.epochs))
    ckpt_dir = Path(ckpt_dir)
    world = world_size()
    fsdp = world > 1 and n_params(model) >= fsdp_min_params
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=per_device_batch(optim.batch_size, world),
        gradient_accumulation_steps=optim.grad_accum,
        learning_rate=optim.lr,
        lr_scheduler_type=optim.schedule,
        warmup_steps=int(optim.warmup_ratio * total_steps),
        num_train_epochs=optim.epochs,
        weight_decay=optim.weight_decay,
        max_grad_norm=optim.max_grad_norm,
        logging_steps=max(1, min(50, total_steps // 20)),
        save_strategy="steps",
        save_steps=optim.save_steps,
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        full_determinism=not dev.is_cuda,  # bit-identical runs on CPU; GPU kernels stay fast
        bf16=dev.dtype == torch.bfloat16,  # CUDA's path; on the CPU only with device: cpu_bf16
        tf32=True if dev.is_cuda else None,
        use_cpu=not dev.is_cuda,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        **distributed_args(model, dev, world, fsdp),
    )
    if teacher is not None:
        teacher.to(dev.device).eval()
    trainer = KdmemTrainer(
        model=model, args=args, train_dataset=ds, data_collator=Collator(cache), mode=mode, vocab=vocab, kd=kd,
        teacher=teacher, callbacks=[_LogToFile(optim.batch_size * optim.grad_accum * seq_len)],
    )
    last = last_complete_checkpoint(ckpt_dir)
    resumed_from = int(last.rsplit("-", 1)[-1]) if last else None
    if last:
        log.info("resuming from %s", last)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - t0
    done_steps = trainer.state.global_step - (resumed_from or 0)
    tokens = done_steps * optim.batch_size * optim.grad_accum * seq_len
    metrics = {
        **(meta or {}),
        **evaluate_loss(trainer.model, val_df, vocab, dev),
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "resumed_from_step": resumed_from,
        "epochs": optim.epochs,
        "train_sequences_per_epoch": len(ds),
        "train_seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
        "n_params": n_params(trainer.model),
        "mode": mode,
        "mixed_precision": "bf16" if args.bf16 else "fp32",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # FSDP: every rank takes part in gathering the full weights; rank 0 alone writes them.
    state_dict = trainer.accelerator.get_state_dict(trainer.model) if fsdp else None
    metrics.update({"world_size": world, "fsdp": fsdp})
    if not trainer.is_world_process_zero():
        return metrics
    with atomic_path(out_dir, is_dir=True) as tmp:
        trainer.model.save_pretrained(str(tmp), state_dict=state_dict)
        tok.save_pretrained(str(tmp))
        metrics["fingerprint"] = fingerprint(tmp)
        write_json(metrics, tmp / "metrics.json")
        with open(tmp / "train_log.jsonl", "w") as fh:
            for rec in trainer.state.log_history:
                fh.write(json.dumps(rec) + "\n")
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # done: the checkpoints are no longer needed
    log.info("trained %s: %s", out_dir, metrics)
    return metrics
