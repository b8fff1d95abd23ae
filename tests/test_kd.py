"""KD losses against an independent dense computation on hand-made distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kdmem.kd import dense_kd_sum, distinct_draws, draw_counts, sampled_kd_sum, teacher_draws, teacher_topk, topk_kd_sum


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_forward_kl_matches_hand_computation():
    t = np.array([[2.0, 1.0, 0.0, -1.0]])
    s = np.array([[0.0, 1.0, 2.0, 0.5]])
    T = 2.0
    p, q = _softmax(t[0] / T), _softmax(s[0] / T)
    want = float(np.sum(p * np.log(p / q)))
    got = dense_kd_sum(torch.tensor(s), torch.tensor(t), T).item()
    assert got == pytest.approx(want, rel=1e-6)
    rev = float(np.sum(q * np.log(q / p)))
    assert dense_kd_sum(torch.tensor(s), torch.tensor(t), T, "reverse_kl").item() == pytest.approx(rev, rel=1e-6)
    m = 0.5 * p + 0.5 * q
    jsd = 0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m))
    assert dense_kd_sum(torch.tensor(s), torch.tensor(t), T, "jsd", 0.5).item() == pytest.approx(jsd, rel=1e-6)


def test_topk_with_tail_bucket_matches_bucketed_kl():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))
    T, k = 2.0, 4
    ids, logp, tail = teacher_topk(torch.tensor(t), T, k)
    got = topk_kd_sum(torch.tensor(s), ids, logp, tail, T, tail="bucket").item()
    want = 0.0
    for i in range(3):
        p, q = _softmax(t[i] / T), _softmax(s[i] / T)
        top = np.argsort(-p)[:k]
        rest = np.setdiff1d(np.arange(10), top)
        pb = np.append(p[top], p[rest].sum())
        qb = np.append(q[top], q[rest].sum())
        want += float(np.sum(pb * np.log(pb / qb)))
    assert got == pytest.approx(want, rel=1e-5)


def test_full_k_equals_dense_and_chunking_is_exact():
    rng = np.random.default_rng(1)
    t, s = torch.tensor(rng.normal(size=(37, 12))), torch.tensor(rng.normal(size=(37, 12)))
    ids, logp, tail = teacher_topk(t, 3.0, 12)
    dense = dense_kd_sum(s, t, 3.0).item()
    assert topk_kd_sum(s, ids, logp, tail, 3.0, chunk=5).item() == pytest.approx(dense, rel=1e-5)
    assert dense_kd_sum(s, t, 3.0, chunk=4).item() == pytest.approx(dense, rel=1e-6)


def test_kd_is_zero_for_identical_distributions():
    z = torch.randn(5, 9)
    ids, logp, tail = teacher_topk(z, 2.0, 4)
    assert topk_kd_sum(z, ids, logp, tail, 2.0, tail="bucket").item() == pytest.approx(0.0, abs=1e-5)
    assert topk_kd_sum(z, ids, logp, tail, 2.0).item() >= -1e-6  # uniform tail: a KL, never negative


def test_topk_with_uniform_tail_matches_full_kl_against_the_uniform_tail_teacher():
    rng = np.random.default_rng(2)
    t, s = rng.normal(size=(3, 10)), rng.normal(size=(3, 10))
    T, k = 2.0, 4
    ids, logp, tail = teacher_topk(torch.tensor(t), T, k)
    got = topk_kd_sum(torch.tensor(s), ids, logp, tail, T, chunk=2).item()
    want = 0.0
    for i in range(3):
        p, q = _softmax(t[i] / T), _softmax(s[i] / T)
        top = np.argsort(-p)[:k]
        pu = np.full(10, p[np.setdiff1d(np.arange(10), top)].sum() / (10 - k))
        pu[top] = p[top]
        want += float(np.sum(pu * np.log(pu / q)))
    assert got == pytest.approx(want, rel=1e-5)
    # a student that concentrates its tail on one id pays for it under the uniform tail, not under buckets
    spiky = torch.tensor(t).clone()
    spiky[:, :] = -30.0
    spiky.scatter_(1, ids, torch.tensor(t).gather(1, ids))
    spiky[:, int(np.setdiff1d(np.arange(10), ids[0].numpy())[0])] = 3.0
    assert topk_kd_sum(spiky, ids, logp, tail, T).item() > topk_kd_sum(spiky, ids, logp, tail, T, tail="bucket").item() + 1.0


def test_sampled_kd_is_the_kl_of_the_draws_empirical_distribution():
    """Hand-computed: draws (0, 0, 1, 3) are p^ = (1/2, 1/4, 0, 1/4); the loss is KL(p^ || q) at T. Stored as
    distinct ids with counts, a padding entry (count 0) adds nothing, whatever its id."""
    z = torch.tensor([[1.0, 0.0, -1.0, 0.5]])
    q = torch.log_softmax(z / 2.0, -1)[0].tolist()
    want = 0.5 * (math.log(0.5) - q[0]) + 0.25 * (math.log(0.25) - q[1]) + 0.25 * (math.log(0.25) - q[3])
    got = sampled_kd_sum(z, torch.tensor([[0, 1, 3]]), torch.tensor([[2, 1, 1]]), 2.0)
    assert got.item() == pytest.approx(want, rel=1e-6)
    padded = sampled_kd_sum(z, torch.tensor([[0, 1, 3, 2]]), torch.tensor([[2, 1, 1, 0]]), 2.0)
    assert padded.item() == pytest.approx(want, rel=1e-6)
    ids, counts = distinct_draws(torch.tensor([[3, 0, 1, 0]]))
    assert ids.tolist() == [[0, 0, 1, 3]] and counts.tolist() == [[2, 0, 1, 1]]
    assert sampled_kd_sum(z, ids, counts, 2.0).item() == pytest.approx(want, rel=1e-6)
    # chunking is exact
    zz, (dd, cc) = torch.randn(10, 7), distinct_draws(torch.randint(0, 7, (10, 5)))
    assert sampled_kd_sum(zz, dd, cc, 1.5, chunk=3).item() == pytest.approx(sampled_kd_sum(zz, dd, cc, 1.5).item(), rel=1e-6)


def test_draw_counts_count_each_id_in_its_row_sorted_or_not():
    """Hand-made rows: the count sits at each draw's own position, whatever the order of the row."""
    draws = torch.tensor([[3, 0, 3, 1, 3], [2, 2, 2, 2, 2], [4, 1, 0, 1, 9]])
    assert draw_counts(draws).tolist() == [[3, 1, 3, 1, 3], [5, 5, 5, 5, 5], [1, 2, 1, 2, 1]]


