"""One config channel per rule: change a key a command reads, and exactly that rule's jobs and their
downstream rerun, on `snakemake -n` after a complete micro run.

The expected jobs are written by hand per key, as the jobs that read it ("forcerun" targets: a rule
name, or one job's output); Snakemake's own `--forcerun` adds their downstream. A slice that left
a key out would rerun too few jobs (the seed -> tokenizer bug this guards), one that took too much
would rerun too many.
"""

from __future__ import annotations

import copy
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from . import longrun
from .conftest import MICRO, write_cfg

MODELS = ["pretrain", "finetune", "evaluate_bases", "cache_logits", "generate_hard", "distill_soft", "distill_hard", "distill_cleaned", "score",
          "score_base"]  # mia reads the scores: it runs no model
TRAINING = ["pretrain", "finetune", "distill_soft", "distill_hard", "distill_cleaned"]
R = "results/tiny"
CASES = {
    # key path: (new value, the jobs that read it)
    "seed": (1, ["tokenizer", "prepare", "prepare_pretrain", "pretrain", "classify", "mia", "analyze"]),
    "device": ("cpu", MODELS),
    "parallel.fsdp_min_params": (1e9, TRAINING),
    "datasets.wiki.min_chars": (201, ["tokenizer", "prepare", "prepare_pretrain"]),
    "datasets.wiki.n_val": (17, ["prepare", "prepare_pretrain"]),
    "families.tiny.tokenizer.train.vocab_size": (520, ["tokenizer"]),
    "families.tiny.large.arch.num_layers": (3, [f"{R}/base/large"]),
    "families.tiny.small.arch.num_layers": (2, [f"{R}/base/small"]),
    "pretrain.max_tokens": (8100, ["prepare_pretrain"]),
    "pretrain.optim.lr": (2.0e-3, ["pretrain"]),
    "pretrain.by_size.small": ({"epochs": 2}, [f"{R}/base/small"]),
    "finetune.teacher.lr": (2.0e-3, [f"{R}/wiki/models/teacher-s0", f"{R}/wiki/models/teacher-s1"]),
    "finetune.baseline.epochs": (2, [f"{R}/wiki/models/baseline-s0", f"{R}/wiki/models/baseline-s1", f"{R}/wiki/models/baseline-s0-once"]),
    "distill.soft.top_k": (9, ["cache_logits"]),  # under cache: full only the kl_to_teacher feature's top-k cache reads it
    "distill.soft.cache": ("dense", ["distill_soft", "distill_cleaned"]),
    "distill.soft.optim.lr": (2.0e-3, ["distill_soft", "distill_cleaned"]),
    "distill.hard.prefix_len": (15, ["generate_hard"]),
    "distill.hard.batch_size": (8, ["generate_hard"]),
    "distill.hard.optim.lr": (2.0e-3, ["distill_hard"]),
    "memorization.batch_size": (16, ["cache_logits", "cache_logits_full", "score", "score_base"]),
    "memorization.prefix_len": (15, ["score", "score_base", "build_db"]),  # build_db: the near-copy count's suffix
    "memorization.frac": (False, ["score", "score_base"]),
    "memorization.extraction.top_k": (20, ["score", "score_base"]),
    "classifier.trials": (6, ["classify"]),
    "analysis.bootstrap": (60, ["analyze"]),
    "analysis.utility_margin": (0.1, ["analyze"]),
    "mia.k": (0.3, ["score", "score_base"]),  # Min-K % is computed in the scoring pass
    "analysis.permutations": (150, ["analyze"]),
    "analysis.near_copy_n": (6, ["build_db", "analyze"]),
    "mia.bootstrap": (20, ["mia"]),
}


