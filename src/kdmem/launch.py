"""Multi-GPU launch: a training command with --nproc N > 1 re-executes itself under torchrun.

Snakemake rules stay one `kdmem` command: the rule passes its `gpu` resource as --nproc, and the
command becomes N processes, one per GPU, that the HF Trainer runs as DDP, or as FSDP (full
sharding, one unit per decoder layer) when the model has at least parallel.fsdp_min_params
parameters, e.g. the paper's 12B / 8B / 7B teachers, whose AdamW state does not fit one GPU.
Rank 0 alone writes the outputs; the global batch stays the config's (see training.per_device_batch).
"""

from __future__ import annotations

import json
import os
import sys


def in_distributed_run() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


ARGV_ENV = "KDMEM_TORCHRUN_ARGV"


def relaunch_distributed(nproc: int, argv: list[str]) -> None:
    """exec torchrun running this same command; a no-op when already inside torchrun.

    The command line travels in an environment variable, not after `-m kdmem.cli`: torchrun's
    argparse scans every argument for its own options, so kdmem's --role or --log would be taken
    (or refused as ambiguous) by torchrun itself.
    """
    if in_distributed_run():
        return
    os.environ[ARGV_ENV] = json.dumps(argv)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m", "kdmem.cli"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, cmd)


def distributed_argv() -> list[str] | None:
    """Inside torchrun, the command line relaunch_distributed handed over."""
    if not (in_distributed_run() and ARGV_ENV in os.environ):
        return None
    die_with_parent()
    return json.loads(os.environ[ARGV_ENV])


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this rank when the torchrun agent that started it dies. torchrun starts each rank
    in a session of its own, so a kill -9 of the job's command (what a user or a scheduler without cgroups
    sends) would leave the ranks training on: they would finish, delete the checkpoints a rerun resumes
    from, and race the rerun for the same output. Elsewhere than Linux this is a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the agent died before the request took effect
        os._exit(1)
