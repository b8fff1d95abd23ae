"""Scoring on a real tiny model trained to memorize a few planted samples."""

from __future__ import annotations

import math
import zlib

import numpy as np
import polars as pl
import pytest
import torch

from kdmem.args import CacheSpec, OptimArgs
from kdmem.errors import KdmemError
from kdmem.logit_cache import CacheReader, write_cache
from kdmem.models import load_model, pick_device
from kdmem.scoring import score_samples, summary
from kdmem.settings import Extraction
from kdmem.tokenizer import load_tokenizer
from kdmem.training import train_model
from kdmem.vocab import CacheKind

from .conftest import MICRO
from .helpers import MIN_K, mem_settings, micro_samples, tiny_model_dir

CPU = pick_device("cpu")
P, S = 16, 16


@pytest.fixture(scope="module")
def memorizer(tmp_path_factory, micro_tokenizer):
    d = tmp_path_factory.mktemp("score")
    train, val = micro_samples(MICRO, micro_tokenizer)
    # 10 planted samples seen 80x per epoch, the rest once: some memorized, some not.
    planted = train["sample_id"].sort().head(10).to_list()
    train = train.with_columns(n_exposures=pl.when(pl.col("sample_id").is_in(planted)).then(80).otherwise(1).cast(pl.Int32))
    tok = load_tokenizer(str(micro_tokenizer))
    base = tiny_model_dir(d / "base", micro_tokenizer, hidden=64, layers=2)
    optim = OptimArgs(**{"lr": 3e-3, "schedule": "constant", "epochs": 3, "batch_size": 16, "grad_accum": 1, "warmup_ratio": 0.0,
                           "weight_decay": 0.0, "max_grad_norm": 1.0, "save_steps": 10000})
    train_model(model=load_model(str(base)), tok=tok, vocab=len(tok), train_df=train, val_df=val, optim=optim, seed=0,
                out_dir=d / "m", ckpt_dir=d / "ck", dev=CPU, meta={"role": "baseline"})
    model = load_model(str(d / "m"))
    return {"model": model, "tok": tok, "train": train, "val": val, "planted": planted, "dir": d, "base": base}


def _score(mem, df=None, cache=None, **changes):
    return score_samples(mem["model"], mem["tok"], CPU, mem["train"] if df is None else df, len(mem["tok"]),
                         mem_settings(P, S, batch_size=16, **changes), MIN_K, cache=cache)


def test_exact_agrees_with_generate_on_every_sample(memorizer):
    sc = _score(memorizer, frac=True)
    assert sc["exact"].sum() >= 3, "some samples must be memorized"
    assert (~sc["exact"]).sum() >= 10, "and some not"
    assert (sc["exact"] == sc["exact_gen"]).all()
    assert set(sc.filter("exact")["sample_id"]) <= set(memorizer["planted"])
    # frac is 1 exactly when generation reproduced the suffix
    assert ((sc["frac"] == 1.0) == sc["exact_gen"]).all()
    s = summary(sc)
    assert s["agreement"]["checked"] == sc.height and s["agreement"]["agree"] == sc.height


def test_generation_batches_do_not_change_the_generated_tokens(memorizer):
    # memorization.generate_batch_size is a speed knob only: odd batches (a short last one) give every sample's frac
    small, large = _score(memorizer, frac=True, generate_batch_size=7), _score(memorizer, frac=True, generate_batch_size=64)
    assert small.height == memorizer["train"].height
    assert small["frac"].to_list() == large["frac"].to_list()
    assert small["exact_gen"].to_list() == large["exact_gen"].to_list()
    assert small["frac"].n_unique() > 2, "frac must vary across samples for the comparison to mean something"


def test_signals_against_an_independent_computation(memorizer):
    sc = _score(memorizer, frac=False).row(3, named=True)
    row = memorizer["train"].row(3, named=True)
    x = torch.tensor([row["input_ids"]])
    with torch.no_grad():
        logits = memorizer["model"](input_ids=x).logits[0].double()
    lp = torch.log_softmax(logits, -1).numpy()
    ids = row["input_ids"]
    suffix_lp = [lp[t - 1, ids[t]] for t in range(P, P + S)]
    assert sc["suffix_logprob_sum"] == pytest.approx(sum(suffix_lp), rel=1e-4)
    assert sc["suffix_logprob_mean"] == pytest.approx(np.mean(suffix_lp), rel=1e-4)
    ent = [-(np.exp(lp[t - 1]) * lp[t - 1]).sum() for t in range(P, P + S)]
    assert sc["entropy"] == pytest.approx(np.mean(ent), rel=1e-4)
    all_lp = [lp[t - 1, ids[t]] for t in range(1, len(ids))]
    assert sc["ppl"] == pytest.approx(math.exp(-np.mean(all_lp)), rel=1e-4)
    assert sc["tf_acc"] == pytest.approx(np.mean([lp[t - 1].argmax() == ids[t] for t in range(P, P + S)]))
    # the sample's zlib entropy over its whole text, as prepare computed it once
    assert sc["zlib_bytes"] == len(zlib.compress(memorizer["tok"].decode(ids).encode("utf-8")))


