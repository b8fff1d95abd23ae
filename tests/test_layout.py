"""The results layout and the model names: one template per output, names that round-trip."""

from __future__ import annotations

import re

import pytest

from kdmem.layout import KD_TAG, TEMPLATES, Layout, kd_tag, model_name, parse_kd_tag, parse_model_name, size_of_model


def test_unfilled_parts_stay_wildcards_and_filled_ones_are_paths():
    lay = Layout("res")
    assert lay.samples() == "res/{family}/{dataset}/data/{split}.parquet"
    assert lay.samples("tiny", "wiki", "train") == lay.samples(split="train", family="tiny", dataset="wiki") == "res/tiny/wiki/data/train.parquet"
    assert lay.cache(temperature="1.0") == "res/{family}/{dataset}/cache/T1.0"
    assert lay.log("score-teacher-s0", "tiny", "wiki") == "res/logs/tiny/wiki/score-teacher-s0.log"
    with pytest.raises(TypeError, match="at most 2 parts"):
        lay.data_stats("a", "b", "c")
    with pytest.raises(AttributeError):
        lay.no_such_output()  # noqa: B018


def test_every_output_has_its_own_path():
    lay = Layout("r")
    paths = [lay.path(name) for name in TEMPLATES]
    assert len(set(paths)) == len(TEMPLATES)


@pytest.mark.parametrize(("args", "name"), [
    (("teacher", 0), "teacher-s0"), (("baseline", 2), "baseline-s2"), (("student", 0, 2.0), "student-T2.0-s0"),
    (("student", 1, 4.0, True), "student-T4.0-s1-cleaned"), (("hard_student", 0), "hard_student-s0"),
    (("student", 0, 2.0, False, "jsd"), "student-T2.0-jsd-s0"), (("student", 3, 1.0, True, "reverse_kl"), "student-T1.0-reverse_kl-s3-cleaned"),
])
def test_model_names_round_trip(args, name):
    assert model_name(*args) == name
    role, seed, *rest = args
    t = rest[0] if rest else None
    cleaned = bool(rest[1:] and rest[1])
    assert parse_model_name(name) == {"role": role, "seed": seed, "temperature": t, "cleaned": cleaned,
                                      "loss": (rest[2] if rest[2:] else "forward_kl") if t else None,
                                      "data_variant": "cleaned" if cleaned else "full"}
    assert size_of_model(name) == ("large" if role == "teacher" else "small")
    if t:  # the rules' {kd} wildcard: the tag in the name, and back
        tag = kd_tag(t, rest[2] if rest[2:] else "forward_kl")
        assert f"-{tag}-" in name and re.fullmatch(KD_TAG, tag) and parse_kd_tag(tag) == (t, parse_model_name(name)["loss"])


def test_the_control_baseline_is_a_data_variant_of_the_baseline():
    name = model_name("baseline", 0, variant="once")
    assert name == "baseline-s0-once" and parse_model_name(name)["data_variant"] == "once" and not parse_model_name(name)["cleaned"]
    assert size_of_model(name) == "small"


def test_a_name_that_is_no_model_is_refused():
    with pytest.raises(ValueError, match="not a kdmem model name"):
        parse_model_name("base-small")
