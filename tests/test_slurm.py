"""The micro pipeline through a real single-node SLURM (tests/slurm/start_slurm.sh), with the shipped profile.

`make test-slurm` (and CI) runs this; the plain suite skips it (marker `slurm`). The profile is
profiles/slurm/config.yaml with only what a site sets once changed: partition, account, no GPU
request, memory and runtime that fit this 2-core node, and squeue as the status command because
this SLURM has no accounting database. During the run the teacher's fine-tune job is cancelled
with `scancel` once it has a checkpoint; the profile's retries resubmit it and it must resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from kdmem.training import CHECKPOINT_FILES

from . import longrun
from .conftest import ROOT, write_cfg

pytestmark = pytest.mark.slurm
SLURM_DIR = Path(os.environ.get("KDMEM_SLURM_DIR", "/tmp/kdmem-slurm"))


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0 and not shutil.which("slurmctld"):
        pytest.skip("needs root (to install and start SLURM) or a running SLURM")
    proc = subprocess.run(["bash", str(ROOT / "tests" / "slurm" / "start_slurm.sh")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return SLURM_DIR


def site_profile(dest: Path) -> Path:
    """The shipped SLURM profile with the site values a user sets once, for this 2-core node."""
    prof = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    prof["default-resources"].update({"slurm_partition": "debug", "slurm_account": "kdmem", "mem_mb": 3000, "runtime": 30})
    prof["default-resources"].pop("cpus_per_task", None)  # a 2-core node: each job asks for its rule's threads
    for res in prof["set-resources"].values():
        for key in ("gpu", "gpu_model", "cpus_per_gpu"):
            res.pop(key, None)
        res.update({"mem_mb": 3000, "runtime": 30})
    prof.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 2, "jobs": 4,
                 "slurm-logdir": str(dest / "slurm-logs"), "latency-wait": 10})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return dest


def _cancel_teacher_once(work: Path, stop: threading.Event, record: dict) -> None:
    """scancel the teacher fine-tune's SLURM job after its first checkpoint appears."""
    ckpt = work / "results" / "tiny" / "wiki" / "checkpoints" / "teacher-s0"
    while not stop.is_set():
        # a complete checkpoint (every file written): cancelled during its first save, a job has nothing to resume from
        if ckpt.is_dir() and any(p.name.startswith("checkpoint-") and all((p / f).is_file() for f in CHECKPOINT_FILES)
                                 for p in ckpt.iterdir()):
            pids = subprocess.run(["pgrep", "-f", "kdmem finetune.*--role teacher"], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                except OSError:
                    continue
                job = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"SLURM_JOB_ID=")), None)
                if job:
                    subprocess.run(["scancel", job], check=False)
                    record["cancelled_job"] = job
                    return
        time.sleep(0.05)


def test_micro_pipeline_through_slurm_matches_local(slurm, reference_run, tmp_path):
    ref_dir, ref_print, ref_seconds = reference_run
    work = tmp_path / "slurm-run"
    work.mkdir()
    cfg = write_cfg(longrun.long_micro(), work / "micro.yaml")
    profile = site_profile(tmp_path / "profile")
    stop, record = threading.Event(), {}
    watcher = threading.Thread(target=_cancel_teacher_once, args=(work, stop, record), daemon=True)
    watcher.start()
    t0 = time.time()
    # A hung plugin ignores SIGTERM; subprocess's timeout kills.
    proc = longrun.snakemake(work, "--configfile", str(cfg), "--profile", str(profile), timeout=2400, slurm=True)
    seconds = time.time() - t0
    stop.set()
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    slurm_jobs = sorted(set(re.findall(r"SLURM jobid (\d+)", out)), key=int)

    assert len(slurm_jobs) >= 20, slurm_jobs
    assert record.get("cancelled_job"), "the teacher's job was never cancelled"
    metrics = json.loads((work / "results" / "tiny" / "wiki" / "models" / "teacher-s0" / "metrics.json").read_text())
    assert metrics["resumed_from_step"] and metrics["resumed_from_step"] >= 4, metrics
    got = longrun.fingerprint(work)
    assert longrun.diff(ref_print, got) == []
    summary = {"slurm_seconds": round(seconds, 1), "local_seconds": round(ref_seconds, 1), "tables_compared": len(got),
               "cancelled_job": record["cancelled_job"], "teacher_resumed_from_step": metrics["resumed_from_step"],
               "slurm_jobs_submitted": len(slurm_jobs)}
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "slurm-test.json").write_text(json.dumps(summary, indent=1))
    print(summary)
