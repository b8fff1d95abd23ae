"""Data preparation (docs/protocol.md "Data"): documents -> fixed-length token samples with stable ids.

- Documents are split by document, never by sample, into validation, pretraining (scratch
  families only) and the D pool, so no text leaks between them. The split key is a hash of
  (seed, doc_id): adding documents to a corpus does not move the others.
- Each document's tokens are cut into non-overlapping windows of `seq_len` (the remainder is
  dropped). `sample_id` = hash(dataset, doc_id, token offset, seq_len): the same config always
  gives the same ids.
- D takes `n_train` windows from the pool at random (seeded), validation `n_val`; then the
  duplication profile (fixed shares, or counts drawn from a heavy-tailed law) gives each training
  sample its `n_exposures` per epoch, in a random order that ignores the sample's content.
- `n_heldout` windows come from documents no model sees (the held-out-document split): utility on
  unseen documents and membership inference's non-members. With window validation they are whole
  validation-share documents taken out of the pool; with document validation, other windows of the
  validation documents. Empty when n_heldout is 0.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections import Counter
from dataclasses import dataclass

import numpy as np
import polars as pl

from kdmem.corpus import Doc, read_docs
from kdmem.errors import KdmemError
from kdmem.settings import Dataset

log = logging.getLogger(__name__)

SAMPLE_SCHEMA = {
    "sample_id": pl.String,
    "doc_id": pl.String,
    "offset": pl.Int32,
    "input_ids": pl.List(pl.Int32),
    "text": pl.String,
    "n_exposures": pl.Int32,
    "zlib_bytes": pl.Int64,
    "zlib_ratio": pl.Float64,
}


def zlib_bytes(text: str) -> int:
    """The paper's zlib entropy: bytes of zlib.compress of the UTF-8 text."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_columns(texts: list[str]) -> dict[str, list]:
    """A sample's zlib entropy over its whole text (zlib_bytes) and its compressibility (zlib_ratio: compressed
    over raw UTF-8 bytes), computed once, here, and read by the classifier, membership inference and the database."""
    z = [zlib_bytes(t) for t in texts]
    return {"zlib_bytes": z, "zlib_ratio": [b / max(1, len(t.encode("utf-8"))) for b, t in zip(z, texts, strict=True)]}


@dataclass
class DocSplit:
    val: list[Doc]
    pretrain: list[Doc]
    train: list[Doc]


def split_docs(docs: list[Doc], seed: int, val_frac: float, pretrain_frac: float) -> DocSplit:
    """Deterministic split by document: hash order, then the first shares go to val and pretrain."""
    order = sorted(docs, key=lambda d: hashlib.sha256(f"{seed}:{d.doc_id}".encode()).hexdigest())
    n = len(order)
    n_val = max(1, round(val_frac * n))
    n_pre = round(pretrain_frac * n) if pretrain_frac > 0 else 0
    if pretrain_frac > 0:
        n_pre = max(1, n_pre)
    if n_val + n_pre >= n:
        raise KdmemError(f"only {n} documents: too few to split into validation, pretraining and D; add documents")
    return DocSplit(order[:n_val], order[n_val : n_val + n_pre], order[n_val + n_pre :])


def sample_id(dataset: str, doc_id: str, offset: int, seq_len: int) -> str:
    return hashlib.sha256(f"{dataset}|{doc_id}|{offset}|{seq_len}".encode()).hexdigest()[:16]


def chunk(docs: list[Doc], tok, dataset: str, seq_len: int, stats: Counter) -> list[tuple[str, str, int, list[int]]]:
    """Cut every document into windows of seq_len tokens: (sample_id, doc_id, offset, ids)."""
    out = []
    enc = tok([d.text for d in docs], add_special_tokens=False)["input_ids"]
    for d, ids in zip(docs, enc, strict=True):
        if len(ids) < seq_len:
            stats["docs_shorter_than_seq_len"] += 1
            continue
        for off in range(0, len(ids) - seq_len + 1, seq_len):
            out.append((sample_id(dataset, d.doc_id, off, seq_len), d.doc_id, off, ids[off : off + seq_len]))
    return out


