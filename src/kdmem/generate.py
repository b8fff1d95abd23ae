"""Hard (sequence-level) KD data (docs/protocol.md "Soft vs hard distillation").

The fine-tuned teacher gets each training sample's first `prefix_len` tokens and greedily generates
up to `seq_len`; the hard student trains with CE on these sequences. All prompts have the same
length, so batches need no padding, and `generate` uses the KV cache.
"""

from __future__ import annotations

import polars as pl
import torch
from tqdm import tqdm

from kdmem.data import SAMPLE_SCHEMA, zlib_columns


def greedy_continue(model, dev, prompts: torch.Tensor, new_tokens: int, vocab: int, pad_id: int) -> torch.Tensor:
    """(B, P) prompts -> (B, P + new_tokens), greedy, never stopping early at EOS."""
    with torch.inference_mode(), dev.autocast():
        out = model.generate(
            input_ids=prompts,
            attention_mask=torch.ones_like(prompts),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=pad_id,
            suppress_tokens=list(range(vocab, model.get_output_embeddings().weight.shape[0])) or None,
        )
    return out


def generate_hard(model, tok, dev, samples: pl.DataFrame, prefix_len: int, vocab: int, batch_size: int = 64) -> pl.DataFrame:
    model.to(dev.device).eval()
    seq_len = len(samples["input_ids"][0])
    rows: list[list[int]] = []
    for s in tqdm(range(0, samples.height, batch_size), desc="generate-hard", mininterval=5):
        x = torch.tensor(samples["input_ids"].slice(s, batch_size).to_list(), device=dev.device)
        out = greedy_continue(model, dev, x[:, :prefix_len], seq_len - prefix_len, vocab, tok.pad_token_id)
        rows.extend(out[:, :seq_len].cpu().tolist())
    return pl.DataFrame(
        {
            "sample_id": samples["sample_id"],
            "doc_id": samples["doc_id"],
            "offset": samples["offset"],
            "input_ids": rows,
            "text": (texts := tok.batch_decode(rows)),
            "n_exposures": samples["n_exposures"],
            **zlib_columns(texts),
        },
        schema=SAMPLE_SCHEMA,
    )
