"""Faults on whole pipeline runs (marker `faults`, `make test-faults`; CI runs it after the suite).

- kill -9 of each long stage (pretrain, fine-tune, cache, distill, score) at a random point inside
  its work; each rerun with the workstation profile (--rerun-incomplete) goes on, training resumes
  from its last checkpoint, and the final per-sample tables equal an uninterrupted run's.
- disk full while the logit cache is written (a 16 KiB tmpfs): one clear line, nothing left behind.
- two pipelines on one results/: Snakemake's lock refuses the second and says why.
- a changed temperature reruns the student and what reads it, and nothing upstream.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from kdmem.training import CHECKPOINT_FILES

from . import longrun
from .conftest import ROOT, write_cfg

pytestmark = pytest.mark.faults

# (stage, command pattern, what must exist before the kill, the longest random delay after it in s).
# Training stages die after their first checkpoint; the cache while its shards are being written (its
# temporary folder exists); scoring after the model is loaded. The micro cache and scoring take well
# under a second of work, hence their short delays.
STAGES = [
    ("pretrain", r"kdmem pretrain .*--size large", "checkpoint", 0.4),
    ("finetune", r"kdmem finetune .*--role teacher", "checkpoint", 0.4),
    ("cache", r"kdmem cache-logits ", "cache_tmp", 0.0),
    ("distill", r"kdmem distill --mode soft", "checkpoint", 0.4),
    ("score", r"kdmem score .*--split train", "scoring", 0.05),
]


def _procs(pattern: str) -> list[tuple[int, list[str]]]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                argv = (d / "cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            # the python process itself, not the bash -c wrapper Snakemake runs it in
            if Path(argv[0]).name.startswith("python") and re.search(pattern, " ".join(argv)):
                out.append((int(d.name), argv))
    return out


def _arg(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _mid_training(ckpt: Path) -> bool:
    """The newest complete checkpoint, the one a rerun resumes from, lies before the last step: a rerun
    from the final step's checkpoint trains nothing and would not test resume.

    Not training.last_complete_checkpoint: that one deletes incomplete checkpoints, which here would be
    the live job's checkpoint still being written."""
    done = [p for p in ckpt.glob("checkpoint-*") if all((p / f).is_file() for f in CHECKPOINT_FILES)] if ckpt.is_dir() else []
    if not done:
        return False
    newest = max(done, key=lambda p: int(p.name.rsplit("-", 1)[-1]))
    try:
        state = json.loads((newest / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False  # being replaced under us: not ready yet
    return state["global_step"] < state["max_steps"]


def _ready(argv: list[str], work: Path, what: str) -> bool:
    if what == "checkpoint":
        # a complete checkpoint: killed while its first one is still being written, a job has nothing to
        # resume from (that case is the resume code's, tested in test_training), and slow machines hit it
        return _mid_training(work / _arg(argv, "--ckpt"))
    if what == "cache_tmp":
        out = work / _arg(argv, "--out")
        return any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir()) if out.parent.is_dir() else False
    log = work / _arg(argv, "--log")
    return log.is_file() and "scoring " in log.read_text()


def _kill_when_ready(proc: subprocess.Popen, work: Path, pattern: str, what: str, delay: float, rng: random.Random) -> dict | None:
    """Wait for a process of the stage to reach its work, then kill -9 it after a random delay.

    `landed` says whether the kill hit inside the work. A training job can finish its last steps within
    the delay (the micro pretrain's 16 steps take well under a second on a fast machine): killed then, it
    leaves the final checkpoint, or none once it has cleaned up, or it has already exited. Its rerun is
    right to train nothing or afresh, but that tests no resume (CI once failed on exactly this), so the
    caller starts the stage over."""
    while proc.poll() is None:
        for pid, argv in _procs(pattern):
            if _ready(argv, work, what):
                time.sleep(rng.uniform(0.0, delay))
                hit = {"pid": pid, "out": _arg(argv, "--out"), "ckpt": _arg(argv, "--ckpt")}
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    return {**hit, "landed": False}  # it finished in the meantime
                landed = what != "checkpoint" or _ready(argv, work, what)  # the process is dead: stable now
                return {**hit, "landed": landed}
        time.sleep(0.02)
    return None


def _kill_stage(work: Path, args: tuple[str, ...], stage: str, pattern: str, what: str, delay: float,
                rng: random.Random, tries: int = 4) -> dict:
    """Run the pipeline until the stage's job is killed inside its work (see _kill_when_ready)."""
    for attempt in range(tries):
        # Output to a file, not a pipe: nobody reads a pipe while the watcher polls, and a run that goes on
        # past its stage fills it and blocks its jobs on their next write.
        with open(work / f"{stage}-{attempt}.out", "w+") as out:
            proc = subprocess.Popen(longrun.snakemake_cmd(work, *args), cwd=work, env=longrun.env(),
                                    stdout=out, stderr=subprocess.STDOUT, text=True, preexec_fn=lambda: os.umask(SHARED_UMASK))
            # Retries kill at once: on a fast machine the random delay outlasted the job's last steps.
            hit = _kill_when_ready(proc, work, pattern, what, delay if attempt == 0 else 0.0, rng)
            if hit is not None and not hit["landed"]:
                proc.terminate()  # stop the run, then start the stage over from nothing
            proc.wait(timeout=900)
            out.seek(0)
            text = out.read()
        assert hit is not None, f"{stage}: the run ended before the stage was reached\n{text[-3000:]}"
        if hit["landed"]:
            assert proc.returncode != 0, f"{stage}: a killed job must fail the run"
            return {**hit, "attempts": attempt + 1}
        for path in (hit["out"], hit["ckpt"]):
            if path:
                shutil.rmtree(work / path, ignore_errors=True)
    raise AssertionError(f"{stage}: {tries} kills all landed after training ended; the stage is too short to test resume")


SHARED_UMASK = 0o002  # a lab's shared project folder: the kill/resume paths must keep group-write


def test_kill9_each_long_stage_then_rerun_equals_uninterrupted(reference_run, tmp_path):
    ref_dir, ref_print, _ = reference_run
    work = tmp_path / "chaos"
    work.mkdir()
    cfg = write_cfg(longrun.long_micro(), work / "micro.yaml")
    args = ("--configfile", str(cfg), "--cores", "2", "--profile", str(ROOT / "profiles" / "default"))
    rng = random.Random(7)
    killed = {}
    for stage, pattern, what, delay in STAGES:
        killed[stage] = _kill_stage(work, args, stage, pattern, what, delay, rng)
    final = longrun.snakemake(work, *args, umask=SHARED_UMASK)
    assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    # Killed, resumed and rerun jobs leave the modes the umask gives: group-writable here (002), and the
    # uninterrupted reference run's (022) readable by all.
    assert longrun.mode_violations(work / "results", SHARED_UMASK) == []
    assert longrun.mode_violations(ref_dir / "results", 0o022) == []

    for stage in ("pretrain", "finetune", "distill"):
        metrics = json.loads((work / killed[stage]["out"] / "metrics.json").read_text())
        assert metrics["resumed_from_step"] and 4 <= metrics["resumed_from_step"] < metrics["steps"], (stage, metrics)
    assert longrun.diff(ref_print, longrun.fingerprint(work)) == []
    leftovers = [p for p in (work / "results").rglob("*.tmp") if "/checkpoints/" not in p.as_posix()]
    assert leftovers == [], leftovers  # a killed writer's temporary is removed by the rerun
    summary = {s: {"resumed_from_step": json.loads((work / k["out"] / "metrics.json").read_text()).get("resumed_from_step")
                   if k["ckpt"] else None, "out": k["out"], "attempts": k["attempts"]} for s, k in killed.items()}
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "faults-test.json").write_text(json.dumps(summary, indent=1))


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_during_cache_write(reference_run, tmpfs):
    ref, _, _ = reference_run
    r = ref / "results" / "tiny"
    out = tmpfs / "T2.0"
    proc = subprocess.run(
        [longrun.KDMEM, "cache-logits", "--config", str(ref / "results" / ".kdmem" / "config.json"), "--family", "tiny",
         "--dataset", "wiki", "--teacher", str(r / "wiki" / "models" / "teacher-s0"), "--tokenizer", str(r / "tokenizer"),
         "--train", str(r / "wiki" / "data" / "train.parquet"), "--temperature", "2.0", "--kind", "full", "--out", str(out),
         "--log", str(ref / "disk-full.log")],
        capture_output=True, text=True, env=longrun.env(), cwd=ref, timeout=300,
    )
    # the error is the one line that is not the cache's progress bar (tqdm, "... | 2/2 [...]")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not re.search(r"\|\s*\d+/\d+ \[", ln)]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "No space left on device" in lines[0] and "free space" in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert list(tmpfs.iterdir()) == []  # no cache, no temporary shard, no meta.json claiming completeness