def test_kl_to_teacher_from_cache(memorizer):
    d = memorizer["dir"]
    teacher = load_model(str(memorizer["base"]))  # any other model serves as the "teacher" here
    V = len(memorizer["tok"])
    write_cache(teacher, CPU, memorizer["train"], V, CacheSpec(CacheKind.TOPK, 1.0, top_k=V), d / "cache1", meta={})  # k = V: the KL is exact
    sc = _score(memorizer, frac=False, cache=CacheReader(d / "cache1", {"temperature": 1.0}))
    x = torch.tensor([memorizer["train"].row(0, named=True)["input_ids"]])
    with torch.no_grad():
        p = torch.log_softmax(teacher(input_ids=x).logits[0, :-1].double(), -1)
        q = torch.log_softmax(memorizer["model"](input_ids=x).logits[0, :-1].double(), -1)
    want = (p.exp() * (p - q)).sum(-1).mean().item()
    assert sc["kl_to_teacher"][0] == pytest.approx(want, rel=2e-2)
    self_cache = d / "cache_self"
    write_cache(memorizer["model"], CPU, memorizer["train"].head(8), V, CacheSpec(CacheKind.TOPK, 1.0, top_k=16), self_cache, meta={})
    own = _score(memorizer, df=memorizer["train"].head(8), frac=False, cache=CacheReader(self_cache, {}))
    assert own["kl_to_teacher"].max() < 1e-2  # a model against its own cache: ~0


def test_byte_identical_across_runs(memorizer, tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _score(memorizer, frac=True).write_parquet(a, statistics=False)
    _score(memorizer, frac=True).write_parquet(b, statistics=False)
    assert a.read_bytes() == b.read_bytes()


def test_validation_is_a_non_member_control(memorizer):
    sc = _score(memorizer, df=memorizer["val"], frac=False)
    assert sc["exact"].sum() == 0 and sc["kl_to_teacher"].is_null().all()


def test_bad_inputs(memorizer):
    with pytest.raises(KdmemError, match="exceeds the samples' seq_len"):
        score_samples(memorizer["model"], memorizer["tok"], CPU, memorizer["train"], len(memorizer["tok"]), mem_settings(20, 20), MIN_K)
    with pytest.raises(KdmemError, match="vocabulary has 100 ids"):
        score_samples(memorizer["model"], memorizer["tok"], CPU, memorizer["train"], 100, mem_settings(P, S), MIN_K)
    from kdmem.data import read_samples

    bad = memorizer["dir"] / "bad.parquet"
    memorizer["train"].drop("input_ids").write_parquet(bad)
    with pytest.raises(KdmemError, match="lacks columns \\['input_ids'\\]"):
        read_samples(bad)
    with pytest.raises(KdmemError, match="stale: its teacher_fingerprint"):
        write_cache(memorizer["model"], CPU, memorizer["train"].head(4), len(memorizer["tok"]), CacheSpec(CacheKind.TOPK, 1.0, top_k=4),
                    memorizer["dir"] / "c_other", meta={"teacher_fingerprint": "teacher-A"})
        CacheReader(memorizer["dir"] / "c_other", {"teacher_fingerprint": "teacher-B"})


def test_extraction_probability_equals_the_frequency_of_sampled_suffixes(memorizer):
    """The one-pass extraction probability against transformers' own sampler. The targets are each validation
    prefix followed by the model's own greedy 2-token continuation (always inside the top k, and of middling
    probability on text the model never saw). For two targets whose probability under top-5 sampling lies in
    (0.05, 0.95), `generate` draws the continuation 1,500 times, and the share of draws that reproduce it lies
    within its 99.9 % binomial interval."""
    from transformers import GenerationConfig

    from kdmem.generate import greedy_continue
    from kdmem.stats import clopper_pearson

    model, tok = memorizer["model"], memorizer["tok"]
    vocab = len(tok)
    k, s = 5, 2
    prompts = torch.tensor([ids[:P] for ids in memorizer["val"]["input_ids"].to_list()])
    targets = greedy_continue(model, CPU, prompts, s, vocab, tok.pad_token_id)
    df = pl.DataFrame({"sample_id": [f"v{i}" for i in range(len(targets))], "input_ids": targets.tolist(),
                       "n_exposures": [1] * len(targets)}, schema_overrides={"input_ids": pl.List(pl.Int32)})
    sc = score_samples(model, tok, CPU, df, vocab, mem_settings(P, s, batch_size=16, frac=False,
                       extraction=Extraction(top_k=k, temperature=1.0, n=10, p=0.5)), MIN_K)
    prob = np.exp(sc["extract_logprob"].to_numpy())
    mid = np.flatnonzero((prob > 0.05) & (prob < 0.95))
    assert mid.size >= 2, f"need targets of middling extraction probability, got {np.round(prob, 3)}"
    # (n, p) = (10, 0.5): extractable iff P >= 1 - 0.5 ** (1 / 10)
    assert (sc["extractable"].to_numpy() == (prob >= 1 - 0.5 ** 0.1)).all()
    # untruncated (T = 1, full vocabulary): the suffix log-prob itself, never below the top-k one's truncation to -inf
    full = np.exp(sc["suffix_logprob_sum"].to_numpy())
    assert (sc["extractable_full"].to_numpy() == (full >= 1 - 0.5 ** 0.1)).all() and (full[np.isfinite(prob)] <= prob[np.isfinite(prob)] + 1e-9).all()
    gc = GenerationConfig(do_sample=True, top_k=k, top_p=1.0, temperature=1.0, max_new_tokens=s, eos_token_id=None,
                          pad_token_id=tok.pad_token_id, suppress_tokens=list(range(vocab, model.get_output_embeddings().weight.shape[0])) or None)
    torch.manual_seed(0)
    draws = 1500
    for i in mid[:2]:
        ids = targets[int(i) : int(i) + 1]
        prompt = ids[:, :P].repeat(draws, 1)
        with torch.inference_mode():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=gc)
        assert out.shape[1] == P + s  # no early stop: every draw is judged on all s tokens
        hits = int((out[:, P:] == ids[:, P : P + s]).all(-1).sum())
        lo, hi = clopper_pearson(hits, draws, alpha=0.001)
        assert lo <= prob[i] <= hi, (int(i), prob[i], hits / draws)
