"""Distillation losses (docs/protocol.md "Roles"): forward KL(teacher || student) at temperature T, x T^2.

The teacher comes either as a top-k cache (k log-probs + the tail mass) or as dense logits. With a
cache, the teacher's tail mass is spread uniformly over the V - k ids outside its top k
(`tail: uniform`, the default), and the KL is taken over the full vocabulary. The alternative,
`tail: bucket`, compares the two distributions over k + 1 buckets (the k ids and one tail bucket);
it is exact for the cached ids and the total tail mass, but leaves the student free to put its tail
mass on a few arbitrary ids, which measured here ruins its validation loss (10.6 vs 8.7 nats).
Reverse KL and JSD always use buckets.

The third form is a sampled cache (random-sampling KD, Anshumann et al., ACL 2025, arXiv 2503.16870):
per position, N ids drawn with replacement from the teacher's distribution at T. The empirical
distribution p^(i) = count_i / N is an unbiased estimate of the teacher's p(i), and the forward KL is
linear in p, so KL(p^ || q) has the gradient of KL(p || q) in expectation: unlike top-k, no mass is
moved or dropped. The expectation is over the draws at one step; the cache holds one set of draws for
every epoch, so over training the student fits that fixed p^ (docs/protocol.md, "How the student sees the teacher"). Only the forward KL is linear in p; reverse KL and JSD are not, so a sampled cache
serves the forward KL only (the config rejects the other pairings).

Losses are SUMS over positions; callers divide by the number of positions, giving a per-token mean.
(`F.kl_div(..., reduction="batchmean")` on [B, T, V] divides by B only, which scales the loss with
sequence length.) Positions are processed in chunks so the [chunk, V] temporaries stay bounded at a
50k vocabulary.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def divergence(logp: torch.Tensor, logq: torch.Tensor, kind: str = "forward_kl", beta: float = 0.5) -> torch.Tensor:
    """Sum over rows of D(p, q) for log-distributions over the last dim. p = teacher, q = student."""
    p, q = logp.exp(), logq.exp()
    if kind == "forward_kl":  # KL(p || q), the paper's loss
        return (torch.xlogy(p, p) - p * logq).sum()
    if kind == "reverse_kl":  # KL(q || p)
        return (torch.xlogy(q, q) - q * logp).sum()
    if kind == "jsd":  # generalised JSD: beta*KL(p||m) + (1-beta)*KL(q||m), m = beta*p + (1-beta)*q
        logm = torch.log((beta * p + (1 - beta) * q).clamp_min(EPS))
        return beta * (torch.xlogy(p, p) - p * logm).sum() + (1 - beta) * (torch.xlogy(q, q) - q * logm).sum()
    raise ValueError(f"unknown KD loss {kind!r}")


def _with_tail(logp_k: torch.Tensor, tail: torch.Tensor | None = None) -> torch.Tensor:
    """[n, k] log-probs -> [n, k+1] with the tail bucket log(1 - sum p_k) (or the given tail mass)."""
    if tail is None:
        tail = 1 - logp_k.exp().sum(-1)
    log_tail = torch.log(tail.clamp_min(EPS))
    return torch.cat([logp_k, log_tail.unsqueeze(-1)], dim=-1)


def topk_kd_sum(
    student_logits: torch.Tensor,  # (N, V) raw student logits, V = the shared vocab
    t_ids: torch.Tensor,  # (N, k) long
    t_logp: torch.Tensor,  # (N, k) teacher log-probs at temperature T
    t_tail: torch.Tensor,  # (N,) teacher tail mass at temperature T
    temperature: float,
    kind: str = "forward_kl",
    beta: float = 0.5,
    chunk: int = 1024,
    tail: str = "uniform",
) -> torch.Tensor:
    total = student_logits.new_zeros(())
    for s in range(0, student_logits.shape[0], chunk):
        z = student_logits[s : s + chunk].float() / temperature  # (c, V)
        lse = torch.logsumexp(z, dim=-1, keepdim=True)  # (c, 1)
        logq_k = z.gather(-1, t_ids[s : s + chunk]) - lse  # (c, k)
        lp_k, mass = t_logp[s : s + chunk].float(), t_tail[s : s + chunk].float()
        if tail == "uniform" and kind == "forward_kl":
            v, k = z.shape[-1], lp_k.shape[-1]
            u = (mass / max(v - k, 1)).clamp_min(EPS)  # (c,) teacher prob of each id outside its top k
            sum_logq_all = z.sum(-1) - v * lse.squeeze(-1)  # (c,) sum_j log q_j, without a (c, V) log_softmax
            sum_logq_tail = sum_logq_all - logq_k.sum(-1)
            top = (torch.xlogy(lp_k.exp(), lp_k.exp()) - lp_k.exp() * logq_k).sum(-1)
            total = total + (top + mass * torch.log(u) - u * sum_logq_tail).sum()
        else:
            total = total + divergence(_with_tail(lp_k, mass), _with_tail(logq_k), kind, beta)
    return total


def draw_counts(draws: torch.Tensor) -> torch.Tensor:
    """(N, D) drawn ids -> (N, D): how often each draw's id occurs in its row (its count c; p^ = c / D).
    Binary search in the sorted row, O(D log D): a D x D comparison would need N * D^2 memory at many draws."""
    ordered = draws.sort(-1).values
    return torch.searchsorted(ordered, draws, right=True) - torch.searchsorted(ordered, draws)


def distinct_draws(draws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) drawn ids -> (ids, counts), both (N, D): each distinct id with its count at its first
    occurrence in the sorted row, every repeat with count 0 (a padding entry the loss weighs 0)."""
    ids = draws.sort(-1).values
    first = torch.ones_like(ids, dtype=torch.bool)
    first[:, 1:] = ids[:, 1:] != ids[:, :-1]
    return ids, torch.where(first, draw_counts(ids), 0)