def test_second_pipeline_on_same_results_is_refused(tmp_path):
    work = tmp_path / "locked"
    work.mkdir()
    cfg = write_cfg(longrun.long_micro(), work / "micro.yaml")
    args = ("--configfile", str(cfg), "--cores", "1")
    first = subprocess.Popen(longrun.snakemake_cmd(work, *args), cwd=work, env=longrun.env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        locks = work / ".snakemake" / "locks"
        deadline = time.time() + 120
        while not (locks.is_dir() and any(locks.iterdir())):
            assert time.time() < deadline and first.poll() is None, "the first pipeline never took its lock"
            time.sleep(0.2)
        second = longrun.snakemake(work, *args, timeout=120)
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
    assert second.returncode != 0
    assert "Directory cannot be locked" in second.stderr + second.stdout
    assert not (work / "results" / "kdmem.duckdb").exists()


def test_changed_temperature_reruns_only_the_student_side(reference_run, tmp_path):
    ref, _, _ = reference_run
    cfg = longrun.long_micro()
    cfg["distill"]["soft"]["temperatures"] = [3.0]
    cfg["analysis"]["primary_temperature"] = 3.0
    path = write_cfg(cfg, tmp_path / "t3.yaml")
    proc = longrun.snakemake(ref, "--configfile", str(path), "-n", "--cores", "1", "--rerun-triggers", "mtime", "params", "input")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    rules = set(re.findall(r"^rule (\w+):", out, flags=re.M))
    # the student's cache rule is the one of the micro's cache kind (cache_logits_full for `full`)
    cache_rule = {"topk": "cache_logits"}.get(cfg["distill"]["soft"]["cache"], f"cache_logits_{cfg['distill']['soft']['cache']}")
    assert {cache_rule, "distill_soft", "score"} <= rules, rules
    assert not rules & {"tokenizer", "prepare", "prepare_pretrain", "pretrain", "finetune", "generate_hard", "distill_hard"}, rules
    # A dry run writes nothing (config.json is written in onstart), so the reference is left as it was.
