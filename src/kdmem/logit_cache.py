"""Teacher logit cache (docs/protocol.md "Roles": the student learns from the teacher's softened distribution).

One pass of the fine-tuned teacher over every training sample stores, per predicted position
(positions 0..seq_len-2, each predicting the next token):
  topk_ids   (n, L-1, k)  uint16 when vocab <= 65,536, else int32
  topk_logp  (n, L-1, k)  float16 log-probs at temperature T
  tail       (n, L-1)     float16 mass outside the top k, at T
That is 4k + 2 bytes per position (122 B at k = 30). meta.json also records the mean tail mass: the
share of the teacher's distribution at T that the top k leave out, averaged over every position. Values depend on T, so each cache is valid for
one temperature, recorded in its metadata.

Format: a folder with meta.json (teacher fingerprint, tokenizer fingerprint, k, T, seq_len, vocab,
sample ids, and a sha256 per shard file) and shards of plain .npy arrays. .npy is read with
allow_pickle=False and memory-mapped, so a 30 GB cache costs no RAM and cannot execute code.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch
from tqdm import tqdm

from kdmem.errors import KdmemError
from kdmem.io import atomic_path, read_json, sha256_file, write_json
from kdmem.kd import teacher_topk

log = logging.getLogger(__name__)
ARRAYS = ("topk_ids", "topk_logp", "tail")
FORMAT = "kdmem-logit-cache/1"


def write_cache(
    model, dev, samples: pl.DataFrame, vocab: int, temperature: float, k: int, out_dir: str | Path,
    meta: dict, batch_size: int = 64, shard_size: int = 8192,
) -> dict:
    ids_dtype = np.uint16 if vocab <= 65536 else np.int32
    n = samples.height
    seq_len = len(samples["input_ids"][0])
    model.to(dev.device).eval()
    with atomic_path(out_dir, is_dir=True) as tmp:
        shards = []
        tail_sum = 0.0  # the mean tail mass says how much of the teacher's distribution a top-k cache leaves out
        for s0 in range(0, n, shard_size):
            part = samples.slice(s0, shard_size)
            arrs = {
                "topk_ids": np.empty((part.height, seq_len - 1, k), ids_dtype),
                "topk_logp": np.empty((part.height, seq_len - 1, k), np.float16),
                "tail": np.empty((part.height, seq_len - 1), np.float16),
            }
            for b0 in tqdm(range(0, part.height, batch_size), desc=f"cache T={temperature} shard {len(shards)}", mininterval=5):
                x = torch.tensor(part["input_ids"].slice(b0, batch_size).to_list(), device=dev.device)
                with torch.inference_mode(), dev.autocast():
                    logits = model(input_ids=x).logits[:, :-1, :vocab]  # (B, L-1, V)
                b = x.shape[0]
                ids, vals, tail = teacher_topk(logits.reshape(-1, vocab), temperature, k)
                arrs["topk_ids"][b0 : b0 + b] = ids.reshape(b, seq_len - 1, k).cpu().numpy().astype(ids_dtype)
                arrs["topk_logp"][b0 : b0 + b] = vals.reshape(b, seq_len - 1, k).cpu().numpy().astype(np.float16)
                arrs["tail"][b0 : b0 + b] = tail.reshape(b, seq_len - 1).cpu().numpy().astype(np.float16)
                tail_sum += float(tail.double().sum())
            files = {}
            for name, a in arrs.items():
                f = tmp / f"shard{len(shards):05d}.{name}.npy"
                np.save(f, a, allow_pickle=False)
                files[name] = {"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size}
            shards.append({"rows": part.height, "files": files})
        full = {
            **meta, "format": FORMAT, "k": k, "temperature": temperature, "seq_len": seq_len, "vocab": vocab,
            "ids_dtype": np.dtype(ids_dtype).name, "n_samples": n, "shards": shards,
            "sample_ids": samples["sample_id"].to_list(),
        }
        total = sum(f["bytes"] for s in shards for f in s["files"].values())
        full["bytes_per_token"] = total / (n * seq_len)
        full["mean_tail_mass"] = tail_sum / (n * (seq_len - 1))
        write_json(full, tmp / "meta.json")
    log.info("cached %d samples at T=%s, k=%d: %.1f bytes/token, mean tail mass %.4f", n, temperature, k,
             full["bytes_per_token"], full["mean_tail_mass"])
    return full


class CacheReader:
    """Reads a cache, after checking it belongs to this teacher, tokenizer, k, T and seq_len."""

    def __init__(self, path: str | Path, expect: dict, verify: bool = True):
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.is_file():
            raise KdmemError(f"logit cache {self.path} has no meta.json; rerun the cache-logits step")
        try:
            self.meta = read_json(meta_file)
        except ValueError:
            raise KdmemError(f"logit cache {meta_file} is corrupt (not JSON); delete the cache and rerun cache-logits") from None
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
            for name in ARRAYS:
                info = s["files"][name]
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
        """Teacher targets for cache rows: ids (B, L-1, k) long, logp (B, L-1, k), tail (B, L-1)."""
        rows_a = np.asarray(rows)
        shard = np.searchsorted(self._starts, rows_a, side="right") - 1
        out = {name: [] for name in ARRAYS}
        for r, sh in zip(rows_a, shard, strict=True):
            local = r - self._starts[sh]
            for name in ARRAYS:
                out[name].append(self._arrays[sh][name][local])
        return {
            "t_ids": torch.from_numpy(np.stack(out["topk_ids"]).astype(np.int64)),
            "t_logp": torch.from_numpy(np.stack(out["topk_logp"]).astype(np.float32)),
            "t_tail": torch.from_numpy(np.stack(out["tail"]).astype(np.float32)),
        }


def teacher_identity(teacher_dir: str | Path, tok) -> dict:
    """What a cache records of its teacher, and what a reader expects: the weights' and vocabulary's fingerprints."""
    from kdmem.models import fingerprint
    from kdmem.tokenizer import vocab_fingerprint

    return {"teacher_fingerprint": fingerprint(teacher_dir), "tokenizer_fingerprint": vocab_fingerprint(tok)}
