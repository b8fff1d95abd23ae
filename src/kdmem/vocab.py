"""kdmem's vocabulary: every value a role, base size, loss, cache kind and split can take, spelled once.

The schema (config.schema.yaml), the results layout (kdmem.layout), the rules' wildcard constraints
(rules/common.smk), the database and the report all take their spellings from here; a test checks that
the schema's enums equal these. Values are plain strings (StrEnum), so they go into paths, SQL parameters
and JSON unchanged.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Role(StrEnum):
    """A trained model's role (the paper's four). The removal experiment's student is a `student` trained
    on the cleaned D (`DataVariant.CLEANED`), not a role of its own."""

    TEACHER = "teacher"
    BASELINE = "baseline"
    STUDENT = "student"
    HARD_STUDENT = "hard_student"


class Size(StrEnum):
    """A family's two pretrained bases, named by the config keys that describe them
    (`families.<f>.large`, `families.<f>.small`): the large one the teacher starts from, the small one
    every other role starts from. Not roles: a base is a checkpoint, a role is what is trained from it."""

    LARGE = "large"
    SMALL = "small"


class Loss(StrEnum):
    """The soft student's divergence; the paper's forward KL is the default and is left out of model names."""

    FORWARD_KL = "forward_kl"
    REVERSE_KL = "reverse_kl"
    JSD = "jsd"


class CacheKind(StrEnum):
    """How the soft student sees the teacher (`distill.soft.cache`): a cache, or the teacher in every step."""

    TOPK = "topk"
    SAMPLED = "sampled"
    FULL = "full"
    DENSE = "dense"


class Split(StrEnum):
    TRAIN = "train"  # D
    VAL = "val"  # validation windows
    HELDOUT = "heldout"  # windows of documents no model sees


class DataVariant(StrEnum):
    FULL = "full"  # trained on D
    CLEANED = "cleaned"  # the removal experiment: D minus the classifier's predicted samples
    ONCE = "once"  # the control baseline: D's once-seen samples only, no near-copy (finetune.once_seen_baseline)


class Label(StrEnum):
    """A model's label in the analysis: its role, with the removal experiment's student and the two scored bases
    told apart. Stored in the database's models table (column `label`), so no query rebuilds it."""

    TEACHER = "teacher"
    BASELINE = "baseline"
    STUDENT = "student"
    HARD_STUDENT = "hard_student"
    STUDENT_CLEANED = "student_cleaned"
    BASELINE_ONCE = "baseline_once"
    BASE_LARGE = "base_large"
    BASE_SMALL = "base_small"


# The role a scored base checkpoint takes in the scores and models tables (models base-large and base-small): not a
# Role, since nothing is trained in it, and spelled here once.
BASE_ROLE = "base"


def label_of(role: str, data_variant: str | None, model: str) -> Label:
    """teacher / baseline / student / hard_student, student_cleaned for the removal experiment's student, and
    base_large / base_small for the scored bases (role base, models base-large and base-small)."""
    if role == BASE_ROLE:
        return Label(model.replace("-", "_"))
    if data_variant in (DataVariant.CLEANED, DataVariant.ONCE):
        return Label(f"{role}_{data_variant}")
    return Label(role)


def start_label(label: str) -> Label:
    """The scored base a model started from: base_large for the teacher, base_small for every other model."""
    return Label.BASE_LARGE if label == Label.TEACHER else Label.BASE_SMALL


SIZE_OF_ROLE = {Role.TEACHER: Size.LARGE, Role.BASELINE: Size.SMALL, Role.STUDENT: Size.SMALL, Role.HARD_STUDENT: Size.SMALL}
CACHED_KINDS = (CacheKind.TOPK, CacheKind.SAMPLED, CacheKind.FULL)  # the kinds `cache-logits` writes
DEFAULT_LOSS = Loss.FORWARD_KL


def alternation(values) -> str:
    """'a|b|c' for a regex or a Snakemake wildcard constraint."""
    return "|".join(re.escape(str(v)) for v in values)


# The model-name grammar: <role>[-T<t>[-<loss>]]-s<seed>[-<data variant>]; student-T2.0-s0, student-T2.0-jsd-s0,
# student-T2.0-s0-cleaned, baseline-s0-once, hard_student-s1. Bases are base-<size>.
_NON_DEFAULT_LOSSES = alternation(x for x in Loss if x != DEFAULT_LOSS)
KD_TAG = rf"T[0-9]+(?:\.[0-9]+)?(?:-(?:{_NON_DEFAULT_LOSSES}))?"  # the {kd} wildcard: a soft student's temperature and loss
MODEL_NAME = re.compile(
    rf"(?P<role>{alternation(Role)})(?:-T(?P<temperature>[0-9.]+)(?:-(?P<loss>{_NON_DEFAULT_LOSSES}))?)?"
    rf"-s(?P<seed>\d+)(?:-(?P<variant>{alternation(v for v in DataVariant if v != DataVariant.FULL)}))?"
)