def _frame(rows, tok, exposures: list[int] | None = None) -> pl.DataFrame:
    rows = sorted(rows, key=lambda r: r[0])
    ids = [r[3] for r in rows]
    texts = tok.batch_decode(ids)
    return pl.DataFrame(
        {
            "sample_id": [r[0] for r in rows],
            "doc_id": [r[1] for r in rows],
            "offset": [r[2] for r in rows],
            "input_ids": ids,
            "text": texts,
            "n_exposures": exposures if exposures is not None else [1] * len(rows),
            **zlib_columns(texts),
        },
        schema=SAMPLE_SCHEMA,
    )


def _take(rows: list, n: int, rng: np.random.Generator, what: str, key: str, have_docs: int) -> list:
    if len(rows) < n:
        raise KdmemError(
            f"{key} = {n} but the corpus gives only {len(rows)} {what} samples from {have_docs} documents; "
            f"lower {key}, shorten seq_len or add documents"
        )
    pick = rng.permutation(len(rows))[:n]
    return [rows[i] for i in sorted(pick)]


def _heldout_docs(docs: list[Doc], tok, seq_len: int, n: int, key: str) -> tuple[list[Doc], list[Doc]]:
    """Split the validation-share documents into whole held-out documents, enough for n windows, and the rest."""
    if n == 0:
        return [], docs
    have = 0
    for i, d in enumerate(docs):
        have += len(tok(d.text, add_special_tokens=False)["input_ids"]) // seq_len
        if have >= n:
            return docs[: i + 1], docs[i + 1 :]
    raise KdmemError(f"{key}.n_heldout = {n} but the {len(docs)} validation-share documents give only {have} windows; "
                     f"lower {key}.n_heldout or raise {key}.val_frac")


def exposure_counts(n: int, profile: list[dict], rng: np.random.Generator) -> list[int]:
    """Per-sample exposures per epoch from the profile's shares, assigned in a seeded random order."""
    if not profile:
        return [1] * n
    sizes = [round(g["share"] * n) for g in profile]
    sizes[-1] = n - sum(sizes[:-1])
    counts = np.repeat([g["count"] for g in profile], sizes)
    return counts[rng.permutation(n)].tolist()


def count_grid(law: dict) -> np.ndarray:
    """The law's counts: `levels` integers spaced geometrically from min_count to max_count (duplicates merged)."""
    return np.unique(np.round(np.geomspace(law["min_count"], law["max_count"], law["levels"])).astype(np.int64))


def law_counts(n: int, law: dict, rng: np.random.Generator) -> list[int]:
    """Per-sample exposures per epoch from a heavy-tailed law (near-copies on the web). Which samples are duplicated is
    a uniform draw, so exposure is independent of content and the two are crossed. P(c) per grid level is proportional
    to c^-a times the width of the level (a geometric grid's widths grow as c), i.e. to c^(1-a). allocation exact: each
    level gets its share of the duplicated samples exactly (largest remainders), dealt in a seeded random order, so
    no level falls short by chance; draw: each duplicated sample draws its level independently."""
    grid = count_grid(law)
    w = grid.astype(float) ** (1.0 - law["zipf_exponent"])
    p = w / w.sum()
    n_dup = round(law["duplicated_share"] * n)
    counts = np.ones(n, dtype=np.int64)
    dup = rng.permutation(n)[:n_dup]
    if law["allocation"] == "draw":  # the schema fills allocation (exact) when a config leaves it out
        counts[dup] = rng.choice(grid, size=n_dup, p=p)
        return counts.tolist()
    quota = p * n_dup
    per_level = np.floor(quota).astype(np.int64)
    per_level[np.argsort(-(quota - per_level), kind="stable")[: n_dup - per_level.sum()]] += 1
    counts[dup] = rng.permutation(np.repeat(grid, per_level))
    return counts.tolist()


def unigram_ce(ref_docs: list[Doc], val: pl.DataFrame, tok) -> float:
    """Cross-entropy (nats/token) of the validation samples' predicted tokens (positions 1..L-1, as
    val_loss counts them) under a unigram model of the reference documents' tokens, add-one smoothed
    over the vocabulary. A base that is a language model must beat it by a wide margin."""
    counts = np.ones(len(tok), dtype=np.float64)
    for ids in tok([d.text for d in ref_docs], add_special_tokens=False)["input_ids"]:
        np.add.at(counts, np.asarray(ids, dtype=np.int64), 1)
    logp = np.log(counts / counts.sum())
    targets = np.asarray(val["input_ids"].to_list(), dtype=np.int64)[:, 1:]
    return float(-logp[targets].mean())


