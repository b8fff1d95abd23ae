"""Config validation: each bad config is one line that names the key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kdmem import config as kconfig
from kdmem.cli import main
from kdmem.errors import KdmemError

from .conftest import ROOT, write_cfg


def test_micro_config_validates_and_fills_defaults(micro_cfg):
    cfg = kconfig.validate(micro_cfg)
    assert cfg["distill"]["soft"]["loss"] == "forward_kl"
    assert cfg["distill"]["soft"]["optim"]["schedule"] == "cosine"
    assert cfg["finetune"]["teacher"]["weight_decay"] == 0.0
    assert cfg["datasets"]["wiki"]["format"] == "auto"


def test_paper_defaults_are_the_papers():
    schema = kconfig.load_schema()
    cfg = kconfig.fill_defaults({"datasets": {}, "families": {}}, schema, schema)
    assert cfg["finetune"]["teacher"]["epochs"] == 3 and cfg["finetune"]["baseline"]["epochs"] == 4
    assert cfg["finetune"]["teacher"]["lr"] == 5e-5
    assert cfg["distill"]["soft"]["temperatures"] == [2.0]
    assert cfg["memorization"] == {"prefix_len": 50, "suffix_len": 50, "frac": True, "batch_size": 64}
    assert cfg["baseline_seeds"] == [0, 1, 2]
    assert cfg["classifier"]["neg_ratio"] == 3 and cfg["classifier"]["trials"] == 100


def _mutate(cfg, path, value):
    node = cfg
    for k in path[:-1]:
        node = node[k]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


_DELETE = object()

BAD = [
    (("datasets", "wiki", "colour"), "blue", "unknown key 'colour' under datasets.wiki"),
    (("datasets", "wiki", "seq_len"), "long", "datasets.wiki.seq_len must be of type integer"),
    (("datasets", "wiki", "n_train"), 0, "datasets.wiki.n_train must be >= 1"),
    (("memorization", "suffix_len"), 20, "prefix_len + suffix_len = 36 exceeds datasets.wiki.seq_len = 32"),
    (("datasets", "wiki", "path"), "/nonexistent/corpus.jsonl", "file /nonexistent/corpus.jsonl does not exist"),
    (("distill", "soft", "temperatures"), [0.0], "distill.soft.temperatures[0] must be > 0"),
    (("distill", "soft", "temperatures"), [-1.0], "distill.soft.temperatures[0] must be > 0"),
    (("baseline_seeds",), [], "baseline_seeds must not be empty"),
    (("classifier", "neg_ratio"), 0.5, "classifier.neg_ratio must be >= 1"),
    (("datasets", "wiki", "exposures"), [{"count": 2, "share": 0.3}], "shares sum to 0.3"),
    (("families", "tiny", "teacher", "arch"), _DELETE, "families.tiny.teacher.arch is required"),
    (("results",), "../../elsewhere", "must be a relative path inside the working directory"),
    (("results",), "/tmp/out", "must be a relative path inside the working directory"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[m for *_, m in BAD])
def test_bad_config_is_one_clear_line(micro_cfg, path, value, message):
    with pytest.raises(KdmemError) as err:
        kconfig.validate(_mutate(micro_cfg, path, value))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_config_through_cli(micro_cfg, tmp_path, capsys):
    micro_cfg["datasets"]["wiki"]["bogus"] = 1
    rc = main(["validate", "--config", str(write_cfg(micro_cfg, tmp_path / "c.yaml"))])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == ["kdmem validate: error: config: unknown key 'bogus' under datasets.wiki; allowed keys: " + err[0].split("allowed keys: ")[1]]
    assert "Traceback" not in "".join(err)


def test_duplicate_family_name(tmp_path, micro_cfg):
    text = write_cfg(micro_cfg, tmp_path / "c.yaml")
    fam = json.dumps(micro_cfg["families"]["tiny"])
    text.write_text(text.read_text().replace("families:\n", f"families:\n  tiny: {fam}\n", 1))
    with pytest.raises(KdmemError, match="duplicate key 'tiny'"):
        kconfig.load(text)


def test_family_tokenizers_must_match(tmp_path, micro_cfg, micro_tokenizer):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from kdmem.tokenizer import train_bpe

    other = tmp_path / "other_tok"
    train_bpe(["completely different text " * 50, "another tiny corpus of words " * 50], 300, other)
    paths = {}
    for name, tok in (("teacher", micro_tokenizer), ("small", other)):
        d = tmp_path / name
        GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=512, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(d)
        for f in Path(tok).iterdir():
            shutil.copy(f, d / f.name)
        paths[name] = str(d)
    micro_cfg["families"]["tiny"] = {
        "tokenizer": paths["teacher"],
        "teacher": {"init": "checkpoint", "checkpoint": paths["teacher"]},
        "small": {"init": "checkpoint", "checkpoint": paths["small"]},
    }
    micro_cfg["datasets"]["wiki"]["pretrain_frac"] = 0.0
    with pytest.raises(KdmemError, match="teacher and small model tokenizers differ"):
        kconfig.validate(micro_cfg)


def test_validated_config_json_round_trips_small_floats(tmp_path):
    """Snakemake hands kdmem the validated config as JSON, where 5e-5 prints as 5e-05: it must stay a number."""
    cfg = kconfig.load(ROOT / "configs" / "paper-pythia-fineweb.yaml")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert '"lr": 5e-05' in (tmp_path / "config.json").read_text()
    assert kconfig.load(tmp_path / "config.json")["finetune"]["teacher"]["lr"] == 5e-5
