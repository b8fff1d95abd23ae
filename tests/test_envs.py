"""The conda env (for --sdm conda) and pyproject.toml must not drift apart."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from .conftest import ROOT


def _env_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "envs" / "kdmem.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = {}
    for line in pip:
        if line.startswith("-e"):
            continue
        name, version = line.split("==")
        pins[name.lower()] = version
    return pins


def test_every_dependency_is_pinned_in_the_env_within_pyproject_ranges():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _env_pins()
    for dep in deps:
        req = Requirement(dep)
        name = req.name.lower()
        assert name in pins, f"{name} is in pyproject.toml but not pinned in envs/kdmem.yaml"
        assert req.specifier.contains(pins[name]), f"envs/kdmem.yaml pins {name}=={pins[name]}, outside pyproject's {req.specifier}"
    assert set(pins) == {Requirement(d).name.lower() for d in deps}, "envs/kdmem.yaml pins packages pyproject.toml does not list"


def test_torch_is_the_cpu_pin_everywhere():
    assert _env_pins()["torch"] == "2.13.0"
    assert "torch==2.13.0" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "pip install -q torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_default_profile_cannot_override_the_other_profiles():
    """Snakemake applies profiles/default after --profile X, so a key in both would silently win over X."""
    root = ROOT / "profiles"
    default = yaml.safe_load((root / "default" / "config.yaml").read_text())
    for other in ("slurm", "gpu"):
        prof = yaml.safe_load((root / other / "config.yaml").read_text())
        clash = {k for k in set(default) & set(prof) if default[k] != prof[k]}
        assert clash == set(), f"profiles/default overrides profiles/{other}: {clash}"
    assert yaml.safe_load((root / "slurm" / "config.yaml").read_text())["retries"] >= 1


def declared_gpu_rules() -> dict[str, bool]:
    """Every rule of rules/*.smk and whether it declares a GPU (`job(..., gpu=True)`); a `use rule X as Y` copy
    without resources of its own inherits X's declaration."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    rules: dict[str, bool] = {}
    copies = []
    for block in re.split(r"(?m)^(?=rule \w+:|use rule |def |[A-Z_]+ = )", text):
        own = re.search(r"\*\*job\(([^)]*)\)", block)
        if m := re.match(r"rule (\w+):", block):
            rules[m[1]] = bool(own and "gpu=True" in own[1])
        elif m := re.match(r"use rule (\w+) as (\w+)", block):
            copies.append((m[1], m[2], None if own is None else "gpu=True" in own[1]))
    for original, copy, own_gpu in copies:  # after every file: a copy may come before its original
        rules[copy] = rules[original] if own_gpu is None else own_gpu
    return rules


def test_the_gpu_profiles_list_exactly_the_rules_that_declare_a_gpu():
    """A rule that runs a model says so in its resources (`job(..., gpu=True)`); profiles/gpu and profiles/slurm
    give exactly those rules GPUs. A GPU rule missing there (a `use rule` copy, a new stage) would run on the
    CPU of a GPU node without a word; a CPU rule listed there would hold a GPU it never uses."""
    rules = declared_gpu_rules()
    gpu = {r for r, g in rules.items() if g}
    assert {"finetune", "finetune_once", "distill_cleaned", "cache_logits_full", "score", "evaluate_bases"} <= gpu
    assert {"mia", "classify", "build_db", "prepare"} <= set(rules) - gpu
    for profile in ("gpu", "slurm"):
        res = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())["set-resources"]
        assert set(res) <= set(rules), (profile, set(res) - set(rules))  # no entry for a rule that does not exist
        assert {r for r, v in res.items() if v.get("gpu", 0) >= 1} == gpu, profile

