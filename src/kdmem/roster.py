"""Who is in a study: one `ModelSpec` per model, and `roster(cfg)`, the list of a study's models and its primary ones.

A model's identity (role, seed, temperature, loss, data variant, family, dataset) is this record and nothing else:
the rules take the names they build from the roster, the training commands write `spec.record()` into metrics.json,
the score command reads it back (`ModelSpec.of_record`) and stamps it on every scores row, and the database's
models table holds it. The name is derived from the record (`spec.name`), and `ModelSpec.parse(name)` inverts it.

Model names: <role>[-T<t>[-<loss>]]-s<seed>[-<data variant>] (student-T2.0-s0, student-T2.0-jsd-s0,
student-T2.0-s0-cleaned, baseline-s0-once, hard_student-s1); a scored base is base-<size>.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from kdmem.vocab import (
    BASE_ROLE,
    DEFAULT_LOSS,
    MODEL_NAME,
    SIZE_OF_ROLE,
    DataVariant,
    Label,
    Loss,
    Role,
    Size,
    label_of,
)


def kd_tag(temperature: float | str, loss: str = DEFAULT_LOSS) -> str:
    """T2.0 (forward KL) or T2.0-jsd: the part of a soft student's name that says how it was distilled."""
    return f"T{temperature}" + ("" if loss == DEFAULT_LOSS else f"-{Loss(loss)}")


def parse_kd_tag(tag: str) -> tuple[float, str]:
    t, _, loss = tag[1:].partition("-")
    return float(t), loss or DEFAULT_LOSS


def model_name(role: str, seed: int | str, temperature: float | str | None = None, loss: str = DEFAULT_LOSS,
               variant: str = DataVariant.FULL) -> str:
    """The name grammar, also for Snakemake patterns (seed "{seed}"): teacher-s0, student-T2.0-jsd-s0, baseline-s0-once."""
    t = f"-{kd_tag(temperature, loss)}" if temperature is not None else ""
    return f"{role}{t}-s{seed}" + ("" if DataVariant(variant) == DataVariant.FULL else f"-{DataVariant(variant)}")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a study. `role` is a Role, or BASE_ROLE for a scored base checkpoint (then `base_size` says
    which); temperature and loss are set for soft students only."""

    role: str
    seed: int | None = None
    temperature: float | None = None
    loss: str | None = None
    data_variant: str = DataVariant.FULL
    family: str | None = None
    dataset: str | None = None
    base_size: str | None = None

    @classmethod
    def base(cls, size: str, family: str | None = None, dataset: str | None = None) -> ModelSpec:
        return cls(BASE_ROLE, family=family, dataset=dataset, base_size=str(Size(size)))

    @classmethod
    def parse(cls, name: str, family: str | None = None, dataset: str | None = None) -> ModelSpec:
        """The inverse of .name (ValueError on anything else)."""
        if name.startswith(f"{BASE_ROLE}-") and name.removeprefix(f"{BASE_ROLE}-") in list(Size):
            return cls.base(name.removeprefix(f"{BASE_ROLE}-"), family, dataset)
        m = MODEL_NAME.fullmatch(name)
        if m is None:
            raise ValueError(f"not a kdmem model name: {name!r}")
        t = m["temperature"]
        return cls(str(Role(m["role"])), int(m["seed"]), float(t) if t else None, (m["loss"] or str(DEFAULT_LOSS)) if t else None,
                   m["variant"] or str(DataVariant.FULL), family, dataset)

    @classmethod
    def of_record(cls, record: dict) -> ModelSpec:
        """From a metrics.json (or any dict with these keys): the record the training command wrote."""
        keys = {k: record[k] for k in ("role", "seed", "temperature", "loss", "data_variant", "family", "dataset", "base_size")
                if k in record}
        return cls(**keys)

    @property
    def name(self) -> str:
        if self.role == BASE_ROLE:
            return f"{BASE_ROLE}-{self.base_size}"
        return model_name(self.role, self.seed, self.temperature, self.loss or DEFAULT_LOSS, self.data_variant)

    @property
    def size(self) -> Size:
        """The base it starts from: large for the teacher, small for every other role."""
        return Size(self.base_size) if self.role == BASE_ROLE else SIZE_OF_ROLE[Role(self.role)]

    @property
    def label(self) -> Label:
        return label_of(self.role, self.data_variant, self.name)

    def at(self, family: str, dataset: str) -> ModelSpec:
        return replace(self, family=family, dataset=dataset)

    def record(self) -> dict:
        """What metrics.json and the scores files carry: the fields, plus the name they give."""
        return {"model": self.name, **asdict(self)}


@dataclass(frozen=True)
class Roster:
    """A study's models for one (family, dataset), in a fixed order, and the primary ones the analysis reads
    (the first teacher, baseline, soft student at the primary temperature and loss, hard student, cleaned student)."""

    models: tuple[ModelSpec, ...]
    teacher: ModelSpec
    primary_baseline: ModelSpec
    primary_student: ModelSpec
    primary: tuple[ModelSpec, ...]
    bases: tuple[ModelSpec, ...]

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def primary_names(self) -> list[str]:
        return [m.name for m in self.primary]


def roster(cfg: dict, family: str | None = None, dataset: str | None = None) -> Roster:
    """Every model a validated config trains (the same set for every family and dataset of the study)."""
    ft, soft, hard, an = cfg["finetune"], cfg["distill"]["soft"], cfg["distill"]["hard"], cfg["analysis"]

    def spec(role: Role, seed: int, temperature: float | None = None, loss: str | None = None,
             variant: DataVariant = DataVariant.FULL) -> ModelSpec:
        return ModelSpec(str(role), seed, temperature, loss, str(variant), family, dataset)

    t0, loss0 = float(an["primary_temperature"]), str(an["primary_loss"])
    teachers = [spec(Role.TEACHER, s) for s in ft["teacher_seeds"]]
    baselines = [spec(Role.BASELINE, s) for s in cfg["baseline_seeds"]]
    students = [spec(Role.STUDENT, s, float(t), str(x)) for t in soft["temperatures"] for x in soft["losses"] for s in soft["seeds"]]
    hards = [spec(Role.HARD_STUDENT, s) for s in hard["seeds"]] if hard["enabled"] else []
    cleaned = spec(Role.STUDENT, soft["seeds"][0], t0, loss0, DataVariant.CLEANED)
    once = spec(Role.BASELINE, cfg["baseline_seeds"][0], variant=DataVariant.ONCE)
    models = teachers + baselines + students + hards + ([cleaned] if cfg["removal"]["enabled"] else []) \
        + ([once] if ft["once_seen_baseline"] else [])
    student0 = spec(Role.STUDENT, soft["seeds"][0], t0, loss0)
    primary = [teachers[0], baselines[0], student0, spec(Role.HARD_STUDENT, hard["seeds"][0]), cleaned]
    return Roster(tuple(models), teachers[0], baselines[0], student0, tuple(primary),
                  tuple(ModelSpec.base(s, family, dataset) for s in Size))
