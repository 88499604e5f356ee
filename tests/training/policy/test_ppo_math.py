"""PPO maths against values computed by hand."""

import math

import pytest
import torch

from training.policy import ppo_math as pm


def test_masked_mean_and_whiten_ignore_padding():
    x = torch.tensor([[1.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 0]])
    assert pm.masked_mean(x, mask).item() == pytest.approx(2.0)
    w = pm.masked_whiten(x, mask)
    # mean 2, unbiased var = ((1-2)^2 + (3-2)^2) / 1 = 2
    assert w[0, 0].item() == pytest.approx(-1 / math.sqrt(2), rel=1e-5)
    assert w[0, 1].item() == pytest.approx(1 / math.sqrt(2), rel=1e-5)
    assert w[0, 2].item() == 0.0


def test_logprobs_and_entropy_from_logits():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25]]]))
    assert pm.logprobs_from_logits(logits, torch.tensor([[1]])).item() == pytest.approx(math.log(0.25))
    expected = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert pm.entropy_from_logits(logits).item() == pytest.approx(expected, rel=1e-6)
    uniform = torch.zeros(1, 1, 8)
    assert pm.entropy_from_logits(uniform).item() == pytest.approx(math.log(8), rel=1e-6)


def test_kl_estimators():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    assert pm.kl_k1(logp, ref).item() == pytest.approx(math.log(2))
    assert pm.kl_k2(logp, ref).item() == pytest.approx(0.5 * math.log(2) ** 2)
    # r = q/p = 0.5: (r - 1) - log r = -0.5 + log 2
    assert pm.kl_k3(logp, ref).item() == pytest.approx(-0.5 + math.log(2))
    same = torch.tensor([-1.3])
    for fn in (pm.kl_k1, pm.kl_k2, pm.kl_k3):
        assert fn(same, same).item() == pytest.approx(0.0)


def test_kl_penalized_rewards_put_score_on_last_real_token():
    logp = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, -2.0, -1.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    rewards, kl = pm.kl_penalized_rewards(torch.tensor([2.0, -1.0]), logp, ref, mask, beta=0.1)
    assert kl.flatten().tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0, -1.0, 0.0])
    assert rewards.flatten().tolist() == pytest.approx([-0.05, 2.0, 0.0, 0.0, 0.1, -1.0])


def test_gae_matches_hand_computation():
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.2, 0.4, 9.0]])  # last position is padding
    mask = torch.tensor([[1, 1, 1, 0]])
    adv, ret = pm.gae_advantages(rewards, values, mask, gamma=0.9, lam=0.8)
    d2 = 1.0 - 0.4  # terminal: no bootstrap past the last real token
    d1 = 0.0 + 0.9 * 0.4 - 0.2
    d0 = 0.0 + 0.9 * 0.2 - 0.5
    a2 = d2
    a1 = d1 + 0.72 * a2
    a0 = d0 + 0.72 * a1
    assert adv[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.4, 0.0])


def test_clipped_policy_loss_clips_large_ratios():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(0.9)]])
    adv = torch.tensor([[1.0, -1.0]])
    mask = torch.ones(1, 2)
    out = pm.clipped_policy_loss(new, old, adv, mask, clip_eps=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(0.9, 0.9) = 0.9 (inside the range)
    assert out.loss.item() == pytest.approx((-1.2 + 0.9) / 2)
    assert out.clip_fraction.item() == pytest.approx(0.5)
    r = torch.tensor([1.5, 0.9])
    assert out.approx_kl.item() == pytest.approx(((r - 1) - torch.log(r)).mean().item(), rel=1e-6)


def test_clipped_policy_loss_gradient_is_zero_when_clipped():
    new = torch.tensor([[math.log(1.5)]], requires_grad=True)
    out = pm.clipped_policy_loss(new, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    out.loss.backward()
    assert new.grad.item() == 0.0


def test_clipped_value_loss():
    values = torch.tensor([[1.0, 0.0]])
    old = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[2.0, 1.0]])
    loss, frac = pm.clipped_value_loss(values, old, returns, torch.ones(1, 2), clip_range=0.2)
    # token 0: unclipped (1-2)^2 = 1, clipped (0.2-2)^2 = 3.24 -> 3.24; token 1: both (0-1)^2 = 1
    assert loss.item() == pytest.approx(0.5 * (3.24 + 1.0) / 2)
    assert frac.item() == pytest.approx(0.5)


def test_kl_controllers():
    assert pm.FixedKLController(0.1).update(100.0, 10) == 0.1
    ctl = pm.AdaptiveKLController(0.1, target=6.0, horizon=100)
    assert ctl.update(12.0, 10) == pytest.approx(0.1 * (1 + 0.2 * 10 / 100))  # error clipped at +20%
    ctl = pm.AdaptiveKLController(0.1, target=6.0, horizon=100)
    assert ctl.update(5.4, 10) == pytest.approx(0.1 * (1 - 0.1 * 10 / 100))