def sampled_kd_sum(
    student_logits: torch.Tensor,  # (N, V) raw student logits
    t_ids: torch.Tensor,  # (N, W) long: the distinct ids drawn from the teacher at T (padding: any id)
    t_counts: torch.Tensor,  # (N, W): how often each was drawn (padding: 0); a row sums to the draws D
    temperature: float,
    chunk: int = 1024,
) -> torch.Tensor:
    """Sum over rows of KL(p^ || q), p^ = count / D the draws' empirical distribution, q the student at T."""
    total = student_logits.new_zeros(())
    for s in range(0, student_logits.shape[0], chunk):
        z = student_logits[s : s + chunk].float() / temperature
        ids, c = t_ids[s : s + chunk], t_counts[s : s + chunk].float()
        p = c / c.sum(-1, keepdim=True)
        logq = z.gather(-1, ids) - torch.logsumexp(z, dim=-1, keepdim=True)  # (c, W)
        # The entropy term sum p^ log p^ does not move the gradient, but makes the value a KL (>= 0,
        # comparable with the top-k loss). xlogy and p * logq give padding entries (p = 0) weight 0.
        total = total + (torch.xlogy(p, p) - p * logq).sum()
    return total


def teacher_draws(teacher_logits: torch.Tensor, temperature: float, draws: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, V) logits -> (N, draws) ids sampled with replacement from softmax(logits / T), sorted per row,
    and the teacher mass the distinct drawn ids cover (N,), the sampled cache's analogue of 1 - tail."""
    p = F.softmax(teacher_logits.float() / temperature, dim=-1)
    ids = torch.multinomial(p, draws, replacement=True, generator=generator).sort(-1).values
    covered = (p.gather(-1, ids) / draw_counts(ids)).sum(-1)  # each distinct id counted once
    return ids, covered


def dense_kd_sum(
    student_logits: torch.Tensor,  # (N, V)
    teacher_logits: torch.Tensor,  # (N, V)
    temperature: float,
    kind: str = "forward_kl",
    beta: float = 0.5,
    chunk: int = 1024,
) -> torch.Tensor:
    total = student_logits.new_zeros(())
    for s in range(0, student_logits.shape[0], chunk):
        logq = F.log_softmax(student_logits[s : s + chunk].float() / temperature, dim=-1)
        logp = F.log_softmax(teacher_logits[s : s + chunk].float() / temperature, dim=-1)
        total = total + divergence(logp, logq, kind, beta)
    return total


