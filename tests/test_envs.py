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


def test_a_copied_rule_gets_the_gpu_its_original_gets():
    """`use rule X as Y` copies X's rule but not its profile entry: a Y missing from a profile's set-resources
    (cache_logits_sampled, distill_cleaned) would silently run on the CPU of a GPU node."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    copies = [m.groups() for m in re.finditer(r"^use rule (\w+) as (\w+)", text, flags=re.M)]
    assert ("cache_logits", "cache_logits_sampled") in copies and ("distill_soft", "distill_cleaned") in copies
    for profile in ("gpu", "slurm"):
        res = yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())["set-resources"]
        for original, copy in copies:
            assert res.get(copy, {}).get("gpu", 0) == res.get(original, {}).get("gpu", 0) >= 1, (profile, copy)
