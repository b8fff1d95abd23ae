"""kdmem audit on a dataset the user brings, with hostile text that must not reach SQL as code."""

from __future__ import annotations

import json

import duckdb
import polars as pl

from kdmem.args import CacheSpec
from kdmem.cli import main
from kdmem.vocab import CacheKind

from .conftest import MICRO, write_cfg
from .helpers import MIN_K, mem_settings, tiny_model_dir


def _fine_tuned(path, role: str, dataset: str = "wiki"):
    """A tiny model folder that says, as a kdmem fine-tune's metrics.json does, which role and dataset it is."""
    (path / "metrics.json").write_text(json.dumps({"model": f"{role}-s0", "role": role, "dataset": dataset, "family": "tiny"}))
    return path


def _audit_argv(tmp_path, data, teacher, baseline, tokenizer, *extra):
    return ["audit", "--config", str(write_cfg(MICRO, tmp_path / "c.yaml")), "--data", str(data), "--teacher", str(teacher),
            "--baseline", str(baseline), "--classifier", str(tmp_path / "clf.json"), "--tokenizer", str(tokenizer),
            "--out", str(tmp_path / "risk.parquet"), "--removal-list", str(tmp_path / "removal.txt"), *extra]


CLF = {"family": "tiny", "dataset": "wiki",
       "model": {"features": ["log_teacher_ppl", "log_baseline_ppl", "kl_teacher_baseline", "zlib_bytes"], "mean": [6.0, 6.0, 0.5, 60.0],
                 "scale": [1.0, 1.0, 0.2, 10.0], "coef": [0.0, 0.0, 0.0, -3.0], "intercept": 0.0, "threshold": 0.5}}


def test_audit_scores_new_data_and_is_injection_safe(tmp_path, micro_tokenizer, capsys):
    teacher = _fine_tuned(tiny_model_dir(tmp_path / "t", micro_tokenizer, hidden=48, seed=1), "teacher")
    baseline = _fine_tuned(tiny_model_dir(tmp_path / "b", micro_tokenizer, hidden=32, seed=2), "baseline")
    clf = CLF
    (tmp_path / "clf.json").write_text(json.dumps(clf))
    evil = "Robert'); DROP TABLE audit; --"
    docs = [{"doc_id": f"d{i}", "text": (evil + " ") * 10 if i == 0 else f"Plain words about topic {i}. " * 12} for i in range(6)]
    data = tmp_path / "new.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in docs))
    dbp = tmp_path / "audit.duckdb"
    rc = main(_audit_argv(tmp_path, data, teacher, baseline, micro_tokenizer, "--db", str(dbp)))  # the window: the config's seq_len
    assert rc == 0, capsys.readouterr().err
    risk = pl.read_parquet(tmp_path / "risk.parquet")
    assert {"sample_id", "teacher_ppl", "baseline_ppl", "kl_teacher_baseline", "zlib_bytes", "risk", "predicted"} <= set(risk.columns)
    assert pl.read_parquet(tmp_path / "risk.parquet").height and all(len(t) for t in risk["text"])
    assert risk["risk"].is_between(0, 1).all()
    listed = (tmp_path / "removal.txt").read_text().split()
    assert sorted(listed) == sorted(risk.filter("predicted")["sample_id"].to_list())
    con = duckdb.connect(str(dbp), read_only=True)
    assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == risk.height
    assert con.execute("SELECT count(*) FROM audit WHERE text LIKE ?", ["%DROP TABLE audit%"]).fetchone()[0] >= 1


