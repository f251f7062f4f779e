"""The closed-form PPO gradients the learner runs equal autograd's on the same losses."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.adversaries import Minibatch, method_class
from robustpo.config.sections import PPOConfig
from robustpo.core.nets import GaussianActor, ValueNet
from robustpo.core.surrogate import value_loss, value_loss_and_grads


def minibatch(seed: int, n: int = 64, obs_dim: int = 5, act_dim: int = 3):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    actor = GaussianActor(obs_dim, act_dim, [16, 16], init_std=0.7)
    critic = ValueNet(obs_dim, [16, 16])
    with torch.no_grad():  # move off the initialisation so that every branch is exercised
        for p in [*actor.parameters(), *critic.parameters()]:
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    obs = torch.randn(n, obs_dim, generator=g)
    actions = torch.randn(n, act_dim, generator=g)
    with torch.no_grad():
        old_log_probs = actor.log_prob(actor(obs), actions) + 0.3 * torch.randn(n, generator=g)
        old_values = critic(obs) + 0.5 * torch.randn(n, generator=g)
    adv = torch.randn(n, generator=g)
    returns = old_values + torch.randn(n, generator=g)
    return actor, critic, Minibatch(obs, actions, old_log_probs, adv, old_values, returns)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([None, 0.2]), st.sampled_from([0.0, 1e-2]))
def test_ppo_closed_form_gradients_match_autograd(seed, value_clip, entropy_coef):
    actor, critic, batch = minibatch(seed)
    spo = method_class("ppo")(method_class("ppo").config_class(),
                              PPOConfig(entropy_coef=entropy_coef), 0.0, torch.Generator())
    fast = spo.step(actor, batch, 0.0, analytic=True)
    ref = spo.step(actor, batch, 0.0, analytic=False)
    expected = torch.autograd.grad(ref.loss - entropy_coef * actor.entropy(),
                                   list(actor.parameters()))
    assert fast.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5, abs=1e-7)
    assert [g.shape for g in fast.grads] == [p.shape for p in actor.parameters()]
    for g, e in zip(fast.grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
    clipped = (fast.ratio - 1).abs() > 0.2
    assert clipped.any() and not clipped.all()  # both branches of the surrogate were used

    value, critic_grads = value_loss_and_grads(critic, batch.obs, batch.old_values,
                                               batch.returns, value_clip)
    ref_value = value_loss(critic(batch.obs), batch.old_values, batch.returns, value_clip)
    assert value.item() == pytest.approx(ref_value.item(), rel=1e-5, abs=1e-7)
    for g, e in zip(critic_grads, torch.autograd.grad(ref_value, list(critic.parameters()))):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
