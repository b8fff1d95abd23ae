"""Membership-inference signals and metrics, each against a hand-computed example, and token
statistics against torch's own distributions on a real tiny model."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from kdmem import mia, stats
from kdmem.models import build_scratch, pick_device
from kdmem.settings import Arch

from .helpers import mem_settings


def test_signals_on_a_hand_computed_sample():
    # one sample, 5 predicted tokens; the model's distribution has mean log p -2 and sd 1 at every position
    stats = {"logp": np.array([[-1.0, -2.0, -3.0, -4.0, -5.0]]), "mu": np.full((1, 5), -2.0), "sigma": np.ones((1, 5))}
    got = mia.signals(stats, zlib_bytes=np.array([10.0]), ref_loss=np.array([4.0]), k=0.4)
    # loss L = 3; int(0.4 * 5) = 2 lowest tokens: -5 and -4; z = (logp + 2) / 1 = 1, 0, -1, -2, -3
    assert got["loss"][0] == pytest.approx(-3.0)
    assert got["zlib_loss_ratio"][0] == pytest.approx(-0.3)
    assert got["min_k"][0] == pytest.approx(-4.5)
    assert got["min_k_pp"][0] == pytest.approx(-2.5)
    assert got["reference"][0] == pytest.approx(1.0)  # the reference's loss 4 minus the model's 3


def test_min_k_counts_int_k_n_tokens_as_mimir_does():
    # k * n = 0.3 * 5 = 1.5: int() takes the single lowest token (-5), where ceil would also average -4
    stats = {"logp": np.array([[-1.0, -2.0, -3.0, -4.0, -5.0]]), "mu": np.zeros((1, 5)), "sigma": np.ones((1, 5))}
    assert mia.signals(stats, np.array([1.0]), np.array([0.0]), k=0.3)["min_k"][0] == pytest.approx(-5.0)


def test_tpr_is_read_at_fpr_strictly_below_one_percent():
    # 200 non-members scored 0..199; members at 197.5 and 300. FPR <= 1 % would admit the two non-members 198 and
    # 199 and count both members; FPR < 1 % admits one (0.5 %) and counts only the member at 300.
    labels = np.r_[np.zeros(200), np.ones(2)]
    scores = np.r_[np.arange(200.0), [197.5, 300.0]]
    assert mia.tpr_at_fpr(labels, scores, 0.01, min_false_positives=0) == pytest.approx(0.5)
    # a threshold that one non-member sets says nothing: the default asks FPR < 1 % to admit 10 of them
    assert mia.tpr_at_fpr(labels, scores, 0.01) is None
    many = np.r_[np.zeros(1100), np.ones(2)]
    assert mia.tpr_at_fpr(many, np.r_[np.arange(1100.0), [1094.5, 2000.0]], 0.01) == pytest.approx(1.0)  # 10 admitted, 1094.5 above 5 of them
    assert mia.tpr_at_fpr(many[100:], np.r_[np.arange(1000.0), [994.5, 2000.0]], 0.01) is None  # 1,000 admit only 9


def test_min_k_takes_at_least_one_token():
    stats = {"logp": np.array([[-1.0, -7.0, -2.0]]), "mu": np.zeros((1, 3)), "sigma": np.ones((1, 3))}
    assert mia.signals(stats, np.array([1.0]), np.array([0.0]), k=0.01)["min_k"][0] == pytest.approx(-7.0)


def test_tpr_at_one_percent_fpr_by_hand():
    # 100 non-members scored 0..99, 10 members: five above every non-member (100..104), five among them (50..54).
    neg, pos = np.arange(100.0), np.array([100, 101, 102, 103, 104, 50, 51, 52, 53, 54], dtype=float)
    labels, scores = np.r_[np.zeros(100), np.ones(10)], np.r_[neg, pos]
    # a threshold at 99 lets one non-member through (FPR 1 %) and no further member: TPR 5/10
    assert mia.tpr_at_fpr(labels, scores, 0.01, min_false_positives=0) == pytest.approx(0.5)
    # AUC: each top member beats all 100 non-members; the member scored 50 beats 0..49 and ties 50 (half a win): 50.5,
    # then 51.5 ... 54.5 -> (500 + 262.5) / 1000
    assert mia.metrics(labels, scores, n_boot=20, seed=0)["auc"] == pytest.approx((500 + 262.5) / 1000)


def test_perfect_separation_keeps_an_exact_tpr_interval():
    """30 of 30 members found at FPR 0: the AUC bootstrap has nothing to vary, but the TPR's exact interval
    still says what 30 members can show (lower bound 0.025 ** (1 / 30), the closed form for n / n)."""
    labels = np.r_[np.ones(30), np.zeros(1200)]
    m = mia.metrics(labels, np.r_[np.full(30, 2.0), np.full(1200, 1.0)], n_boot=50, seed=1)
    assert (m["auc"], m["auc_lo"], m["auc_hi"], m["tpr_at_1pct_fpr"], m["tpr_hi"]) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert m["tpr_lo"] == pytest.approx(0.025 ** (1 / 30))
    assert (m["n_members"], m["n_nonmembers"]) == (30, 1200)
    few = mia.metrics(labels[:60], np.r_[np.full(30, 2.0), np.full(30, 1.0)], n_boot=50, seed=1)
    assert few["tpr_at_1pct_fpr"] is None and few["tpr_lo"] is None  # 30 non-members cannot set a 1 % threshold


def test_the_scoring_pass_gives_the_signals_torch_distributions_give():
    """Membership inference reads its signals from the scores: min_k and min_k_pp from kdmem.scoring's one pass equal
    mia.signals over torch's own distributions (log p of each token, mean and spread of log p under the model)."""
    from kdmem.scoring import score_samples

    model = build_scratch(Arch("gpt_neox", 16, 1, 2, 64), 50, 16, 0, 0).eval()
    x = torch.randint(0, 50, (3, 9), generator=torch.Generator().manual_seed(0))
    samples = pl.DataFrame({"sample_id": ["a", "b", "c"], "input_ids": x.tolist(), "zlib_bytes": [20, 30, 40]},
                           schema_overrides={"input_ids": pl.List(pl.Int32)})
    sc = score_samples(model, None, pick_device("cpu"), samples, 50, mem_settings(4, 4, batch_size=2, frac=False), 0.3)
    with torch.no_grad():
        dist = torch.distributions.Categorical(logits=model(input_ids=x).logits[:, :-1, :50])
    logp_all = torch.log_softmax(dist.logits, -1)
    var = (dist.probs * (logp_all + dist.entropy().unsqueeze(-1)) ** 2).sum(-1)
    want = mia.signals({"logp": dist.log_prob(x[:, 1:]).double().numpy(), "mu": -dist.entropy().double().numpy(),
                        "sigma": var.sqrt().double().numpy()}, np.array([20.0, 30.0, 40.0]), np.zeros(3), k=0.3)
    got = mia.signals_from_scores(sc, np.zeros(3))
    for name in mia.SIGNALS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_members_are_all_of_d_or_a_seeded_sample():
    train = pl.DataFrame({"sample_id": [f"s{i}" for i in range(20)]})
    assert mia.pick_members(train, 50, 0).equals(train)
    a, b = mia.pick_members(train, 5, 0), mia.pick_members(train, 5, 0)
    assert a.height == 5 and a.equals(b) and a["sample_id"].n_unique() == 5
    assert not mia.pick_members(train, 5, 1).equals(a)


