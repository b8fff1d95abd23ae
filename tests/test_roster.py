"""kdmem.roster: one ModelSpec per model, names that round-trip, and the roster of every tracked config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kdmem import config as kconfig
from kdmem.roster import ModelSpec, kd_tag, model_name, parse_kd_tag, roster
from kdmem.vocab import BASE_ROLE, KD_TAG, DataVariant, Label, Role, Size

ROOT = Path(__file__).resolve().parents[1]
TRACKED = sorted([ROOT / "config.yaml", ROOT / "tests" / "micro.yaml", *(ROOT / "configs").rglob("*.yaml")])


@pytest.mark.parametrize(("spec", "name"), [
    (ModelSpec("teacher", 0), "teacher-s0"), (ModelSpec("baseline", 2), "baseline-s2"),
    (ModelSpec("student", 0, 2.0, "forward_kl"), "student-T2.0-s0"),
    (ModelSpec("student", 1, 4.0, "forward_kl", "cleaned"), "student-T4.0-s1-cleaned"), (ModelSpec("hard_student", 0), "hard_student-s0"),
    (ModelSpec("student", 0, 2.0, "jsd"), "student-T2.0-jsd-s0"),
    (ModelSpec("student", 3, 1.0, "reverse_kl", "cleaned"), "student-T1.0-reverse_kl-s3-cleaned"),
    (ModelSpec("baseline", 0, data_variant="once"), "baseline-s0-once"), (ModelSpec.base("small"), "base-small"),
])
def test_names_round_trip(spec, name):
    assert spec.name == name and ModelSpec.parse(name) == spec
    assert ModelSpec.of_record(spec.record()) == spec and spec.record()["model"] == name
    assert spec.size == (Size.LARGE if spec.role in (Role.TEACHER, ) or spec.base_size == "large" else Size.SMALL)
    if spec.temperature:  # the rules' {kd} wildcard: the tag in the name, and back
        tag = kd_tag(spec.temperature, spec.loss)
        assert f"-{tag}-" in name and re.fullmatch(KD_TAG, tag) and parse_kd_tag(tag) == (spec.temperature, spec.loss)


def test_labels_and_the_base_role():
    assert ModelSpec.parse("student-T2.0-s0-cleaned").label is Label.STUDENT_CLEANED
    assert ModelSpec.parse("baseline-s0-once").label is Label.BASELINE_ONCE
    assert ModelSpec.base(Size.LARGE).label is Label.BASE_LARGE and ModelSpec.base(Size.LARGE).role == BASE_ROLE
    assert model_name("{role}", "{seed}") == "{role}-s{seed}"  # the rules' patterns use the same grammar


def test_a_name_that_is_no_model_is_refused():
    for bad in ("teacher", "base-medium", "student-T2.0-forward_kl-s0", "tutor-s0", "student-T2.0-s0-pruned"):
        with pytest.raises(ValueError, match="not a kdmem model name"):
            ModelSpec.parse(bad)


@pytest.mark.parametrize("path", TRACKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_roster_of_every_tracked_config(path):
    cfg = kconfig.load(path)
    r = roster(cfg, "fam", "ds")
    names = r.names
    assert len(names) == len(set(names)), "a name given twice would be one model trained twice"
    ft, soft, hard = cfg["finetune"], cfg["distill"]["soft"], cfg["distill"]["hard"]
    n_soft = len(soft["temperatures"]) * len(soft["losses"]) * len(soft["seeds"])
    assert len(names) == (len(ft["teacher_seeds"]) + len(cfg["baseline_seeds"]) + n_soft + (len(hard["seeds"]) if hard["enabled"] else 0)
                          + cfg["removal"]["enabled"] + ft["once_seen_baseline"])
    assert r.teacher.name == f"teacher-s{ft['teacher_seeds'][0]}" and r.teacher is r.primary[0]
    assert r.primary_student.temperature == float(cfg["analysis"]["primary_temperature"])
    assert r.primary_student.loss == cfg["analysis"]["primary_loss"] and r.primary_student in r.models
    assert all(ModelSpec.parse(n, "fam", "ds") == m for n, m in zip(names, r.models, strict=True))
    assert all(m.family == "fam" and m.dataset == "ds" for m in r.models)
    cleaned = [m for m in r.models if m.data_variant == DataVariant.CLEANED]
    assert len(cleaned) == cfg["removal"]["enabled"] and all(m in r.primary for m in cleaned)
    assert [b.name for b in r.bases] == ["base-large", "base-small"]
