"""kdmem.args: the typed arguments a command builds from its rule's config slice."""

from __future__ import annotations

import pytest

from kdmem import config as kconfig
from kdmem import rulecfg
from kdmem.args import CacheSpec, KDArgs, OptimArgs
from kdmem.errors import KdmemError
from kdmem.vocab import CacheKind, Loss

from .conftest import MICRO


def test_every_field_comes_from_the_slice_and_a_missing_key_is_an_error():
    cfg = kconfig.validate(MICRO)
    optim = OptimArgs.from_config(cfg["finetune"]["teacher"], "finetune.teacher")
    assert optim.lr == cfg["finetune"]["teacher"]["lr"] and optim.save_steps == cfg["finetune"]["teacher"]["save_steps"]
    broken = {k: v for k, v in cfg["finetune"]["teacher"].items() if k != "warmup_ratio"}
    with pytest.raises(KdmemError, match="finetune.teacher lacks warmup_ratio"):
        OptimArgs.from_config(broken, "finetune.teacher")


def test_the_distill_slice_builds_kd_args_for_each_cache_kind():
    """rulecfg drops the keys a cache kind does not read (tail, top_k, draws); KDArgs and CacheSpec must still build
    from what remains, and take the kind's own width from it."""
    for kind in CacheKind:
        cfg = kconfig.validate({**MICRO, "distill": {**MICRO["distill"], "soft": {**MICRO["distill"]["soft"], "cache": str(kind)}}})
        soft = rulecfg.slice_for(cfg, "distill", family="tiny", mode="soft")["distill"]["soft"]
        kd = KDArgs.from_config(soft, 2.0, "jsd")
        assert kd.loss is Loss.JSD and kd.temperature == 2.0 and (kd.tail is not None) == (kind == CacheKind.TOPK)
        if kind != CacheKind.DENSE:
            spec = CacheSpec.from_config(soft, str(kind), 2.0, seed=7)
            assert spec.width == {CacheKind.TOPK: soft.get("top_k"), CacheKind.SAMPLED: soft.get("draws")}.get(kind, 0)
            assert spec.seed == (7 if kind == CacheKind.SAMPLED else 0)
    with pytest.raises(KdmemError, match="lacks top_k, which a topk cache needs"):
        CacheSpec.from_config({"cache": "topk"}, "topk", 2.0, seed=0)


def config_fallbacks(root) -> list[str]:
    """Every `.get(key, default)` on a config mapping (a receiver named like one) under `root`."""
    import ast

    config_names = {"cfg", "soft", "hard", "ds", "m", "optim", "fam", "law", "arch", "a", "pre", "mem", "ex", "an"}
    bad = []
    for f in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2:
                recv = ast.unparse(node.func.value)
                if "cfg" in recv or recv in config_names or recv.endswith(("_cfg", "by_size")):
                    bad.append(f"{f.relative_to(root)}:{node.lineno} {ast.unparse(node)}")
    return bad


def test_nothing_in_kdmem_reads_a_config_key_with_a_fallback(tmp_path):
    """The schema fills every default (kdmem.config fills the two that depend on another key); a `.get(key, default)`
    on the config anywhere in the package would be a second source of a default and would hide a slice that lacks
    the key (kdmem.rulecfg). The scan itself is checked on a planted fallback."""
    from pathlib import Path

    assert config_fallbacks(Path(__file__).resolve().parents[1] / "src" / "kdmem") == []
    (tmp_path / "planted.py").write_text("def f(arch):\n    return arch.get('intermediate_size', 4 * arch['hidden_size'])\n")
    assert config_fallbacks(tmp_path) == ["planted.py:2 arch.get('intermediate_size', 4 * arch['hidden_size'])"]


def test_settings_need_every_key_the_schema_fills():
    from kdmem.settings import Classifier, Memorization

    cfg = kconfig.validate(MICRO)
    assert Memorization.of(cfg).extraction.top_k == cfg["memorization"]["extraction"]["top_k"]
    with pytest.raises(KdmemError, match="classifier lacks threshold"):
        Classifier.of({"classifier": {k: v for k, v in cfg["classifier"].items() if k != "threshold"}})
