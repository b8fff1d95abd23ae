"""Teacher logit cache (docs/protocol.md "Roles": the student learns from the teacher's softened distribution).

One pass of the fine-tuned teacher over every training sample stores, per predicted position
(positions 0..seq_len-2, each predicting the next token), one of two kinds (`distill.soft.cache`):

topk (the default):
  topk_ids   (n, L-1, k)  uint16 when vocab <= 65,536, else int32
  topk_logp  (n, L-1, k)  float16 log-probs at temperature T
  tail       (n, L-1)     float16 mass outside the top k, at T
  That is 4k + 2 bytes per position (122 B at k = 30). meta.json records the mean tail mass: the share
  of the teacher's distribution at T that the top k leave out, averaged over every position.
sampled (random-sampling KD, Anshumann et al. 2025; kdmem.kd):
  D ids are drawn with replacement from the teacher at T per position; each distinct id is stored once
  with its count c (the estimate's weight c / D), packed as RS-KD packs them: one integer
  id * (D + 1) + c in the fewest whole bytes that hold it (2 at the miniature's vocabulary and 16 draws,
  3 at Pythia's), so a peaked teacher costs fewer bytes than a flat one.
  n_distinct   (n, L-1)       uint8 (uint16 above 255 draws): distinct ids per position
  draw_entries (E, b)         uint8: the packed entries, position after position, little-endian
  row_start    (n + 1,)       int64: each sample's first entry in draw_entries
  About b * distinct + 1 bytes per position. meta.json records the mean teacher mass the distinct ids
  cover, their mean number and b. The draws come from a generator seeded with `seed`, so the same
  teacher and seed give the same cache.

full (exact distillation from a cache):
  logp       (n, L-1, V)  float16 log-probs at temperature T over the whole vocabulary
  plogp      (n, L-1)     float32: sum_v p log p of that float16 distribution (renormalised), the KL's teacher
                          term, so a step need not recompute it every epoch (a cache without it still reads)
  2V bytes per position (4,096 B at the miniature's 2,048 ids): the teacher's full distribution, as online
  (dense) KD sees it, for a fraction of the compute where one teacher pass serves several students and
  epochs. At a web-scale vocabulary and D it is terabytes: there `dense` is the exact choice.

Values depend on T, so each cache is valid for one temperature, recorded in its metadata.

Format: a folder with meta.json (kind, teacher fingerprint, tokenizer fingerprint, k or draws, T,
seq_len, vocab, sample ids, and a sha256 per shard file) and shards of plain .npy arrays. .npy is read
with allow_pickle=False and memory-mapped, so a 30 GB cache costs no RAM and cannot execute code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from kdmem.args import CacheSpec
from kdmem.errors import KdmemError
from kdmem.io import atomic_path, read_json, sha256_file, write_json
from kdmem.kd import distinct_draws, teacher_draws, teacher_plogp, teacher_topk

log = logging.getLogger(__name__)
ARRAYS = {"topk": ("topk_ids", "topk_logp", "tail"), "sampled": ("n_distinct", "draw_entries", "row_start"), "full": ("logp", "plogp")}
OPTIONAL = {"plogp"}  # full caches written before it was stored still read; the loss then computes the term
KINDS = tuple(ARRAYS)
FORMAT = "kdmem-logit-cache/2"  # 2: sampled caches store distinct ids with counts


def _per_position(kind: str, logits: torch.Tensor, temperature: float, width: int, gen: torch.Generator):
    """One batch's (N, V) logits -> the kind's arrays, and the per-position statistic meta.json averages:
    the tail mass (topk) or the teacher mass the drawn ids cover (sampled). Sampled returns each position's
    number of distinct ids (N,) and the packed entries id * (D + 1) + count, position after position."""
    if kind == "topk":
        ids, vals, tail = teacher_topk(logits, temperature, width)
        return {"topk_ids": ids, "topk_logp": vals, "tail": tail}, tail
    if kind == "full":
        lp = torch.log_softmax(logits.float() / temperature, dim=-1)
        return {"logp": lp, "plogp": teacher_plogp(lp.half().float())}, torch.zeros(logits.shape[0])
    ids, covered = teacher_draws(logits, temperature, width, gen)
    ids, counts = distinct_draws(ids)
    keep = counts > 0
    return {"n_distinct": keep.sum(-1), "draw_entries": ids[keep] * (width + 1) + counts[keep]}, covered


def entry_bytes(vocab: int, draws: int) -> int:
    """Whole bytes that hold the largest packed entry, (vocab - 1) * (draws + 1) + draws."""
    return max(1, -(-(vocab * (draws + 1) - 1).bit_length() // 8))


def pack_entries(values: np.ndarray, nbytes: int) -> np.ndarray:
    """(E,) non-negative integers -> (E, nbytes) uint8, little-endian."""
    return np.ascontiguousarray(values.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :nbytes])


def unpack_entries(packed: np.ndarray) -> np.ndarray:
    """(E, nbytes) uint8 -> (E,) int64."""
    full = np.zeros((packed.shape[0], 8), np.uint8)
    full[:, : packed.shape[1]] = packed
    return full.view("<u8").ravel().astype(np.int64)


def write_cache(
    model, dev, samples: pl.DataFrame, vocab: int, spec: CacheSpec, out_dir: str | Path,
    meta: dict, batch_size: int = 64, shard_size: int = 8192,
) -> dict:
    """One teacher pass over `samples`, stored as `spec` says (kind, T, top_k or draws and their seed)."""
    kind, temperature, k, draws, seed = str(spec.kind), spec.temperature, spec.top_k, spec.draws, spec.seed
    ids_dtype = np.uint16 if vocab <= 65536 else np.int32
    width = spec.width or vocab
    nbytes = entry_bytes(vocab, draws)
    dtypes = {"topk_ids": ids_dtype, "topk_logp": np.float16, "tail": np.float16, "n_distinct": np.uint8 if draws <= 255 else np.uint16,
              "logp": np.float16, "plogp": np.float32}
    seq_len = len(samples["input_ids"][0])
    m = seq_len - 1  # predicted positions per sample
    per_row = {"topk_ids": (m, width), "topk_logp": (m, width), "tail": (m,), "n_distinct": (m,), "logp": (m, width), "plogp": (m,)}
    n = samples.height
    gen = torch.Generator(device=dev.device).manual_seed(seed)
    model.to(dev.device).eval()
    with atomic_path(out_dir, is_dir=True) as tmp:
        shards = []
        # topk: the mean tail mass says how much of the teacher's distribution the cache leaves out;
        # sampled: the mean mass its distinct drawn ids cover, and how many distinct ids that takes.
        stat_sum = distinct_sum = 0.0
        for s0 in range(0, n, shard_size):
            part = samples.slice(s0, shard_size)
            arrs = {a: np.empty((part.height, *per_row[a]), dtypes[a]) for a in ARRAYS[kind] if a in per_row}
            entries: list[np.ndarray] = []  # sampled: ragged, joined at the shard's end
            for b0 in tqdm(range(0, part.height, batch_size), desc=f"cache {kind} T={temperature} shard {len(shards)}", mininterval=5):
                x = torch.tensor(part["input_ids"].slice(b0, batch_size).to_list(), device=dev.device)
                with torch.inference_mode(), dev.autocast():
                    logits = model(input_ids=x).logits[:, :-1, :vocab]  # (B, L-1, V)
                b = x.shape[0]
                with torch.inference_mode():
                    out, stat = _per_position(kind, logits.reshape(-1, vocab), temperature, width, gen)
                for a, v in out.items():
                    if a == "draw_entries":
                        entries.append(v.cpu().numpy())
                    else:
                        arrs[a][b0 : b0 + b] = v.reshape(b, *per_row[a]).cpu().numpy().astype(dtypes[a])
                stat_sum += float(stat.double().sum())
                if kind == "sampled":
                    distinct_sum += float(out["n_distinct"].sum())
            if kind == "sampled":
                arrs["draw_entries"] = pack_entries(np.concatenate(entries), nbytes)
                arrs["row_start"] = np.concatenate([[0], np.cumsum(arrs["n_distinct"].sum(-1, dtype=np.int64))]).astype(np.int64)
            files = {}
            for name, a in arrs.items():
                f = tmp / f"shard{len(shards):05d}.{name}.npy"
                np.save(f, a, allow_pickle=False)
                files[name] = {"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size}
            shards.append({"rows": part.height, "files": files})
        positions = n * (seq_len - 1)
        full = {
            **meta, "format": FORMAT, "kind": kind, "temperature": temperature, "seq_len": seq_len, "vocab": vocab,
            "ids_dtype": np.dtype(ids_dtype).name, "n_samples": n, "shards": shards, "sample_ids": samples["sample_id"].to_list(),
        }
        if kind == "topk":
            full.update(k=k, mean_tail_mass=stat_sum / positions)
        elif kind == "sampled":
            full.update(draws=draws, seed=seed, entry_bytes=nbytes, mean_covered_mass=stat_sum / positions, mean_distinct_ids=distinct_sum / positions)
        total = sum(f["bytes"] for s in shards for f in s["files"].values())
        full["bytes_per_token"] = total / (n * seq_len)
        write_json(full, tmp / "meta.json")
    stat = {key: round(v, 4) for key, v in full.items() if key.startswith("mean_")}
    log.info("cached %d samples, %s at T=%s: %.1f bytes/token, %s", n, kind, temperature, full["bytes_per_token"], stat)
    return full


class CacheReader:
    """Reads a cache of any kind (topk, sampled, full), after checking it belongs to this teacher, tokenizer, kind,
    width (k or draws), T and seq_len."""

    def __init__(self, path: str | Path, expect: dict, verify: bool = True):
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.is_file():
            raise KdmemError(f"logit cache {self.path} has no meta.json; rerun the cache-logits step")
        try:
            self.meta = read_json(meta_file)
        except ValueError:
            raise KdmemError(f"logit cache {meta_file} is corrupt (not JSON); delete the cache and rerun cache-logits") from None
        self.meta.setdefault("kind", "topk")  # caches written before the sampled kind existed
        self.kind = self.meta["kind"]
        for key, want in expect.items():
            have = self.meta.get(key)
            if isinstance(want, float) and isinstance(have, int | float):
                same = abs(have - want) < 1e-9
            else:
                same = have == want
            if not same:
                raise KdmemError(
                    f"logit cache {self.path} is stale: its {key} is {have!r}, this run needs {want!r}; delete it and rerun cache-logits"
                )
        self.rows_of = {sid: i for i, sid in enumerate(self.meta["sample_ids"])}
        self._starts = np.cumsum([0] + [s["rows"] for s in self.meta["shards"]])
        self._arrays: list[dict[str, np.ndarray]] = []
        for s in self.meta["shards"]:
            loaded = {}
            for name in ARRAYS[self.kind]:
                info = s["files"].get(name)
                if info is None and name in OPTIONAL:
                    continue
                if info is None:  # e.g. a sampled cache of format 1 (every draw stored, no counts)
                    raise KdmemError(f"logit cache {self.path} has no {name} array (format {self.meta.get('format')}, "
                                     f"this kdmem reads {FORMAT}); delete it and rerun cache-logits")
                f = self.path / info["file"]
                if not f.is_file():
                    raise KdmemError(f"logit cache shard {f} is missing; delete the cache and rerun cache-logits")
                if f.stat().st_size != info["bytes"]:
                    raise KdmemError(f"logit cache shard {f} is truncated ({f.stat().st_size} of {info['bytes']} bytes); delete the cache and rerun")
                if verify and sha256_file(f) != info["sha256"]:
                    raise KdmemError(f"logit cache shard {f} is corrupt (checksum mismatch); delete the cache and rerun cache-logits")
                try:
                    loaded[name] = np.load(f, mmap_mode="r", allow_pickle=False)
                except ValueError as e:
                    raise KdmemError(f"logit cache shard {f} is unreadable ({e}); delete the cache and rerun") from None
            self._arrays.append(loaded)

    def rows(self, sample_ids) -> list[int]:
        try:
            return [self.rows_of[s] for s in sample_ids]
        except KeyError as e:
            raise KdmemError(f"sample {e.args[0]} is not in logit cache {self.path}; the cache was built from other samples") from None

    def get(self, rows: list[int]) -> dict[str, torch.Tensor]:
        """Teacher targets for cache rows. topk: t_ids (B, L-1, k) long, t_logp (B, L-1, k), t_tail (B, L-1);
        sampled: t_draw_ids, t_draw_counts (B, L-1, W) long, W the most distinct ids at any position in
        the batch, the shorter positions padded with count 0; full: t_full_logp (B, L-1, V)."""
        rows_a = np.asarray(rows)
        shard = np.searchsorted(self._starts, rows_a, side="right") - 1
        where = [(self._arrays[sh], r - self._starts[sh]) for r, sh in zip(rows_a, shard, strict=True)]
        if self.kind == "sampled":
            return self._get_sampled(where)
        if self.kind == "full":
            # float16 -> float32 in torch: one vectorised pass, faster than numpy's astype on this path (benchmarks/bench_kd_step.py)
            out = {"t_full_logp": torch.from_numpy(np.stack([a["logp"][i] for a, i in where])).float()}
            if all("plogp" in a for a, _ in where):
                out["t_full_plogp"] = torch.from_numpy(np.stack([a["plogp"][i] for a, i in where]))
            return out
        return {
            "t_ids": torch.from_numpy(np.stack([a["topk_ids"][i] for a, i in where]).astype(np.int64)),
            "t_logp": torch.from_numpy(np.stack([a["topk_logp"][i] for a, i in where]).astype(np.float32)),
            "t_tail": torch.from_numpy(np.stack([a["tail"][i] for a, i in where]).astype(np.float32)),
        }

    def _get_sampled(self, where: list[tuple[dict[str, np.ndarray], int]]) -> dict[str, torch.Tensor]:
        nd = np.stack([a["n_distinct"][i] for a, i in where]).astype(np.int64)  # (B, P)
        values = np.concatenate([unpack_entries(a["draw_entries"][a["row_start"][i] : a["row_start"][i + 1]]) for a, i in where])
        # entry j of position (b, p) goes to slot j - (the entries before that position)
        flat_pos = np.repeat(np.arange(nd.size), nd.ravel())
        slot = np.arange(values.size) - np.repeat(np.cumsum(nd.ravel()) - nd.ravel(), nd.ravel())
        d1 = self.meta["draws"] + 1
        ids, counts = np.zeros((nd.size, int(nd.max())), np.int64), np.zeros((nd.size, int(nd.max())), np.int64)
        ids[flat_pos, slot], counts[flat_pos, slot] = values // d1, values % d1
        shape = (*nd.shape, -1)
        return {"t_draw_ids": torch.from_numpy(ids.reshape(shape)), "t_draw_counts": torch.from_numpy(counts.reshape(shape))}


def teacher_identity(teacher_dir: str | Path, tok) -> dict:
    """What a cache records of its teacher, and what a reader expects: the weights' and vocabulary's fingerprints."""
    from kdmem.models import fingerprint
    from kdmem.tokenizer import vocab_fingerprint

    return {"teacher_fingerprint": fingerprint(teacher_dir), "tokenizer_fingerprint": vocab_fingerprint(tok)}
