"""Pre-training risk audit (beyond the paper: its "prevention first" advice as a tool).

Scores a dataset before any distillation: per sample, teacher perplexity, baseline perplexity,
per-token KL(teacher || baseline) and zlib bytes, then the saved classifier's probability that a
student distilled on it would memorize the sample. Writes the per-sample risk and the list of
samples to drop. Input: a kdmem samples parquet (input_ids) or any jsonl/parquet of texts.

The classifier learned what the features look like on samples the teacher and the baseline were
fine-tuned on (protocol: "before distillation", not "before fine-tuning"). So the audited data must be
the data the given teacher and baseline were fine-tuned on, cut into windows of the classifier's own
length; the command checks what it can (the models' roles and dataset, the window length).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import torch
import torch.nn.functional as F
from tqdm import tqdm

from kdmem.classifier import predict
from kdmem.corpus import Doc, read_docs
from kdmem.data import chunk, zlib_columns
from kdmem.errors import KdmemError
from kdmem.kd import bucket_kl, stored_topk


def load_audit_samples(path: str | Path, tok, seq_len: int, text_field: str = "text") -> pl.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise KdmemError(f"audit data {p} does not exist")
    if p.suffix == ".parquet":
        try:
            df = pl.read_parquet(p)
        except Exception as e:  # noqa: BLE001
            raise KdmemError(f"cannot read parquet {p}: {str(e).splitlines()[0]}") from None
        if "input_ids" in df.columns and "sample_id" in df.columns:
            return df.select("sample_id", "input_ids", *(c for c in ("text", "doc_id", "offset") if c in df.columns))
    ds = {"source": "local", "path": str(p), "format": "auto", "text_field": text_field, "id_field": "doc_id",
          "max_docs": None, "min_chars": 1}
    docs, _ = read_docs(ds)
    from collections import Counter

    rows = chunk([Doc(d.doc_id, d.text) for d in docs], tok, "audit", seq_len, Counter())
    if not rows:
        raise KdmemError(f"audit data {p}: no document has {seq_len} tokens; lower --seq-len")
    ids = [r[3] for r in rows]
    return pl.DataFrame({"sample_id": [r[0] for r in rows], "doc_id": [r[1] for r in rows], "offset": [r[2] for r in rows],
                         "input_ids": ids, "text": tok.batch_decode(ids)})


@torch.inference_mode()
def features(teacher, baseline, dev, samples: pl.DataFrame, vocab: int, tok, top_k: int, batch_size: int = 32) -> pl.DataFrame:
    """The classifier's features on new samples, each defined exactly as the pipeline defines it:
    perplexities over every position, zlib_bytes of the whole sample, and KL(teacher || baseline)
    over the teacher's top-k + tail buckets at T = 1 (kd.bucket_kl, as in scoring's kl_to_teacher)."""
    teacher.to(dev.device).eval()
    baseline.to(dev.device).eval()
    cols: dict[str, list] = {"teacher_ppl": [], "baseline_ppl": [], "kl_teacher_baseline": []}
    for s in tqdm(range(0, samples.height, batch_size), desc="audit", mininterval=5):
        x = torch.tensor(samples["input_ids"].slice(s, batch_size).to_list(), device=dev.device)
        with dev.autocast():
            lt = teacher(input_ids=x).logits[:, :-1, :vocab].float()
            lb = baseline(input_ids=x).logits[:, :-1, :vocab].float()
        pt, pb = F.log_softmax(lt, -1), F.log_softmax(lb, -1)
        y = x[:, 1:].unsqueeze(-1)
        cols["teacher_ppl"] += torch.exp(-pt.gather(-1, y).squeeze(-1).mean(-1)).tolist()
        cols["baseline_ppl"] += torch.exp(-pb.gather(-1, y).squeeze(-1).mean(-1)).tolist()
        b, n1 = x.shape[0], x.shape[1] - 1
        ids, t_logp, t_tail = stored_topk(lt.reshape(-1, vocab), 1.0, top_k)
        logq_k = pb.reshape(-1, vocab).gather(-1, ids)
        cols["kl_teacher_baseline"] += bucket_kl(t_logp, t_tail, logq_k).reshape(b, n1).mean(-1).tolist()
    zb = samples["zlib_bytes"] if "zlib_bytes" in samples.columns else \
        pl.Series(zlib_columns(tok.batch_decode(samples["input_ids"].to_list()))["zlib_bytes"], dtype=pl.Int64)
    return samples.with_columns(**{k: pl.Series(v, dtype=pl.Float64) for k, v in cols.items()}, zlib_bytes=zb)


def audit(feats: pl.DataFrame, model: dict | None) -> pl.DataFrame:
    if model is None:
        raise KdmemError("the classifier has no fitted model (too few positives in its run); it cannot score a new dataset")
    pred = predict(model, feats).rename({"prob": "risk"})
    return feats.drop("input_ids").join(pred, on="sample_id").sort("risk", descending=True)