def test_audit_features_equal_the_pipelines_on_the_same_samples(tmp_path, micro_tokenizer):
    """One definition of each classifier feature: the audit's KL(teacher || baseline) is the scorer's
    kl_to_teacher from the T = 1 top-k cache (top-k + tail buckets), and the perplexities and zlib agree."""
    from kdmem import audit as kaudit
    from kdmem.logit_cache import CacheReader, write_cache
    from kdmem.models import load_model, pick_device
    from kdmem.scoring import score_samples
    from kdmem.tokenizer import load_tokenizer

    from .helpers import micro_samples

    tok = load_tokenizer(str(micro_tokenizer))
    teacher_dir = tiny_model_dir(tmp_path / "t", micro_tokenizer, hidden=48, seed=1)
    baseline_dir = tiny_model_dir(tmp_path / "b", micro_tokenizer, hidden=32, seed=2)
    teacher, baseline = load_model(str(teacher_dir)), load_model(str(baseline_dir))
    train, _ = micro_samples(MICRO, micro_tokenizer)
    train = train.head(20)
    dev, vocab, k = pick_device("cpu"), len(tok), 8
    write_cache(teacher, dev, train, vocab, CacheSpec(CacheKind.TOPK, 1.0, top_k=k), tmp_path / "cache", meta={})
    cache = CacheReader(tmp_path / "cache", {"temperature": 1.0})
    scored_b = score_samples(baseline, tok, dev, train, vocab, mem_settings(16, 16, frac=False), MIN_K, cache=cache)
    scored_t = score_samples(teacher, tok, dev, train, vocab, mem_settings(16, 16, frac=False), MIN_K)
    feats = kaudit.features(teacher, baseline, dev, train, vocab, tok, top_k=k).sort("sample_id")
    scored_b, scored_t = scored_b.sort("sample_id"), scored_t.sort("sample_id")
    assert feats["sample_id"].to_list() == scored_b["sample_id"].to_list()
    for ours, theirs in (("kl_teacher_baseline", scored_b["kl_to_teacher"]), ("baseline_ppl", scored_b["ppl"]),
                         ("teacher_ppl", scored_t["ppl"])):
        diff = (feats[ours] - theirs).abs().max()
        assert diff < 1e-4 * float(theirs.abs().max()), (ours, diff)
    assert feats["zlib_bytes"].to_list() == scored_b["zlib_bytes"].to_list()
    # texts cut by the audit itself get the same whole-sample zlib_bytes as prepare computes
    again = kaudit.features(teacher, baseline, dev, train.drop("zlib_bytes", "zlib_ratio"), vocab, tok, top_k=k).sort("sample_id")
    assert again["zlib_bytes"].to_list() == feats["zlib_bytes"].to_list()
    # the full-vocabulary KL the audit used to compute is a different quantity: the check above can fail
    assert float(feats["kl_teacher_baseline"].min()) > 0


def test_audit_refuses_another_window_length_and_models_not_fine_tuned_on_the_data(tmp_path, micro_tokenizer, capsys):
    """The classifier's features describe trained-on samples of its own length: a different --seq-len, or a teacher
    that is no kdmem fine-tune on the classifier's dataset, gets one line and no output."""
    teacher = _fine_tuned(tiny_model_dir(tmp_path / "t", micro_tokenizer, hidden=48, seed=1), "teacher")
    baseline = _fine_tuned(tiny_model_dir(tmp_path / "b", micro_tokenizer, hidden=32, seed=2), "baseline")
    other = _fine_tuned(tiny_model_dir(tmp_path / "o", micro_tokenizer, hidden=48, seed=3), "teacher", dataset="fineweb")
    (tmp_path / "clf.json").write_text(json.dumps(CLF))
    data = tmp_path / "new.jsonl"
    data.write_text("\n".join(json.dumps({"doc_id": f"d{i}", "text": f"Plain words about topic {i}. " * 12}) for i in range(3)))
    assert main(_audit_argv(tmp_path, data, teacher, baseline, micro_tokenizer, "--seq-len", "64")) == 2
    err = capsys.readouterr().err
    assert "the classifier learned on 32-token samples" in err and "Traceback" not in err
    assert main(_audit_argv(tmp_path, data, other, baseline, micro_tokenizer)) == 2
    assert "must be a kdmem teacher fine-tuned on 'wiki'" in capsys.readouterr().err
    assert not (tmp_path / "risk.parquet").exists()
