"""The paper's configurations: each validates and dry-runs offline (plain suite), and each runs end to
end on local stand-ins of its checkpoints and datasets (marker `configs`, `make test-configs`).

The end-to-end run changes sizes only: sample counts, batch sizes, classifier trials and bootstrap
draws. seq_len 256, the 50/50 prefix/suffix, epochs, T, top-k, seeds and every name stay the paper's.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

import duckdb
import pytest
import yaml

from . import longrun, standins
from .conftest import ROOT, write_cfg

CONFIGS = sorted((ROOT / "configs").glob("paper-*.yaml"))


def test_there_are_five_paper_configs():
    assert [p.stem for p in CONFIGS] == ["paper-olmo2-fineweb", "paper-pythia-fineweb", "paper-pythia-nemotron",
                                         "paper-pythia-wikitext", "paper-qwen3-fineweb"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_paper_config_validates_and_dry_runs_offline(path, tmp_path):
    from kdmem import config as kconfig

    cfg = kconfig.load(path)
    assert cfg["memorization"]["prefix_len"] == 50 and cfg["memorization"]["suffix_len"] == 50
    assert all(ds["seq_len"] == 256 for ds in cfg["datasets"].values())
    assert cfg["distill"]["soft"]["temperatures"] == [2.0] and cfg["baseline_seeds"] == [0, 1, 2]
    small_epochs = 4 if "pythia" in path.stem else 5
    assert cfg["finetune"]["teacher"]["epochs"] == 3 and cfg["finetune"]["baseline"]["epochs"] == small_epochs
    assert cfg["distill"]["soft"]["optim"]["epochs"] == small_epochs and cfg["finetune"]["teacher"]["lr"] == 5e-5
    # A dry run must not touch a hub: it runs with the hub switched off and nothing local of those names.
    proc = longrun.snakemake(tmp_path, "--configfile", str(path), "-n", "--cores", "1", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "finetune" in out and "cache_logits" in out and "distill_soft" in out
    assert not (tmp_path / "results").exists()  # a dry run writes nothing, not even the config for the jobs


def shrink(cfg: dict) -> dict:
    """The paper config at test size: fewer samples and smaller batches; the protocol untouched."""
    cfg = copy.deepcopy(cfg)
    for ds in cfg["datasets"].values():
        ds.update(n_train=24, n_val=8, n_heldout=8, val_frac=0.05, max_docs=None)
    optims = [cfg["finetune"]["teacher"], cfg["finetune"]["baseline"], cfg["distill"]["soft"]["optim"], cfg["distill"]["hard"]["optim"]]
    for o in optims:
        o.update(batch_size=8, grad_accum=1, save_steps=1000)
    cfg["distill"]["hard"]["batch_size"] = 8
    cfg["memorization"]["batch_size"] = 8
    cfg["classifier"]["trials"] = 3
    cfg["analysis"] = {"bootstrap": 20}
    return cfg


@pytest.mark.configs
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_paper_config_end_to_end_on_local_standins(path, tmp_path, micro_tokenizer):
    cfg = shrink(yaml.safe_load(path.read_text()))
    standins.populate(tmp_path, cfg, micro_tokenizer)
    t0 = time.time()
    proc = longrun.snakemake(tmp_path, "--configfile", str(write_cfg(cfg, tmp_path / path.name)), "--cores", "2",
                             "--profile", str(ROOT / "profiles" / "default"), timeout=1500)
    seconds = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = tmp_path / cfg["results"]
    con = duckdb.connect(str(res / "kdmem.duckdb"), read_only=True)
    roles = dict(con.execute("SELECT role, count(DISTINCT model) FROM models GROUP BY role").fetchall())
    assert roles == {"teacher": 1, "baseline": 3, "student": 2, "hard_student": 1, "base": 2}, roles
    n = dict(con.execute("SELECT split, count(*) FROM samples GROUP BY split").fetchall())
    assert n == {"train": 24, "val": 8, "heldout": 8}
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == (7 + 2) * (24 + 8 + 8)  # seven models and the two bases
    family = next(iter(cfg["families"]))
    arch = json.loads((res / family / next(iter(cfg["datasets"])) / "models" / "teacher-s0" / "config.json").read_text())["architectures"]
    assert arch == [standins.ARCH[next(f for f in standins.ARCH if family.startswith(f))][1]]
    assert (res / "report" / "report.html").is_file()
    record = ROOT / "results" / "configs-test.json"
    record.parent.mkdir(exist_ok=True)
    done = json.loads(record.read_text()) if record.is_file() else {}
    done[path.stem] = {"seconds": round(seconds, 1), "jobs": len(re.findall(r"^(?:local)?rule \w+:", proc.stdout + proc.stderr, flags=re.M))}
    record.write_text(json.dumps(done, indent=1))


def test_standin_names_resolve_locally_before_the_hub(tmp_path, micro_tokenizer, monkeypatch):
    """The mechanism the end-to-end test relies on, checked directly and fast."""
    from kdmem.corpus import read_docs
    from kdmem.models import load_model

    monkeypatch.chdir(tmp_path)
    standins.save_model(Path("allenai/OLMo-2-1124-7B"), "olmo2", micro_tokenizer, 32, 1, seed=0)
    assert type(load_model("allenai/OLMo-2-1124-7B")).__name__ == "Olmo2ForCausalLM"
    standins.save_dataset(tmp_path, "Salesforce/wikitext", n_docs=3)
    cfg = yaml.safe_load((ROOT / "configs" / "paper-pythia-wikitext.yaml").read_text())["datasets"]["wikitext"]
    from kdmem import config as kconfig

    ds = kconfig.validate({"datasets": {"wikitext": cfg}, "families": {"p": {"tokenizer": "x", "large": {"init": "checkpoint", "checkpoint": "x"},
                                                                           "small": {"init": "checkpoint", "checkpoint": "y"}}}})["datasets"]["wikitext"]
    docs, stats = read_docs(ds)
    # three articles rebuilt from their lines by doc_start; the blank row before the first title is dropped
    assert len(docs) == 3 and stats.read == 4 and stats.dropped["empty"] == 1
    assert docs[0].text.startswith("= ") and "\n" in docs[0].text


@pytest.mark.configs
def test_nproc_2_trains_under_torchrun_and_rank0_writes_once(tmp_path, micro_tokenizer):
    """--nproc 2 reruns the command under torchrun (gloo DDP on CPU); the saved model and metrics come from rank 0."""
    import subprocess
    import sys

    from .conftest import MICRO
    from .helpers import micro_samples, tiny_model_dir

    cfg = copy.deepcopy(MICRO)
    cfg["finetune"]["baseline"].update(batch_size=16, epochs=2)
    cfgp = write_cfg(cfg, tmp_path / "c.yaml")
    train, val = micro_samples(MICRO, micro_tokenizer)
    train.write_parquet(tmp_path / "train.parquet")
    val.write_parquet(tmp_path / "val.parquet")
    base = tiny_model_dir(tmp_path / "small", micro_tokenizer, hidden=32, seed=2)
    cmd = [sys.executable, "-m", "kdmem.cli", "finetune", "--config", str(cfgp), "--family", "tiny", "--dataset", "wiki",
           "--role", "baseline", "--seed", "0", "--base", str(base), "--tokenizer", str(micro_tokenizer),
           "--train", str(tmp_path / "train.parquet"), "--val", str(tmp_path / "val.parquet"), "--out", str(tmp_path / "m"),
           "--ckpt", str(tmp_path / "ck"), "--nproc", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=longrun.env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["fsdp"] is False
    steps_per_epoch = -(-sum(train["n_exposures"].to_list()) // 16)  # the global batch stays 16: 8 per process
    assert metrics["steps"] == 2 * steps_per_epoch
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.")] == []
