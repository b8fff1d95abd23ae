"""The speed targets at two shapes, side by side in one run: the embedded miniature, and Pythia-160M's
shape (d 768, 12 layers, 12 heads, vocab 50,304; 256-token samples, a 50-token prefix and a 50-token
suffix, the paper's window) with a ~20 M student on the same vocabulary (teacher/student about 8:1, the paper's 12 B / 1.4 B is 8.6).

Weights are random: speed does not depend on them. So that "identical verdicts" means something on
random weights, half the samples are the model's own greedy continuations of random prefixes (each
is memorized by construction) and half are random tokens (none is). The output layer's weights are
scaled up 30x first: at init the logits are nearly flat, and an argmax between near-equal logits may
fall differently in generate's KV-cache arithmetic and in a full forward (the near-tie case the
scorer's docstring describes), which would measure noise, not the scorer.

Measured at each shape:
- the scorer with every signal (kdmem's `score_samples`, frac off), the exact-verdict path alone
  (one forward over P+S tokens, argmax against the suffix), HF `generate` on the prefixes, and a bare
  forward over the same tokens;
- one KD training step from the logit cache against one online-KD step (the teacher's forward inside);
- writing the cache: tokens/s and bytes/token at k = 30.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from bench_cache import step_time
from common import CFG, timed

from kdmem.args import CacheSpec, KDArgs
from kdmem.generate import greedy_continue
from kdmem.logit_cache import CacheReader, write_cache
from kdmem.models import build_scratch, n_params, pick_device
from kdmem.scoring import score_samples
from kdmem.settings import Arch, Memorization
from kdmem.vocab import CacheKind, Loss


@dataclass(frozen=True)
class Shape:
    name: str
    teacher: Arch
    student: Arch
    vocab: int
    seq_len: int
    prefix_len: int
    suffix_len: int
    n_samples: int  # scored samples
    batch: int  # scoring and cache batch
    kd_batch: int
    kd_steps: int


SHAPES = [
    # the embedded default's bases (config.yaml, resources/bases/tiny-r6/MODEL_CARD.md)
    Shape("miniature", Arch("gpt_neox", 256, 4, 4, 1024), Arch("gpt_neox", 128, 4, 4, 512),
          2048, 48, 24, 24, 256, 64, 32, 20),
    # EleutherAI/pythia-160m's config; the student: d 192 x 4 layers on the same vocab (21 M, 7.7x smaller)
    Shape("pythia-160m", Arch("gpt_neox", 768, 12, 12, 3072), Arch("gpt_neox", 192, 4, 4, 768),
          50304, 256, 50, 50, 16, 8, 4, 4),
]


class IdText:
    """Decodes ids as their digits: Pythia's tokenizer is not on this offline machine. `score` decodes each
    window once for zlib; at these shapes that is under 1 % of a scoring pass."""

    pad_token_id = 0

    def batch_decode(self, rows):
        return [" ".join(map(str, r)) for r in rows]


def _samples(model, dev, sh: Shape) -> pl.DataFrame:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, sh.vocab, (sh.n_samples, sh.seq_len), generator=g)
    half, w = sh.n_samples // 2, sh.prefix_len + sh.suffix_len
    x[:half, :w] = greedy_continue(model, dev, x[:half, : sh.prefix_len], sh.suffix_len, sh.vocab, 0)
    return pl.DataFrame({"sample_id": [f"s{i:05d}" for i in range(sh.n_samples)], "input_ids": x.tolist(),
                         "n_exposures": [1] * sh.n_samples}, schema_overrides={"input_ids": pl.List(pl.Int32), "n_exposures": pl.Int32})


def scoring(model, dev, samples: pl.DataFrame, sh: Shape) -> dict:
    P, S, B, V = sh.prefix_len, sh.suffix_len, sh.batch, sh.vocab
    x_all = torch.tensor(samples["input_ids"].to_list())
    batches = [x_all[s : s + B] for s in range(0, len(x_all), B)]
    tok = IdText()

    def scorer():
        mem = dataclasses.replace(Memorization.of(CFG), prefix_len=P, suffix_len=S, batch_size=B, frac=False)
        return score_samples(model, tok, dev, samples, V, mem, CFG["mia"]["k"])["exact"].to_list()

    @torch.inference_mode()
    def exact_path():  # the verdict alone needs only the window's P + S tokens
        return [v for x in batches for v in (model(input_ids=x[:, : P + S]).logits[:, P - 1 : P + S - 1].argmax(-1) == x[:, P : P + S]).all(-1).tolist()]

    def generate():
        return [v for x in batches for v in (greedy_continue(model, dev, x[:, :P], S, V, 0)[:, P:] == x[:, P : P + S]).all(-1).tolist()]

    @torch.inference_mode()
    def bare():
        for x in batches:
            model(input_ids=x)

    repeat = 3 if sh.name == "miniature" else 1
    t, verdicts = {}, {}
    for name, fn in (("scorer", scorer), ("exact_path", exact_path), ("generate", generate), ("forward", bare)):
        verdicts[name] = fn()  # the warm-up call; its verdicts are compared below
        t[name] = timed(fn, repeat, warm=False)
    v_scorer, v_exact, v_gen = verdicts["scorer"], verdicts["exact_path"], verdicts["generate"]
    # The profile of generate: its prefill (one new token) against the S - 1 decode steps after it.
    t_prefill = timed(lambda: [greedy_continue(model, dev, x[:, :P], 1, V, 0) for x in batches], repeat)
    n = samples.height
    return {
        "samples_per_s": {k: n / v for k, v in t.items()},
        "scorer_vs_generate": t["generate"] / t["scorer"], "exact_path_vs_generate": t["generate"] / t["exact_path"],
        "scorer_vs_forward": t["scorer"] / t["forward"],
        "profile_s": {**t, "generate_prefill": t_prefill, "generate_per_decode_step": (t["generate"] - t_prefill) / max(1, S - 1)},
        "verdicts_identical": v_scorer == v_gen == v_exact, "verdicts_differing": sum(a != b for a, b in zip(v_scorer, v_gen, strict=True)),
        "memorized_by_construction": n // 2, "memorized_found": sum(v_scorer),
    }


def forward_flops(model, sh: Shape) -> dict:
    """FLOPs of one forward over one sample, counted by torch (matmuls and attention), against 2·N per token."""
    from torch.utils.flop_counter import FlopCounterMode

    seq = sh.seq_len
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(input_ids=torch.zeros(1, seq, dtype=torch.long))
    per_token = fc.get_total_flops() / seq
    n_matmul = n_params(model) - model.get_input_embeddings().weight.numel()  # the input embedding is a lookup
    return {"forward_flops_per_token": per_token, "over_2N": per_token / (2 * n_matmul)}


def kd_steps(teacher, student_arch, dev, samples: pl.DataFrame, sh: Shape, work: Path) -> dict:
    t0 = time.perf_counter()
    meta = write_cache(teacher, dev, samples, sh.vocab, CacheSpec(CacheKind.TOPK, 2.0, top_k=30), work / "cache", meta={}, batch_size=sh.batch)
    write_s = time.perf_counter() - t0
    cache = CacheReader(work / "cache", {"temperature": 2.0})
    t0 = time.perf_counter()
    meta_s = write_cache(teacher, dev, samples, sh.vocab, CacheSpec(CacheKind.SAMPLED, 2.0, draws=16), work / "sampled", meta={}, batch_size=sh.batch)
    write_sampled_s = time.perf_counter() - t0
    sampled = CacheReader(work / "sampled", {"kind": "sampled"})
    kd = KDArgs(temperature=2.0, loss=Loss.FORWARD_KL, alpha_ce=0.0, jsd_beta=0.5, kl_chunk=1024, tail="uniform")
    seq = sh.seq_len

    def student():
        return build_scratch(student_arch, sh.vocab, seq, 1, 0)

    t_cached = step_time("cache", cache, None, student(), samples, kd, sh.vocab, batch=sh.kd_batch, steps=sh.kd_steps)
    t_online = step_time("online", None, teacher, student(), samples, kd, sh.vocab, batch=sh.kd_batch, steps=sh.kd_steps)
    t_sampled = step_time("cache", sampled, None, student(), samples, kd, sh.vocab, batch=sh.kd_batch, steps=sh.kd_steps)
    return {
        "student_params": n_params(student()), "cached_step_s": t_cached, "online_step_s": t_online, "cached_vs_online": t_online / t_cached,
        "cache_write_tokens_per_s": samples.height * seq / write_s, "cache_bytes_per_token": meta["bytes_per_token"],
        "sampled_step_s": t_sampled, "sampled_vs_online": t_online / t_sampled,
        "sampled_write_tokens_per_s": samples.height * seq / write_sampled_s, "sampled_bytes_per_token": meta_s["bytes_per_token"],
        "sampled_mean_distinct_ids": meta_s["mean_distinct_ids"], "sampled_mean_covered_mass": meta_s["mean_covered_mass"],
        "topk_mean_tail_mass": meta["mean_tail_mass"],
    }


def main() -> dict:
    torch.set_num_threads(2)
    dev = pick_device("cpu")
    out = {}
    for sh in SHAPES:
        t0 = time.perf_counter()
        teacher = build_scratch(sh.teacher, sh.vocab, sh.seq_len, 0, 0).eval()
        with torch.no_grad():
            teacher.get_output_embeddings().weight.mul_(30.0)  # decisive argmaxes (see the docstring)
        samples = _samples(teacher, dev, sh)
        work = Path(tempfile.mkdtemp())
        try:
            out[sh.name] = {"teacher_params": n_params(teacher), "vocab": sh.vocab, "tokens": sh.seq_len,
                            "window": f"{sh.prefix_len}+{sh.suffix_len}",
                            **forward_flops(teacher, sh),
                            "scoring": scoring(teacher, dev, samples, sh), "kd": kd_steps(teacher, sh.student, dev, samples, sh, work),
                            "seconds": 0.0}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out[sh.name]["seconds"] = time.perf_counter() - t0
        print(json.dumps({sh.name: out[sh.name]}, indent=2), flush=True)
    return out


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:  # one shape by name, e.g. `python bench_shapes.py miniature`
        SHAPES[:] = [s for s in SHAPES if s.name in sys.argv[1:]]
    main()
