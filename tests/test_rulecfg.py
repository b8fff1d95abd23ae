"""kdmem.rulecfg: each rule's config slice holds exactly the keys its command reads (test_reruns checks the same
promise through Snakemake's rerun triggers; these check the slices themselves, without Snakemake)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from kdmem import config as kconfig
from kdmem import rulecfg

from .conftest import MICRO

ROOT = Path(__file__).resolve().parents[1]


def _cfg(**changes) -> dict:
    """The validated micro config with dotted keys changed."""
    raw = copy.deepcopy(MICRO)
    for dotted, value in changes.items():
        *head, last = dotted.split("__")
        node = raw
        for k in head:
            node = node[k]
        node[last] = value
    return kconfig.validate(raw)


def test_every_rule_slice_has_a_slicer_and_every_slicer_a_rule():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")))
    used = set(re.findall(r'sliced\("(\w+)"', text))
    assert used, "no rule calls sliced(): the pattern above is stale"
    assert used <= set(rulecfg.SLICERS), used - set(rulecfg.SLICERS)
    assert set(rulecfg.SLICERS) - used == {"audit"}, set(rulecfg.SLICERS) - used  # audit runs by hand, outside the DAG


def test_a_key_changes_exactly_the_slices_that_read_it():
    base = kconfig.validate(MICRO)
    lr = _cfg(finetune__teacher__lr=0.5)
    assert rulecfg.as_arg(lr, "finetune", family="tiny", role="teacher") != rulecfg.as_arg(base, "finetune", family="tiny", role="teacher")
    assert rulecfg.as_arg(lr, "finetune", family="tiny", role="baseline") == rulecfg.as_arg(base, "finetune", family="tiny", role="baseline")
    for mode in ("soft", "hard"):
        assert rulecfg.as_arg(lr, "distill", family="tiny", mode=mode) == rulecfg.as_arg(base, "distill", family="tiny", mode=mode)
    # under the micro's full cache the student reads no top_k, but the kl_to_teacher feature's top-k cache does
    assert base["distill"]["soft"]["cache"] == "full"
    k = _cfg(distill__soft__top_k=3)
    assert rulecfg.as_arg(k, "distill", family="tiny", mode="soft") == rulecfg.as_arg(base, "distill", family="tiny", mode="soft")
    assert rulecfg.as_arg(k, "cache_logits", family="tiny", kind="topk") != rulecfg.as_arg(base, "cache_logits", family="tiny", kind="topk")
    assert rulecfg.as_arg(k, "cache_logits", family="tiny", kind="full") == rulecfg.as_arg(base, "cache_logits", family="tiny", kind="full")


def test_keys_that_only_shape_the_dag_are_in_no_slice():
    """More seeds or temperatures add jobs; they must not rerun the jobs that already exist."""
    base = kconfig.validate(MICRO)
    more = _cfg(baseline_seeds=[0, 1, 2, 3], distill__soft__temperatures=[2.0, 4.0])
    contexts = {"finetune": [{"family": "tiny", "role": r} for r in ("teacher", "baseline")],
                "distill": [{"family": "tiny", "mode": m} for m in ("soft", "hard")],
                "cache_logits": [{"family": "tiny", "kind": k} for k in ("topk", "sampled", "full")],
                "score": [{"family": "tiny", "size": s} for s in ("large", "small")],
                "mia": [{"family": "tiny"}], "classify": [{}], "analyze": [{}]}
    more["analysis"]["primary_temperature"] = base["analysis"]["primary_temperature"]
    for rule, ctxs in contexts.items():
        for ctx in ctxs:
            assert rulecfg.as_arg(more, rule, **ctx) == rulecfg.as_arg(base, rule, **ctx), (rule, ctx)


def test_the_argument_is_compact_sorted_json_of_the_slice():
    cfg = kconfig.validate(MICRO)
    arg = rulecfg.as_arg(cfg, "score", family="tiny", size="small")
    assert json.loads(arg) == rulecfg.slice_for(cfg, "score", family="tiny", size="small")
    assert " " not in arg and arg == json.dumps(json.loads(arg), sort_keys=True, separators=(",", ":"))
    # the slice has the config's own shape: the command reads cfg["families"]["tiny"]["small"] as from the whole file
    assert json.loads(arg)["families"]["tiny"]["small"] == cfg["families"]["tiny"]["small"]
    assert "large" not in json.loads(arg)["families"]["tiny"]
