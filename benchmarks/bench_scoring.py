"""Scoring speed, side by side on the same model, samples and batch size:
- kdmem's one-pass scorer (exact via teacher-forced argmax; memorization.frac off),
- a reference scorer that calls model.generate per batch (as EleutherAI's Pythia memorization script does),
- a bare forward pass over the same tokens (the floor).
Prints samples/s and the two ratios, and checks the exact verdicts are identical.
"""

from __future__ import annotations

import json

import torch
from common import RESULTS, need, timed

from kdmem import config as kconfig
from kdmem.data import read_samples
from kdmem.generate import greedy_continue
from kdmem.models import load_model, pick_device
from kdmem.scoring import score_samples
from kdmem.tokenizer import load_tokenizer


def main() -> dict:
    cfg = kconfig.load("config.yaml")
    P, S, B = cfg["memorization"]["prefix_len"], cfg["memorization"]["suffix_len"], cfg["memorization"]["batch_size"]
    mdir = need(RESULTS / "models" / "baseline-s0")
    model, tok, dev = load_model(str(mdir)), load_tokenizer(str(mdir)), pick_device("cpu")
    samples = read_samples(need(RESULTS / "data" / "train.parquet"))
    V = len(tok)
    x_all = torch.tensor(samples["input_ids"].to_list())

    def ours():
        return score_samples(model, tok, dev, samples, V, P, S, batch_size=B, frac=False)

    def reference():
        verdicts = []
        for s in range(0, len(x_all), B):
            x = x_all[s : s + B]
            gen = greedy_continue(model, dev, x[:, :P], S, V, tok.pad_token_id)[:, P : P + S]
            verdicts += (gen == x[:, P : P + S]).all(-1).tolist()
        return verdicts

    @torch.inference_mode()
    def bare():
        for s in range(0, len(x_all), B):
            model(input_ids=x_all[s : s + B])

    t_ours, t_ref, t_bare = timed(ours), timed(reference), timed(bare)
    same = (ours()["exact"].to_list() == reference())
    n = samples.height
    out = {
        "samples": n, "batch_size": B, "prefix_len": P, "suffix_len": S,
        "ours_samples_per_s": n / t_ours, "generate_samples_per_s": n / t_ref, "forward_samples_per_s": n / t_bare,
        "speedup_vs_generate": t_ref / t_ours, "slowdown_vs_forward": t_ours / t_bare, "identical_exact_verdicts": same,
    }
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