def teacher_plogp(t_logp: torch.Tensor) -> torch.Tensor:
    """(..., V) log-probs, possibly float16-rounded -> (...) sum_v p log p of their renormalised distribution (0 log 0 = 0)."""
    lp = t_logp - torch.logsumexp(t_logp, dim=-1, keepdim=True)
    p = lp.exp()
    return torch.where(p > 0, p * lp, torch.zeros_like(p)).sum(-1)


class _FullForwardKL(torch.autograd.Function):
    """Sum over rows of KL(p || softmax(z / T)), p = the renormalised exp(t_logp), with its gradient
    (softmax(z / T) - p) / T written out: one log_softmax, one exp of the teacher, one row-wise dot, and in the
    backward one exp and one fused update, where autograd over the composed ops took twice the passes over
    (N, V) (benchmarks/bench_kd_step.py). KL = sum p log p - sum p log q, the first term from the cache."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, t_logp: torch.Tensor, plogp: torch.Tensor, temperature: float) -> torch.Tensor:
        logq = torch.log_softmax(z.float() * (1.0 / temperature), dim=-1)  # (n, V)
        e = t_logp.exp()  # (n, V): p up to the float16 rounding of its normaliser
        s = e.sum(-1)  # (n,)
        cross = torch.einsum("nv,nv->n", e, logq) / s  # sum p log q per row
        ctx.save_for_backward(logq, e, s)
        ctx.temperature = temperature
        return (plogp - cross).sum()

    @staticmethod
    def backward(ctx, grad):
        logq, e, s = ctx.saved_tensors
        g = logq.exp_()  # q, in place: the saved log_softmax is not needed again
        g.addcmul_(e, (-1.0 / s).unsqueeze(-1))  # q - p
        return g.mul_(grad / ctx.temperature), None, None, None


def full_forward_kl_sum(
    student_logits: torch.Tensor,  # (N, V) raw student logits
    t_logp: torch.Tensor,  # (N, V) the teacher's log-probs at T, as a full cache holds them (float16 read as float32)
    temperature: float,
    chunk: int = 1024,
    t_plogp: torch.Tensor | None = None,  # (N,) sum p log p per row, as a full cache stores it; computed when absent
) -> torch.Tensor:
    """Sum over rows of KL(p || q) with p the teacher's full distribution at T and q = softmax(z / T): the value and
    gradient of dense_kd_sum(student, T * t_logp, T) for the forward KL (the teacher's float16 log-probs renormalised,
    as log_softmax does there), at about half its cost per step (_FullForwardKL)."""
    total = student_logits.new_zeros((), dtype=torch.float32)
    for s in range(0, student_logits.shape[0], chunk):
        lp = t_logp[s : s + chunk].float()
        plogp = t_plogp[s : s + chunk].float() if t_plogp is not None else teacher_plogp(lp)
        total = total + _FullForwardKL.apply(student_logits[s : s + chunk], lp, plogp, temperature)
    return total


def teacher_topk(teacher_logits: torch.Tensor, temperature: float, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, V) logits -> top-k ids, their log-probs at T, and the tail mass at T."""
    logp = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    vals, ids = logp.topk(k, dim=-1)
    tail = (1 - vals.exp().sum(-1)).clamp_min(0)
    return ids, vals, tail


def stored_topk(teacher_logits: torch.Tensor, temperature: float, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """teacher_topk as the logit cache stores it: log-probs and tail mass rounded to float16 and read
    back as float32. The audit uses this so its features equal the pipeline's to the last bit."""
    ids, vals, tail = teacher_topk(teacher_logits, temperature, k)
    return ids, vals.half().float(), tail.half().float()


def bucket_kl(t_logp_k: torch.Tensor, t_tail: torch.Tensor, logq_k: torch.Tensor) -> torch.Tensor:
    """Per-row KL(teacher || model) over the teacher's top-k ids plus one tail bucket.

    t_logp_k (N, k) and t_tail (N,): the teacher's cached log-probs and tail mass; logq_k (N, k): the
    model's log-probs at the same ids. The one definition of the classifier's KL feature, used by
    scoring (kl_to_teacher, from the T = 1 cache) and by `kdmem audit` (from live logits)."""
    lp_t = _with_tail(t_logp_k, t_tail)
    lq = _with_tail(logq_k)
    p_t = lp_t.exp()
    return (torch.xlogy(p_t, p_t) - p_t * lq).sum(-1)
