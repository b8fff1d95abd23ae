"""The bad-input catalogue: each case runs the real `kdmem` CLI and must end with a non-zero exit,
exactly one human-readable line on stderr naming the key or file, no traceback, and no output."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kdmem.cli import main

from .conftest import MICRO, write_cfg
from .helpers import tiny_model_dir

# The micro config with a top-k cache of width 8: the cases break such a cache (its k, its shards, its teacher).
TOPK = copy.deepcopy(MICRO)
TOPK["distill"]["soft"].update(cache="topk", top_k=8)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, micro_tokenizer, tiny_models):
    """Real inputs every case starts from: samples, a tiny teacher and small model, a cache, scores."""
    d = tmp_path_factory.mktemp("kit")
    for name in ("train.parquet", "val.parquet", "teacher", "small"):  # the shared tiny world (conftest), copied: cases edit these
        src = tiny_models["dir"] / name
        shutil.copytree(src, d / name) if src.is_dir() else shutil.copy(src, d / name)
    for m, role in (("teacher", "teacher"), ("small", "baseline")):
        (d / m / "metrics.json").write_text(json.dumps({"family": "tiny", "dataset": "wiki", "role": role, "seed": 0}))
    cfg = write_cfg(TOPK, d / "micro.yaml")
    rc = main(["cache-logits", "--config", str(cfg), "--family", "tiny", "--dataset", "wiki", "--teacher", str(d / "teacher"),
               "--tokenizer", str(micro_tokenizer), "--train", str(d / "train.parquet"), "--temperature", "2.0", "--kind", "topk", "--out", str(d / "cache")])
    assert rc == 0
    return {"dir": d, "tok": str(micro_tokenizer), "cfg": cfg}


def _cfg(tmp_path, mutate=None, text=None) -> str:
    p = tmp_path / "case.yaml"
    if text is not None:
        p.write_text(text)
        return str(p)
    cfg = copy.deepcopy(TOPK)
    if mutate:
        mutate(cfg)
    return str(write_cfg(cfg, p))


def _expect(capsys, argv, needle, out: Path | None = None):
    rc = main(argv)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc != 0
    assert len(err) == 1, err
    assert needle in err[0], err[0]
    assert "Traceback" not in err[0]
    if out is not None:
        assert not out.exists(), f"{out} was left behind"


def _distill(kit, tmp_path, cfg=None, cache=None, teacher=None, temperature="2.0", base=None):
    d = kit["dir"]
    out = tmp_path / "student"
    argv = ["distill", "--mode", "soft", "--config", cfg or str(kit["cfg"]), "--family", "tiny", "--dataset", "wiki", "--seed", "0",
            "--base", str(base or d / "small"), "--tokenizer", kit["tok"], "--train", str(d / "train.parquet"),
            "--val", str(d / "val.parquet"), "--temperature", temperature, "--cache", str(cache or d / "cache"),
            "--out", str(out), "--ckpt", str(tmp_path / "ck")]
    if teacher:
        argv += ["--teacher", str(teacher)]
    return argv, out


def _set(path, value):
    def f(cfg):
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return f


CONFIG_CASES = [
    ("unknown key", _set(("memorization", "prefx_len"), 3), "unknown key 'prefx_len' under memorization"),
    ("wrong type", _set(("datasets", "wiki", "n_val"), "ten"), "datasets.wiki.n_val must be of type integer"),
    ("zero size", _set(("datasets", "wiki", "seq_len"), 0), "datasets.wiki.seq_len must be >= 2"),
    ("negative size", _set(("memorization", "batch_size"), -4), "memorization.batch_size must be >= 1"),
    ("window too long", _set(("memorization", "prefix_len"), 30), "prefix_len + suffix_len = 46 exceeds datasets.wiki.seq_len = 32"),
    ("temperature <= 0", _set(("distill", "soft", "temperatures"), [2.0, 0]), "distill.soft.temperatures[1] must be > 0"),
    ("empty seed list", _set(("baseline_seeds",), []), "baseline_seeds must not be empty"),
    ("neg ratio < 1", _set(("classifier", "neg_ratio"), 0.5), "classifier.neg_ratio must be >= 1"),
    ("missing data file", _set(("datasets", "wiki", "path"), "/no/such/corpus.jsonl"), "datasets.wiki.path: file /no/such/corpus.jsonl does not exist"),
    ("bad doc_start regex", _set(("datasets", "wiki", "doc_start"), "^ = (unclosed"), "datasets.wiki.doc_start is not a valid regex"),
    ("float YAML reads as text", _set(("finetune", "teacher", "lr"), "5e-5"), "(YAML 1.1 reads 5e-5 as text"),
    ("negative fsdp threshold", lambda c: c.update(parallel={"fsdp_min_params": -1}), "parallel.fsdp_min_params must be >= 0"),
    ("exposure shares not summing to 1", lambda c: (c["datasets"]["wiki"].pop("exposure_law"),
                                                    c["datasets"]["wiki"].update(exposures=[{"count": 2, "share": 0.3}])), "shares sum to 0.3"),
    ("scratch model without arch", lambda c: c["families"]["tiny"]["large"].pop("arch"), "families.tiny.large.arch is required"),
    ("results outside the working directory", _set(("results",), "../../elsewhere"), "must be a relative path inside the working directory"),
    ("absolute results", _set(("results",), "/tmp/out"), "must be a relative path inside the working directory"),
    ("primary temperature not distilled", _set(("distill", "soft", "temperatures"), [1.0, 4.0]),
     "analysis.primary_temperature = 2 is not one of distill.soft.temperatures [1.0, 4.0]; add it there or name one of them"),
    ("primary loss not distilled", _set(("distill", "soft", "losses"), ["jsd"]),
     "analysis.primary_loss = forward_kl is not one of distill.soft.losses ['jsd']; add it there or name one of them"),
    ("sampled cache with a loss it cannot estimate", lambda c: c["distill"]["soft"].update(cache="sampled", losses=["forward_kl", "reverse_kl"]),
     "distill.soft.cache = sampled estimates the forward KL only, but distill.soft.losses has reverse_kl; use cache: topk or dense for it"),
    ("unknown cache kind", _set(("distill", "soft", "cache"), "complete"), "distill.soft.cache"),
    ("unknown architecture", _set(("families", "tiny", "small", "arch", "type"), "mamba"), "families.tiny.small.arch.type"),
]


@pytest.mark.parametrize(("name", "mutate", "needle"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_cases(tmp_path, capsys, name, mutate, needle):  # validation alone: no model, no tokenizer
    _expect(capsys, ["validate", "--config", _cfg(tmp_path, mutate)], needle)


def test_duplicate_family_name(tmp_path, capsys):
    text = Path(_cfg(tmp_path)).read_text().replace("families:\n", "families:\n  tiny: {}\n", 1)
    _expect(capsys, ["validate", "--config", _cfg(tmp_path, text=text)], "duplicate key 'tiny'")


def _prepare(tok, tmp_path, cfg):
    out = tmp_path / "data"
    return ["prepare", "--config", cfg, "--family", "tiny", "--dataset", "wiki", "--tokenizer", str(tok),
            "--out-train", str(out / "train.parquet"), "--out-val", str(out / "val.parquet"), "--out-heldout", str(out / "h.parquet"), "--out-stats", str(out / "s.json")], out / "train.parquet"


def _doc(i, n=12):
    return json.dumps({"doc_id": f"d{i}", "text": f"Document {i} is about things and more things. " * n})


DATA_CASES = [
    ("empty file", "empty.jsonl", b"", "is empty: no documents were read"),
    ("non-UTF-8", "latin1.jsonl", (_doc(0) + "\n").encode() + b'{"doc_id": "x", "text": "caf\xe9 au lait"}\n', "is not valid UTF-8 at byte offset"),
    ("broken jsonl line", "broken.jsonl", (_doc(0) + "\n" + _doc(1) + '\n{"doc_id": 3, "text": "unterminated\n').encode(), "line 3 is not valid JSON"),
    ("all documents shorter than seq_len", "short.jsonl", "\n".join(_doc(i, 1) for i in range(60)).encode(), "is shorter than seq_len = 32 tokens"),
]


@pytest.mark.parametrize(("name", "fname", "data", "needle"), DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data_cases(micro_tokenizer, tmp_path, capsys, name, fname, data, needle):
    (tmp_path / fname).write_bytes(data)

    def mutate(cfg):
        cfg["datasets"]["wiki"].update(path=str(tmp_path / fname), min_chars=1, pretrain_frac=0.2)

    argv, out = _prepare(micro_tokenizer, tmp_path, _cfg(tmp_path, mutate))
    _expect(capsys, argv, needle, out)


def test_n_train_larger_than_the_corpus(micro_tokenizer, tmp_path, capsys):
    argv, out = _prepare(micro_tokenizer, tmp_path, _cfg(tmp_path, _set(("datasets", "wiki", "n_train"), 100000)))
    _expect(capsys, argv, "datasets.wiki.n_train = 100000 but the corpus gives only", out)


def test_missing_tokenizer_path(micro_tokenizer, tmp_path, capsys):
    argv, out = _prepare(micro_tokenizer, tmp_path, _cfg(tmp_path))
    argv[argv.index("--tokenizer") + 1] = str(tmp_path / "no_such_tokenizer")
    _expect(capsys, argv, f"tokenizer path {tmp_path / 'no_such_tokenizer'} does not exist", out)


def test_parquet_without_text_column(micro_tokenizer, tmp_path, capsys):
    import polars as pl

    pl.DataFrame({"body": ["x " * 300] * 30}).write_parquet(tmp_path / "d.parquet")
    argv, out = _prepare(micro_tokenizer, tmp_path, _cfg(tmp_path, lambda c: c["datasets"]["wiki"].update(path=str(tmp_path / "d.parquet"), id_field=None)))
    _expect(capsys, argv, "has no column 'text' (columns: body)", out)


def test_checkpoint_without_weights(kit, tmp_path, capsys):
    empty = tmp_path / "ckpt"
    empty.mkdir()
    shutil.copy(kit["dir"] / "small" / "config.json", empty)
    argv, out = _distill(kit, tmp_path, base=empty)
    _expect(capsys, argv, f"checkpoint {empty} has no weights", out)


def test_pickle_only_checkpoint_is_refused(kit, tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    pick = tmp_path / "pickled"
    pick.mkdir()
    shutil.copy(kit["dir"] / "small" / "config.json", pick)
    torch.save(load_file(kit["dir"] / "small" / "model.safetensors"), pick / "pytorch_model.bin")
    argv, out = _distill(kit, tmp_path, base=pick)
    _expect(capsys, argv, "only pickle weights (pytorch_model.bin); kdmem loads safetensors only", out)


def test_vocab_mismatch(kit, tmp_path, capsys):
    small = tiny_model_dir(tmp_path / "smallv", Path(kit["tok"]), vocab=100)
    argv, out = _distill(kit, tmp_path, base=small)
    _expect(capsys, argv, "vocab mismatch, the model has 100 embedding rows but the tokenizer has 512 tokens", out)


def test_trust_remote_code_needed_but_off(kit, tmp_path, capsys):
    remote = tmp_path / "remote"
    shutil.copytree(kit["dir"] / "small", remote)
    cfg = json.loads((remote / "config.json").read_text())
    cfg.update(model_type="my_custom_lm", auto_map={"AutoConfig": "modeling_custom.CustomConfig"})
    (remote / "config.json").write_text(json.dumps(cfg))
    argv, out = _distill(kit, tmp_path, base=remote)
    _expect(capsys, argv, "needs its own code (trust_remote_code)", out)


def _copy_cache(kit, tmp_path) -> Path:
    c = tmp_path / "cache"
    shutil.copytree(kit["dir"] / "cache", c)
    return c


def test_stale_teacher_fingerprint(kit, tmp_path, capsys):
    other = tiny_model_dir(tmp_path / "other_teacher", Path(kit["tok"]), hidden=48, seed=7)
    meta = json.loads((kit["dir"] / "cache" / "meta.json").read_text())
    c = _copy_cache(kit, tmp_path)
    meta["teacher_fingerprint"] = "0123456789abcdef"
    (c / "meta.json").write_text(json.dumps(meta))
    argv, out = _distill(kit, tmp_path, cache=c, teacher=other)
    _expect(capsys, argv, "is stale: its teacher_fingerprint", out)


def test_truncated_shard(kit, tmp_path, capsys):
    c = _copy_cache(kit, tmp_path)
    f = c / "shard00000.topk_ids.npy"
    f.write_bytes(f.read_bytes()[:-50])
    argv, out = _distill(kit, tmp_path, cache=c)
    _expect(capsys, argv, "shard00000.topk_ids.npy is truncated", out)


def test_flipped_byte(kit, tmp_path, capsys):
    c = _copy_cache(kit, tmp_path)
    f = c / "shard00000.tail.npy"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    f.write_bytes(bytes(raw))
    argv, out = _distill(kit, tmp_path, cache=c)
    _expect(capsys, argv, "shard00000.tail.npy is corrupt (checksum mismatch)", out)


def test_wrong_k(kit, tmp_path, capsys):
    cfg = _cfg(tmp_path, _set(("distill", "soft", "top_k"), 4))
    argv, out = _distill(kit, tmp_path, cfg=cfg)
    _expect(capsys, argv, "is stale: its k is 8, this run needs 4", out)


def test_temperature_mismatch_and_nonpositive(kit, tmp_path, capsys):
    argv, out = _distill(kit, tmp_path, temperature="1.5")
    _expect(capsys, argv, "is stale: its temperature is 2.0, this run needs 1.5", out)
    argv, out = _distill(kit, tmp_path, temperature="-1")
    _expect(capsys, argv, "needs a temperature > 0, got -1.0", out)


def test_corrupt_parquet_input_to_build_db(kit, tmp_path, capsys):
    bad = tmp_path / "scores.parquet"
    bad.write_bytes(b"PAR1" + np.random.default_rng(0).bytes(200))
    out = tmp_path / "kdmem.duckdb"
    _expect(capsys, ["build-db", "--config", str(kit["cfg"]), "--out", str(out), "--samples", str(kit["dir"] / "train.parquet"),
                     "--models", str(kit["dir"] / "teacher" / "metrics.json"), "--scores", str(bad)], f"corrupt parquet {bad}", out)


def test_missing_analysis_input(kit, tmp_path, capsys):
    out = tmp_path / "report.html"
    _expect(capsys, ["report", "--results", str(tmp_path), "--out", str(out)], "run 'kdmem analyze' first", out)


def test_scores_file_missing_columns(kit, tmp_path, capsys):
    out = tmp_path / "clf.json"
    argv = ["classify", "--config", str(kit["cfg"]), "--family", "tiny", "--dataset", "wiki"]
    for flag in ("--teacher-scores", "--baseline-scores", "--student-scores"):
        argv += [flag, str(kit["dir"] / "train.parquet")]
    argv += ["--out", str(out), "--out-trials", str(tmp_path / "t.parquet"), "--out-coefficients", str(tmp_path / "c.parquet"),
             "--out-predictions", str(tmp_path / "p.parquet"), "--out-roc", str(tmp_path / "roc.png")]
    _expect(capsys, argv, "lacks columns ['exact', 'kl_to_teacher', 'ppl']", out)


def test_global_batch_not_divisible_by_the_gpu_count():
    from kdmem.errors import KdmemError
    from kdmem.training import per_device_batch

    assert per_device_batch(32, 8) == 4 and per_device_batch(32, 1) == 32
    with pytest.raises(KdmemError, match="batch_size 30 cannot be split over 8 processes"):
        per_device_batch(30, 8)


def test_gpu_profile_on_a_machine_without_cuda_stops_before_any_job(tmp_path):
    """profiles/gpu asks for GPUs; on this CPU machine Snakemake must stop with one kdmem line, running nothing."""
    import subprocess
    import sys

    import torch

    from .conftest import ROOT

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = write_cfg(MICRO, tmp_path / "micro.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--profile", str(ROOT / "profiles" / "gpu")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("kdmem:")]
    assert proc.returncode != 0
    assert len(lines) == 1 and "asks for GPUs" in lines[0] and "no CUDA device" in lines[0] and "profiles/default" in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "tiny").exists()
    assert not any((tmp_path / ".snakemake" / "locks").glob("*"))  # the next run must not find a stale lock


def test_gpu_requests_are_read_from_every_place_a_profile_puts_them():
    from kdmem import gpucheck

    asked = gpucheck.requested_gpus({"finetune": {"gpu": 2}, "score": {"mem_mb": 10}}, {"gpu": 0}, {"gpu": "1"})
    assert asked == {"set-resources finetune": 2.0, "default-resources": 1.0}
    assert gpucheck.check(asked, cuda_available=True) is None
    assert gpucheck.check({}, cuda_available=False) is None
    assert "set-resources gpu for 1 rule(s): finetune" in gpucheck.check(asked, cuda_available=False)


def test_every_help_page_renders(capsys):
    """argparse formats help with %: a bare % in a help string (e.g. 'Min-K%') crashed `kdmem --help` with a traceback."""
    from kdmem.cli import build_parser

    ap = build_parser()
    commands = list(ap._subparsers._group_actions[0].choices)
    for argv in (["--help"], *([c, "--help"] for c in commands)):
        with pytest.raises(SystemExit) as e:
            ap.parse_args(argv)
        assert e.value.code == 0, argv
    assert "mia" in commands and "Min-K%" in capsys.readouterr().out
