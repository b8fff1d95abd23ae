"""kdmem.vocab is the one spelling of roles, sizes, losses, cache kinds and splits: the schema's enums, the
rules' wildcard constraints and the model-name grammar must agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kdmem.config import load_schema
from kdmem.roster import ModelSpec
from kdmem.vocab import BASE_ROLE, KD_TAG, MODEL_NAME, CacheKind, Label, Loss, Role, Size, Split, alternation

ROOT = Path(__file__).resolve().parents[1]


def test_the_schema_spells_what_vocab_spells():
    s = load_schema()
    soft = s["properties"]["distill"]["properties"]["soft"]["properties"]
    assert soft["losses"]["items"]["enum"] == [str(x) for x in Loss]
    assert soft["cache"]["enum"] == [str(x) for x in CacheKind]
    assert s["properties"]["analysis"]["properties"]["primary_loss"]["enum"] == [str(x) for x in Loss]
    assert s["$defs"]["family"]["required"] == ["tokenizer", *[str(x) for x in Size]]


def test_the_rules_take_their_constraints_from_vocab():
    text = (ROOT / "rules" / "common.smk").read_text()
    block = text[text.index("wildcard_constraints:"):].split("\n\n")[0]
    # no role, size, loss or split is spelled by hand in the constraints
    for value in [*Role, *Size, *Loss, *Split]:
        assert not re.search(rf"\b{value}\b", block), (value, block)


@pytest.mark.parametrize("name", ["teacher-s0", "baseline-s2", "hard_student-s1", "student-T2.0-s0", "student-T1.5-jsd-s3",
                                  "student-T2.0-reverse_kl-s0-cleaned", "student-T2.0-s0-cleaned", "baseline-s1-once"])
def test_model_names_round_trip(name):
    assert ModelSpec.parse(name).name == name
    assert MODEL_NAME.fullmatch(name)


def test_names_outside_the_vocabulary_are_refused():
    for bad in ("teacher", "student-T2.0-forward_kl-s0", "tutor-s0", "student-T2.0-s0-pruned", "student-T2.0-kl-s0"):
        with pytest.raises(ValueError, match="not a kdmem model name"):
            ModelSpec.parse(bad)
    assert re.fullmatch(KD_TAG, "T2.0-jsd") and not re.fullmatch(KD_TAG, "T2.0-forward_kl")
    assert alternation(Size) == "large|small"


def test_each_model_gets_one_label():
    from kdmem.vocab import Label, label_of

    assert label_of("student", "cleaned", "student-T2.0-s0-cleaned") is Label.STUDENT_CLEANED
    assert label_of("student", "full", "student-T2.0-s1") is Label.STUDENT
    assert label_of("base", "full", "base-large") is Label.BASE_LARGE and label_of("base", None, "base-small") is Label.BASE_SMALL
    assert label_of("hard_student", "full", "hard_student-s2") is Label.HARD_STUDENT
    with pytest.raises(ValueError):
        label_of("base", "full", "base-medium")


LITERAL = re.compile(rf"""(["'])({alternation([*Role, *Size, *Label, BASE_ROLE])})\1""")


def _literals(text: str) -> list[str]:
    return [m.group(0) for m in LITERAL.finditer(text)]


def test_no_role_size_or_label_is_spelled_outside_vocab():
    # SQL included: views and queries take these from the enums (or as parameters), so a renamed role cannot leave
    # a query that silently matches nothing
    files = [*(ROOT / "src" / "kdmem").rglob("*.py"), *(ROOT / "rules").glob("*.smk"), *(ROOT / "benchmarks").glob("*.py")]
    found = {str(f.relative_to(ROOT)): hits for f in files if f.name != "vocab.py" and (hits := _literals(f.read_text()))}
    assert not found, found
    # the scan itself finds them: in a quoted SQL comparison and a dict key, not in a word or a path
    assert _literals("m.label = 'teacher' AND {\"small\": 1}") == ["'teacher'", '"small"']
    assert _literals("'teacher-s0' \"base/large\" \"teacher's\"") == []
