"""Data preparation on the real embedded corpus with a real BPE tokenizer."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest

from kdmem import config as kconfig
from kdmem.cli import main
from kdmem.data import prepare, split_docs
from kdmem.tokenizer import load_tokenizer

from .conftest import write_cfg


@pytest.fixture(scope="module")
def prepared(micro_tokenizer):
    from .conftest import MICRO

    cfg = kconfig.validate(MICRO)
    return cfg, prepare(cfg, "wiki", load_tokenizer(str(micro_tokenizer)), with_pretrain=True)


def test_lengths_counts_and_exposures(prepared):
    cfg, out = prepared
    ds = cfg["datasets"]["wiki"]
    assert out["train"].height == ds["n_train"] and out["val"].height == ds["n_val"]
    for split in ("train", "val", "pretrain"):
        assert out[split]["input_ids"].list.len().unique().to_list() == [ds["seq_len"]]
        assert out[split]["sample_id"].is_unique().all()
    counts = dict(out["train"]["n_exposures"].value_counts().rows())
    assert counts[1] == 24 and sum(counts.values()) == 48 and set(counts) - {1} <= {4, 8, 16}  # the micro's law: half on 4, 8, 16
    assert out["stats"]["train_tokens_per_epoch"] == sum(c * k for c, k in counts.items()) * ds["seq_len"]


def test_splits_are_disjoint_by_document(prepared):
    _, out = prepared
    docs = {s: set(out[s]["doc_id"]) for s in ("train", "val", "pretrain")}
    assert not docs["train"] & docs["val"]
    assert not docs["train"] & docs["pretrain"]
    assert not docs["val"] & docs["pretrain"]
    ids = [set(out[s]["sample_id"]) for s in ("train", "val", "pretrain")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])


def test_split_is_stable_when_documents_are_added():
    from kdmem.corpus import Doc

    docs = [Doc(str(i), "x") for i in range(200)]
    a = split_docs(docs, 0, 0.1, 0.3)
    b = split_docs(docs + [Doc("new", "x")], 0, 0.1, 0.3)
    moved = {d.doc_id for d in a.train} - {d.doc_id for d in b.train}
    assert len(moved) <= 2  # adding one document may shift at most the boundary docs


def test_text_decodes_to_the_tokens(prepared, micro_tokenizer):
    _, out = prepared
    tok = load_tokenizer(str(micro_tokenizer))
    row = out["train"].row(0, named=True)
    assert tok.decode(row["input_ids"]) == row["text"]


def _run_prepare(cfg, tmp_path, tok, name="out"):
    d = tmp_path / name
    rc = main(
        [
            "prepare", "--config", str(write_cfg(cfg, tmp_path / f"{name}.yaml")), "--family", "tiny", "--dataset", "wiki",
            "--tokenizer", str(tok), "--out-train", str(d / "train.parquet"), "--out-val", str(d / "val.parquet"),
            "--out-heldout", str(d / "heldout.parquet"), "--out-stats", str(d / "stats.json"), "--out-pretrain", str(d / "pretrain.parquet"),
        ]
    )
    return rc, d


def test_determinism_byte_identical(tmp_path, micro_cfg, micro_tokenizer):
    rc1, a = _run_prepare(micro_cfg, tmp_path, micro_tokenizer, "a")
    rc2, b = _run_prepare(micro_cfg, tmp_path, micro_tokenizer, "b")
    assert rc1 == rc2 == 0
    for f in ("train.parquet", "val.parquet", "pretrain.parquet"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
    assert pl.read_parquet(a / "train.parquet")["sample_id"].to_list() == pl.read_parquet(b / "train.parquet")["sample_id"].to_list()
    micro_cfg["seed"] = 1
    _, c = _run_prepare(micro_cfg, tmp_path, micro_tokenizer, "c")
    assert (a / "train.parquet").read_bytes() != (c / "train.parquet").read_bytes()


@pytest.mark.parametrize("val_split", ["window", "document"])
def test_heldout_samples_come_from_documents_no_model_sees(micro_cfg, micro_tokenizer, val_split):
    """n_heldout windows from documents outside D (window validation: whole documents out of the pool; document
    validation: other windows of the validation documents); n_heldout = 0 leaves D and validation as they were."""
    from kdmem import config as kconfig
    from kdmem.data import prepare

    tok = load_tokenizer(str(micro_tokenizer))
    micro_cfg["datasets"]["wiki"].update(val_split=val_split, n_heldout=0)
    plain = prepare(kconfig.validate(micro_cfg), "wiki", tok)
    assert plain["heldout"].height == 0
    micro_cfg["datasets"]["wiki"]["n_heldout"] = 12
    out = prepare(kconfig.validate(micro_cfg), "wiki", tok)
    held = out["heldout"]
    assert held.height == 12 and held["sample_id"].n_unique() == 12
    assert not set(held["doc_id"]) & set(out["train"]["doc_id"])  # no model trains on a held-out document
    assert not set(held["sample_id"]) & set(out["val"]["sample_id"])
    if val_split == "window":
        assert not set(held["doc_id"]) & set(out["val"]["doc_id"])
    else:
        assert out["train"].equals(plain["train"]) and out["val"].equals(plain["val"])  # drawn after D and validation


def test_exposure_law_draws_a_heavy_tailed_profile_independent_of_content():
    """exposure_law: exactly round(share * n) samples duplicated, counts on the geometric grid only, every level
    used, the same draw for the same seed, and which samples are duplicated is a uniform draw (so unrelated to
    their order, hence to anything about them)."""
    from kdmem.data import count_grid, law_counts

    law = {"duplicated_share": 0.1, "min_count": 2, "max_count": 128, "levels": 9, "zipf_exponent": 1.0, "allocation": "exact"}
    grid = count_grid(law)
    assert grid.tolist() == [2, 3, 6, 10, 16, 27, 45, 76, 128]
    c = np.asarray(law_counts(5000, law, np.random.default_rng(0)))
    assert (c == 1).sum() == 4500 and set(np.unique(c[c > 1])) == set(grid.tolist())
    assert c.tolist() == law_counts(5000, law, np.random.default_rng(0))
    # log-uniform, allocated exactly: 500 / 9 = 55.6 per level, so every level holds 55 or 56; a = 2 favours the small counts
    per = np.array([(c == g).sum() for g in grid])
    assert set(per.tolist()) == {55, 56} and per.sum() == 500, per
    drawn = np.asarray(law_counts(5000, {**law, "allocation": "draw"}, np.random.default_rng(0)))
    per_drawn = np.array([(drawn == g).sum() for g in grid])
    assert per_drawn.sum() == 500 and per_drawn.max() - per_drawn.min() > 2 and per_drawn.min() > 30, per_drawn  # a draw scatters
    steep = np.asarray(law_counts(5000, {**law, "zipf_exponent": 2.0}, np.random.default_rng(0)))
    assert (steep == 2).sum() > 3 * (steep == 128).sum() + 50
    # position carries no information: the duplicated share is the same in both halves of D
    first, second = (c[:2500] > 1).mean(), (c[2500:] > 1).mean()
    assert abs(first - second) < 0.03


def test_exposure_law_and_fixed_profile_are_exclusive(tmp_path):
    from kdmem.errors import KdmemError

    from .conftest import MICRO

    cfg = copy.deepcopy(MICRO)
    ds = next(iter(cfg["datasets"].values()))
    ds["exposures"] = [{"count": 1, "share": 1.0}]
    ds["exposure_law"] = {"duplicated_share": 0.1}
    with pytest.raises(KdmemError, match="both exposures and exposure_law"):
        kconfig.validate(cfg)
    ds["exposures"] = []
    ds["exposure_law"] = {"duplicated_share": 0.1, "min_count": 9, "max_count": 4}
    with pytest.raises(KdmemError, match="min_count = 9 exceeds max_count = 4"):
        kconfig.validate(cfg)


def test_extra_validation_windows_leave_d_and_the_first_windows_in_place(micro_tokenizer):
    """n_val_extra draws more validation windows after D's from the same permutation: D (samples, exposures) and the
    first n_val windows are the same frames, the new windows come from D's documents, and none is a window of D."""
    from .conftest import MICRO

    tok = load_tokenizer(str(micro_tokenizer))
    window = copy.deepcopy(MICRO)
    window["datasets"]["wiki"]["val_split"] = "window"  # the extra windows come from D's own documents
    cfg = kconfig.validate(window)
    more = copy.deepcopy(window)
    more["datasets"]["wiki"]["n_val_extra"] = 40
    a, b = prepare(cfg, "wiki", tok), prepare(kconfig.validate(more), "wiki", tok)
    assert a["train"].equals(b["train"]) and a["heldout"].equals(b["heldout"])
    assert b["val"].height == a["val"].height + 40 and set(a["val"]["sample_id"]) <= set(b["val"]["sample_id"])
    assert not set(b["val"]["sample_id"]) & set(b["train"]["sample_id"])
    assert not set(b["val"]["doc_id"]) & set(b["heldout"]["doc_id"])  # D's documents' windows, never a held-out document's


def test_near_copy_ngrams_count_suffix_runs_found_in_another_sample_of_d():
    from kdmem.data import near_copy_ngrams

    d = [[1, 2, 3, 4, 5, 6], [9, 9, 4, 5, 6, 7], [8, 8, 8, 8, 8, 8]]
    # suffix = tokens 2..5, trigrams (3,4,5) and (4,5,6): sample 0 shares (4,5,6) with sample 1; sample 2 repeats only itself
    assert near_copy_ngrams(d, d, 2, 6, 3, in_d=True) == [1, 1, 0]
    # a validation window's n-grams count wherever D holds them, its own index meaning nothing
    assert near_copy_ngrams(d, [[0, 0, 8, 8, 8, 0]], 2, 6, 3, in_d=False) == [1]
