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


def test_no_command_reads_a_config_key_with_a_fallback():
    """The schema fills every default; a `.get(key, default)` on the config in a command would hide a slice that
    lacks the key (kdmem.rulecfg) behind a second default."""
    import ast
    from pathlib import Path

    config_names = {"cfg", "soft", "hard", "ds", "m", "optim", "fam", "law"}
    bad = []
    for f in sorted((Path(__file__).resolve().parents[1] / "src" / "kdmem" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2:
                recv = ast.unparse(node.func.value)
                if "cfg" in recv or recv in config_names:
                    bad.append(f"{f.name}:{node.lineno} {ast.unparse(node)}")
    assert not bad, bad
