"""Multi-GPU launch: a training command with --nproc N > 1 re-executes itself under torchrun.

Snakemake rules stay one `kdmem` command: the rule passes its `gpu` resource as --nproc, and the
command becomes N processes, one per GPU, that the HF Trainer runs as DDP, or as FSDP (full
sharding, one unit per decoder layer) when the model has at least parallel.fsdp_min_params
parameters, e.g. the paper's 12B / 8B / 7B teachers, whose AdamW state does not fit one GPU.
Rank 0 alone writes the outputs; the global batch stays the config's (see training.per_device_batch).
"""

from __future__ import annotations

import os
import sys


def in_distributed_run() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def relaunch_distributed(nproc: int, argv: list[str]) -> None:
    """exec torchrun with this same command line; a no-op when already inside torchrun."""
    if in_distributed_run():
        return
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "kdmem.cli", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)