def test_nonmembers_are_the_validation_windows_with_heldout_as_a_second_set():
    val = pl.DataFrame({"sample_id": [f"v{i}" for i in range(10)]})
    held = pl.DataFrame({"sample_id": [f"h{i}" for i in range(30)]})
    sets = mia.pick_nonmembers(val, held, 20, 0)
    assert list(sets) == ["val", "heldout"] and sets["val"].equals(val)
    assert sets["heldout"].height == 20 and set(sets["heldout"]["sample_id"]) <= set(held["sample_id"])
    assert list(mia.pick_nonmembers(val, held.head(0), 20, 0)) == ["val"]


def test_shifted_nonmembers_give_a_model_free_auc_away_from_half():
    """Members are prose, the shifted non-members half code: the text alone separates them (a distribution shift, not
    membership); non-members drawn from the members' own distribution give the blind baseline about 0.5."""
    rng = np.random.default_rng(0)
    words = ["the", "river", "town", "of", "was", "built", "in", "north", "a", "church", "and", "its", "people"]
    prose = lambda k: [" ".join(rng.choice(words, 30)) for _ in range(k)]  # noqa: E731
    code = [f"def f{i}(x):\n    return x[{i}] + {i * 7}\n" * 3 for i in range(100)]
    members, iid = prose(300), prose(300)
    y = np.r_[np.ones(300, dtype=bool), np.zeros(300, dtype=bool)]
    shifted = stats.auc(y, mia.blind_scores(y, members + prose(200) + code, 0))
    same = stats.auc(y, mia.blind_scores(y, members + iid, 0))
    assert shifted > 0.6 and abs(same - 0.5) < 0.08, (shifted, same)