def test_sampled_kd_gradient_is_unbiased_and_topk_is_not():
    """Averaged over many caches, the sampled loss's gradient is the dense forward KL's (RS-KD's claim); a top-2
    cache with a uniform tail is off by far more. A flat teacher (much mass beyond the top 2) shows the bias."""
    g = torch.Generator().manual_seed(0)
    t_logits, s_logits = torch.randn(1, 12, generator=g) * 0.5, torch.randn(1, 12, generator=g)

    def grad(loss_fn):
        z = s_logits.clone().requires_grad_(True)
        loss_fn(z).backward()
        return z.grad[0]

    dense = grad(lambda z: dense_kd_sum(z, t_logits, 2.0))
    rows = 4000
    draws, covered = teacher_draws(t_logits.expand(rows, -1), 2.0, 8, g)
    assert draws.shape == (rows, 8) and bool((draws[:, 1:] >= draws[:, :-1]).all())  # sorted per row
    assert float(covered.min()) > 0 and float(covered.max()) <= 1 + 1e-6
    sampled = grad(lambda z: sampled_kd_sum(z.expand(rows, -1), *distinct_draws(draws), 2.0) / rows)
    ids, vals, tail = teacher_topk(t_logits, 2.0, 2)
    topk = grad(lambda z: topk_kd_sum(z, ids, vals, tail, 2.0))
    err_sampled, err_topk = (sampled - dense).abs().max().item(), (topk - dense).abs().max().item()
    assert err_sampled < 0.004 and err_topk > 0.01, (err_sampled, err_topk)


def test_the_trainers_loss_is_a_mean_per_token_in_every_mode():
    """Through the function the trainer calls (training.batch_loss): a batch of 50 copies of one sequence has the
    loss of the sequence alone, for CE, online KD and KD from a full cache; dropping the division by the number of
    positions would make it 50 times larger."""
    from kdmem.args import KDArgs
    from kdmem.training import batch_loss
    from kdmem.vocab import Loss

    torch.manual_seed(0)
    s, tl, x = torch.randn(1, 6, 11), torch.randn(1, 6, 11), torch.randint(0, 11, (1, 7))
    kd = KDArgs(temperature=2.0, loss=Loss.FORWARD_KL, alpha_ce=0.25, jsd_beta=0.5, kl_chunk=4, tail=None)
    full = {"t_full_logp": torch.log_softmax(tl / 2.0, -1)}
    for mode, teacher, t_logits in (("ce", {}, None), ("online", {}, tl), ("cache", full, None)):
        one = batch_loss(s, x, mode, kd, teacher, t_logits).item()
        rep = {k: v.repeat(50, 1, 1) for k, v in teacher.items()}
        many = batch_loss(s.repeat(50, 1, 1), x.repeat(50, 1), mode, kd, rep, None if t_logits is None else t_logits.repeat(50, 1, 1)).item()
        assert many == pytest.approx(one, rel=1e-5) and one > 0, mode
    # online and full-cache KD agree (same teacher), and T² scales the divergence: at alpha_ce = 0 it is T² · KL / n
    a = batch_loss(s, x, "online", KDArgs(2.0, Loss.FORWARD_KL, 0.0, 0.5, 4, None), {}, tl).item()
    b = batch_loss(s, x, "cache", KDArgs(2.0, Loss.FORWARD_KL, 0.0, 0.5, 4, None), full).item()
    assert a == pytest.approx(b, rel=1e-5) and a == pytest.approx(4 * dense_kd_sum(s.reshape(6, 11), tl.reshape(6, 11), 2.0).item() / 6, rel=1e-5)


def test_the_full_cache_forward_kl_has_the_dense_value_and_gradient():
    """kd.full_forward_kl_sum (the full cache's forward KL in fewer passes) against dense_kd_sum on the same teacher:
    equal value and equal gradient for the student, float16-rounded teacher log-probs included, chunks included."""
    from kdmem.kd import dense_kd_sum, full_forward_kl_sum

    g = torch.Generator().manual_seed(3)
    z = (torch.randn(37, 50, generator=g) * 3).requires_grad_()
    t_logp = torch.log_softmax(torch.randn(37, 50, generator=g) * 4 / 2.0, -1).half().float()
    t_logp[0, :3] = float("-inf")  # a teacher probability that underflows contributes nothing, not nan
    a = dense_kd_sum(z, t_logp * 2.0, 2.0)
    (ga,) = torch.autograd.grad(a, z)
    b = full_forward_kl_sum(z, t_logp, 2.0, chunk=8)
    (gb,) = torch.autograd.grad(b, z)
    assert torch.isfinite(b) and b.item() == pytest.approx(a.item(), rel=1e-5)
    torch.testing.assert_close(gb, ga, rtol=1e-5, atol=1e-6)
