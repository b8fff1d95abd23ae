"""Config validation: defaults, and the cross-key checks that need real models. The one-line errors of
bad configs are in the bad-input catalogue (test_bad_inputs.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kdmem import config as kconfig
from kdmem.errors import KdmemError

from .conftest import MICRO, ROOT


def test_micro_config_validates_and_fills_defaults(micro_cfg):
    cfg = kconfig.validate(micro_cfg)
    assert cfg["distill"]["soft"]["losses"] == ["forward_kl"] and cfg["distill"]["soft"]["cache"] == "full" and cfg["distill"]["soft"]["top_k"] == 30  # top_k: the schema default
    assert cfg["distill"]["soft"]["optim"]["schedule"] == "cosine"
    assert cfg["finetune"]["teacher"]["weight_decay"] == 0.0
    assert cfg["datasets"]["wiki"]["format"] == "auto"


def test_paper_defaults_are_the_papers():
    schema = kconfig.load_schema()
    cfg = kconfig.fill_defaults({"datasets": {}, "families": {}}, schema, schema)
    assert cfg["finetune"]["teacher"]["epochs"] == 3 and cfg["finetune"]["baseline"]["epochs"] == 4
    assert cfg["finetune"]["teacher"]["lr"] == 5e-5
    assert cfg["distill"]["soft"]["temperatures"] == [2.0]
    assert cfg["memorization"] == {"prefix_len": 50, "suffix_len": 50, "frac": True, "batch_size": 64, "generate_batch_size": 64,
                                   "extraction": {"top_k": 40, "temperature": 1.0, "n": 100, "p": 0.9}}  # Hayes et al. 2024's setting
    assert cfg["baseline_seeds"] == [0, 1, 2]
    assert cfg["classifier"]["neg_ratio"] == 3 and cfg["classifier"]["trials"] == 100


def test_family_tokenizers_must_match(tmp_path, micro_cfg, micro_tokenizer):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from kdmem.tokenizer import train_bpe

    other = tmp_path / "other_tok"
    train_bpe(["completely different text " * 50, "another tiny corpus of words " * 50], 300, other)
    paths = {}
    for name, tok in (("large", micro_tokenizer), ("small", other)):
        d = tmp_path / name
        GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=512, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(d)
        for f in Path(tok).iterdir():
            shutil.copy(f, d / f.name)
        paths[name] = str(d)
    micro_cfg["families"]["tiny"] = {
        "tokenizer": paths["large"],
        "large": {"init": "checkpoint", "checkpoint": paths["large"]},
        "small": {"init": "checkpoint", "checkpoint": paths["small"]},
    }
    micro_cfg["datasets"]["wiki"]["pretrain_frac"] = 0.0
    with pytest.raises(KdmemError, match="the large and small bases' tokenizers differ"):
        kconfig.validate(micro_cfg)


def test_a_family_written_with_the_old_teacher_key_is_told_its_new_name(micro_cfg):
    micro_cfg["families"]["tiny"]["teacher"] = micro_cfg["families"]["tiny"].pop("large")
    with pytest.raises(KdmemError, match=r"^config: families.tiny.*'teacher' is now 'large'"):
        kconfig.validate(micro_cfg)


def test_validated_config_json_round_trips_small_floats(tmp_path):
    """Snakemake hands kdmem the validated config as JSON, where 5e-5 prints as 5e-05: it must stay a number."""
    cfg = kconfig.load(ROOT / "configs" / "paper-pythia-fineweb.yaml")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert '"lr": 5e-05' in (tmp_path / "config.json").read_text()
    assert kconfig.load(tmp_path / "config.json")["finetune"]["teacher"]["lr"] == 5e-5


def test_an_overlay_extends_its_parent_key_by_key(tmp_path):
    """extends: mappings merge key by key, lists replace, chains resolve, loops and non-paths are refused."""
    import yaml

    parent = tmp_path / "parent.yaml"
    parent.write_text(yaml.safe_dump(MICRO))
    mid = tmp_path / "mid.yaml"
    mid.write_text(yaml.safe_dump({"extends": str(parent), "baseline_seeds": [3], "finetune": {"teacher": {"lr": 0.5}}}))
    leaf = {"extends": str(mid), "results": "results/leaf"}
    cfg = kconfig.validate(leaf)
    assert cfg["baseline_seeds"] == [3] and cfg["results"] == "results/leaf" and "extends" not in cfg
    assert cfg["finetune"]["teacher"]["lr"] == 0.5 and cfg["finetune"]["teacher"]["epochs"] == MICRO["finetune"]["teacher"]["epochs"]
    assert cfg["datasets"] == kconfig.validate(MICRO)["datasets"]
    loop = tmp_path / "loop.yaml"
    loop.write_text(yaml.safe_dump({"extends": str(loop)}))
    with pytest.raises(KdmemError, match="extends loops through"):
        kconfig.validate({"extends": str(loop)})
    with pytest.raises(KdmemError, match="extends must be a path"):
        kconfig.validate({"extends": 3})


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "regime").glob("*.yaml")), ids=lambda p: p.name)
def test_every_regime_config_resolves(path):
    """configs/regime/ holds the earlier regimes, most as overlays on r6 (the old default); each must resolve to a valid study."""
    cfg = kconfig.load(path.relative_to(ROOT))
    assert cfg["results"].startswith("results/")


def test_the_config_reference_is_the_schema_s(tmp_path):
    """docs/config.md is generated from the schema (`make docs`): a key added to the schema without regenerating
    the reference, or an edit to the reference by hand, fails here."""
    from kdmem import schemadoc

    schema = kconfig.load_schema()
    assert (ROOT / "docs" / "config.md").read_text() == schemadoc.render(schema)
    reference = schemadoc.render(schema)
    for key in ("`memorization.generate_batch_size`", "`datasets.<name>.exposure_law.allocation`", "`families.<name>.large.arch.type`"):
        assert key in reference
