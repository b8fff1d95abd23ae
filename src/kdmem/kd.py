"""Distillation losses (PAPER.md "Roles"): forward KL(teacher || student) at temperature T, x T^2.

The teacher comes either as a top-k cache (k log-probs + the tail mass) or as dense logits. With a
cache, both distributions are compared over k + 1 buckets: the k cached ids and one "tail" bucket
holding the rest of the mass, which is exact for the cached ids and for the total tail mass.

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
) -> torch.Tensor:
    total = student_logits.new_zeros(())
    for s in range(0, student_logits.shape[0], chunk):
        z = student_logits[s : s + chunk].float() / temperature  # (c, V)
        logq_k = z.gather(-1, t_ids[s : s + chunk]) - torch.logsumexp(z, dim=-1, keepdim=True)  # (c, k)
        logq = _with_tail(logq_k)
        logp = _with_tail(t_logp[s : s + chunk].float(), t_tail[s : s + chunk].float())
        total = total + divergence(logp, logq, kind, beta)
    return total


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


def teacher_topk(teacher_logits: torch.Tensor, temperature: float, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, V) logits -> top-k ids, their log-probs at T, and the tail mass at T."""
    logp = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    vals, ids = logp.topk(k, dim=-1)
    tail = (1 - vals.exp().sum(-1)).clamp_min(0)
    return ids, vals, tail