def _jobs(out: str) -> list[str]:
    """(rule, wildcards) of every job a dry run lists, sorted."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", out, flags=re.M):
        wc = re.search(r"^    wildcards: (.*)$", body, flags=re.M)
        jobs.append(f"{rule} {wc[1] if wc else ''}".strip())
    return sorted(jobs)


def _dry(work: Path, cfg: dict, name: str, *args: str) -> list[str]:
    proc = longrun.snakemake(work, "--configfile", str(write_cfg(cfg, work / f"{name}.yaml")), "-n", "--cores", "1", *args, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _jobs(proc.stdout)


def _set(cfg: dict, key: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *parents, last = key.split(".")
    node = cfg
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize("key", list(CASES))
def test_changing_a_key_reruns_exactly_its_readers_and_their_downstream(micro_run, key):
    work, _ = micro_run
    value, readers = CASES[key]
    # The two dry runs are independent reads of the same finished run: side by side they take the time of one
    # (each is a single-threaded Snakemake process; the machine has two cores).
    with ThreadPoolExecutor(2) as pool:
        forced = pool.submit(_dry, work, MICRO, "forced", "--forcerun", *readers)
        changed_run = pool.submit(_dry, work, _set(MICRO, key, value), "changed")
        expected, changed = forced.result(), changed_run.result()
    assert expected, "the forcerun found no job"
    if key == "seed":  # the seed is also in the teacher's and students' names: compare the rules run
        changed, expected = ([j.split()[0] for j in jobs] for jobs in (changed, expected))
    assert changed == expected


@pytest.mark.slow
def test_a_dag_shape_key_adds_jobs_and_reruns_no_other(micro_run):
    """baseline_seeds is in no slice: a third seed adds its own jobs, and no trained model reruns."""
    work, _ = micro_run
    jobs = _dry(work, {**MICRO, "baseline_seeds": [0, 1, 2]}, "seeds")
    trained = [j for j in jobs if j.startswith(("tokenizer", "prepare", "pretrain", "finetune", "distill", "cache", "generate"))]
    assert len(trained) == 1 and trained[0].startswith("finetune") and "seed=2" in trained[0], trained


@pytest.mark.slow
def test_teacher_seeds_add_their_teachers_and_rerun_no_other_model(micro_run):
    """finetune.teacher_seeds shapes the DAG: a second teacher adds its own fine-tune (and its scores), and no other
    trained model reruns: the students distil from the first teacher."""
    work, _ = micro_run
    jobs = _dry(work, _set(MICRO, "finetune.teacher_seeds", [0, 1, 2]), "teacher-seeds")
    trained = [j for j in jobs if j.startswith(("tokenizer", "prepare", "pretrain", "finetune", "distill", "cache", "generate"))]
    assert trained == ["finetune family=tiny, dataset=wiki, role=teacher, seed=2"], trained
    assert "score family=tiny, dataset=wiki, model=teacher-s2" in jobs


@pytest.mark.slow
def test_student_seeds_add_their_students_and_rerun_no_other_model(micro_run):
    """distill.soft.seeds and distill.hard.seeds shape the DAG: a second seed of each adds exactly its own
    student (the primary, cleaned one stays on the first seed), and no trained model reruns."""
    work, _ = micro_run
    cfg = _set(_set(MICRO, "distill.soft.seeds", [0, 1, 3]), "distill.hard.seeds", [0, 1, 2])
    jobs = _dry(work, cfg, "student-seeds")
    trained = [j for j in jobs if j.startswith(("tokenizer", "prepare", "pretrain", "finetune", "distill", "cache", "generate"))]
    assert sorted(trained) == ["distill_hard family=tiny, dataset=wiki, seed=2", "distill_soft family=tiny, dataset=wiki, kd=T2.0, seed=3"], trained


@pytest.mark.slow
def test_another_loss_adds_its_student_and_another_kinds_key_reruns_nothing(micro_run):
    """distill.soft.losses shapes the DAG: a JSD student per seed adds its own jobs and no trained model reruns.
    With the micro's full cache, the sampled cache's `draws` is in no slice: changing it reruns nothing."""
    work, _ = micro_run
    jobs = _dry(work, _set(MICRO, "distill.soft.losses", ["forward_kl", "jsd"]), "losses")
    trained = [j for j in jobs if j.startswith(("tokenizer", "prepare", "pretrain", "finetune", "distill", "cache", "generate"))]
    assert sorted(trained) == [f"distill_soft family=tiny, dataset=wiki, kd=T2.0-jsd, seed={s}" for s in (0, 1)], trained
    assert _dry(work, _set(MICRO, "distill.soft.draws", 8), "draws") == []
