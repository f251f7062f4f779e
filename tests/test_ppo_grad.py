"""The closed-form PPO gradient equals autograd's on the reference loss."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.nets import GaussianActor, ValueNet
from robustpo.ppo_loss import ppo_loss, ppo_loss_and_grads


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
    return actor, critic, (obs, actions, old_log_probs, old_values, adv, returns)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([None, 0.2]), st.sampled_from([0.0, 1e-2]))
def test_analytic_gradient_matches_autograd(seed, value_clip, entropy_coef):
    actor, critic, batch = minibatch(seed)
    parts = ppo_loss(actor, critic, *batch, 0.2, value_clip)
    loss = parts.policy + parts.value - entropy_coef * actor.entropy()
    params = [*actor.parameters(), *critic.parameters()]
    expected = torch.autograd.grad(loss, params)
    fast, actor_grads, critic_grads = ppo_loss_and_grads(
        actor, critic, *batch, 0.2, value_clip, entropy_coef)
    assert fast.policy.item() == pytest.approx(parts.policy.item(), rel=1e-5, abs=1e-7)
    assert fast.value.item() == pytest.approx(parts.value.item(), rel=1e-5, abs=1e-7)
    got = [*actor_grads, *critic_grads]
    assert [g.shape for g in got] == [p.shape for p in params]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
    clipped = (fast.ratio - 1).abs() > 0.2
    assert clipped.any() and not clipped.all()  # both branches of the surrogate were used