def prepare(cfg: dict, dataset: str, tok, with_pretrain: bool = False, cache_dir=None) -> dict[str, pl.DataFrame | dict]:
    """Build train/val (and the pretraining split) for one dataset and tokenizer."""
    t0 = time.time()
    ds = Dataset.of(cfg, dataset)  # the sampling settings, typed; the loader reads its own keys as given
    key = f"datasets.{dataset}"
    docs, rstats = read_docs(cfg["datasets"][dataset], cache_dir)
    split = split_docs(docs, cfg["seed"], ds.val_frac, ds.pretrain_frac)
    drops: Counter = Counter(rstats.dropped)
    rng = np.random.default_rng(cfg["seed"])
    n_held = ds.n_heldout
    held_rows: list = []
    held_rng = np.random.default_rng([cfg["seed"], 1])  # its own stream: adding held-out samples moves no draw of D's
    if ds.val_split == "window":
        # Validation windows come from the same documents as D (never the same window): in a corpus of a
        # few dozen articles a document split makes validation a topic shift that a web-scale corpus
        # does not have. The pretraining documents stay disjoint from both. The held-out-document split
        # (n_heldout) takes whole validation-share documents out of the pool, fewest first in hash order.
        held_docs, split.val = _heldout_docs(split.val, tok, ds.seq_len, n_held, key)
        if held_docs:
            held_rows = _take(chunk(held_docs, tok, dataset, ds.seq_len, drops), n_held, held_rng, "held-out", f"{key}.n_heldout",
                              len(held_docs))
        pool = chunk(split.train + split.val, tok, dataset, ds.seq_len, drops)
        n_d, extra = ds.n_val + ds.n_train, ds.n_val_extra
        if len(pool) < n_d + extra:
            raise KdmemError(
                f"{key}.n_train + n_val + n_val_extra = {n_d + extra} but the corpus gives only {len(pool)} samples "
                f"from {len(split.train) + len(split.val)} documents; lower them, shorten seq_len or add documents"
            )
        pick = rng.permutation(len(pool))
        # The extra validation windows come after D's in the same permutation: the same uniform draw from the same
        # documents as D (membership inference's non-members), while D and the first n_val windows stay put.
        val_rows = [pool[i] for i in sorted([*pick[: ds.n_val], *pick[n_d : n_d + extra]])]
        train_rows = [pool[i] for i in sorted(pick[ds.n_val : ds.n_val + ds.n_train])]
        train_pool, val_pool = pool, pool
    else:
        train_pool = chunk(split.train, tok, dataset, ds.seq_len, drops)
        val_pool = chunk(split.val, tok, dataset, ds.seq_len, drops)
        if not train_pool or not val_pool:
            raise KdmemError(
                f"{key}: every document of the {'D' if not train_pool else 'validation'} split is shorter than "
                f"seq_len = {ds.seq_len} tokens; lower {key}.seq_len or use longer documents"
            )
        train_rows = _take(train_pool, ds.n_train, rng, "training", f"{key}.n_train", len(split.train))
        val_rows = _take(val_pool, ds.n_val, rng, "validation", f"{key}.n_val", len(split.val))
        if n_held:  # other windows of the validation documents: held out from every model, like validation
            taken = {r[0] for r in val_rows}
            held_rows = _take([r for r in val_pool if r[0] not in taken], n_held, held_rng, "held-out", f"{key}.n_heldout",
                              len(split.val))
    law = ds.exposure_law
    exposures = law_counts(len(train_rows), law, rng) if law else exposure_counts(len(train_rows), ds.exposures, rng)
    # _frame sorts by sample_id, so the exposures must follow their rows through that sort.
    order = sorted(range(len(train_rows)), key=lambda i: train_rows[i][0])
    train = _frame([train_rows[i] for i in order], tok, [exposures[i] for i in order])
    val = _frame(val_rows, tok)
    out: dict = {"train": train, "val": val, "heldout": _frame(held_rows, tok)}
    # The unigram reference: the pretraining documents when the config carves them out, else D's pool.
    ref = split.pretrain or split.train
    if with_pretrain:
        pre_pool = chunk(split.pretrain, tok, dataset, ds.seq_len, drops)
        cap = max(1, cfg["pretrain"]["max_tokens"] // ds.seq_len)
        pre_rows = pre_pool if len(pre_pool) <= cap else _take(pre_pool, cap, rng, "pretraining", "pretrain.max_tokens", len(split.pretrain))
        if not pre_rows:
            raise KdmemError(f"{key}: the pretraining documents give no sample of seq_len {ds.seq_len}; raise pretrain_frac")
        out["pretrain"] = _frame(pre_rows, tok)
    out["stats"] = {
        "dataset": dataset,
        "seq_len": ds.seq_len,
        "docs_read": rstats.read,
        "docs_kept": len(docs),
        "dropped": dict(drops),
        "docs": {"val": len(split.val), "pretrain": len(split.pretrain), "train_pool": len(split.train),
                 "heldout": len({r[1] for r in held_rows})},
        "pool_samples": {"train": len(train_pool), "val": len(val_pool)},
        "samples": {k: v.height for k, v in out.items() if isinstance(v, pl.DataFrame)},
        "tokens": {k: v.height * ds.seq_len for k, v in out.items() if isinstance(v, pl.DataFrame)},
        "exposures_per_epoch": dict(sorted(Counter(exposures).items())),
        "train_tokens_per_epoch": int(sum(exposures)) * ds.seq_len,
        "val_unigram_ce": unigram_ce(ref, val, tok),
        "unigram_reference": "pretrain" if split.pretrain else "train_pool",
        "seconds": round(time.time() - t0, 3),
    }
    log.info("prepared %s: %s", dataset, out["stats"])
    return out


def pretrain_texts(cfg: dict, dataset: str, cache_dir=None) -> list[str]:
    """Texts of the pretraining documents (the tokenizer of a scratch family is trained on them)."""
    ds = cfg["datasets"][dataset]
    docs, _ = read_docs(ds, cache_dir)
    return [d.text for d in split_docs(docs, cfg["seed"], ds["val_frac"], ds["pretrain_frac"]).pretrain]


def near_copy_ngrams(d_ids: list[list[int]], ids: list[list[int]], start: int, stop: int, n: int, in_d: bool) -> list[int]:
    """Natural near-copies: per sample (token ids `ids`), how many of the n-grams inside its suffix (tokens start..stop-1,
    so stop - start - n + 1 of them) occur anywhere in another sample of D (`d_ids`). A window of D that shares a run
    of n suffix tokens with another window was seen more than once per epoch, whatever its designed exposure says.
    in_d: `ids` are D's own samples, in the same order, so a sample's own n-grams do not count."""
    where: dict[tuple[int, ...], tuple[int, bool]] = {}  # n-gram -> (first sample holding it, held by a second one)
    for i, seq in enumerate(d_ids):
        for j in range(len(seq) - n + 1):
            g = tuple(seq[j : j + n])
            first = where.get(g)
            if first is None:
                where[g] = (i, False)
            elif first[0] != i and not first[1]:
                where[g] = (first[0], True)
    out = []
    for i, seq in enumerate(ids):
        hits = 0
        for j in range(start, stop - n + 1):
            w = where.get(tuple(seq[j : j + n]))
            hits += w is not None and (w[1] or not in_d or w[0] != i)
        out.append(hits)
    return out


def read_samples(path) -> pl.DataFrame:
    """A samples parquet, checked for the columns kdmem needs."""
    from pathlib import Path

    p = Path(path)
    try:
        df = pl.read_parquet(p)
    except Exception as e:  # noqa: BLE001 - polars raises several types for a corrupt file
        raise KdmemError(f"cannot read samples parquet {p}: {str(e).splitlines()[0]}; rerun the prepare step") from None
    missing = [c for c in ("sample_id", "input_ids") if c not in df.columns]
    if missing:
        raise KdmemError(f"samples file {p} lacks columns {missing}; it must come from 'kdmem prepare'")
    return df
