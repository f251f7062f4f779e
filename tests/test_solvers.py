"""PGD, SGLD and FGSM in the eps-ball, and the critic and MAD attacks built on them."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from robustpo.agents.agent import Agent, gaussian_agent
from robustpo.attacks import make_attack
from robustpo.core.nets import GaussianActor
from robustpo.core.objectives import ActionAlong, PolicyKL
from robustpo.core.perturb import check_in_ball, fgsm, pgd, pgd_best, sgld


def victim(seed: int = 0) -> Agent:
    torch.manual_seed(seed)
    agent = gaussian_agent("Hopper-v5", 11, 3, -np.ones(3), np.ones(3), [64, 64])
    with torch.no_grad():  # a trained-looking policy: larger output weights than at init
        agent.actor.mean_net.layers[-1].weight.mul_(100.0)
        agent.actor.log_std.fill_(-1.5)
    return agent


def test_pgd_finds_the_corner_optimum_of_a_quadratic():
    # f(x) = -|x - c|^2 with c outside the ball: the maximiser is the corner of the ball
    # nearest to c, clean + eps * sign(c - clean); sign steps of eps/10 reach it exactly.
    clean = torch.tensor([[0.0, 1.0, -2.0], [0.5, 0.5, 0.5]])
    target = torch.tensor([[3.0, -4.0, 5.0], [-1.0, 2.0, -3.0]])
    eps = 0.1
    direction = torch.sign(target - clean)
    quadratic = lambda x: -((x - target) ** 2).sum(-1)  # noqa: E731
    out = pgd(quadratic, clean, eps, 10, random_start=False)
    torch.testing.assert_close(out, clean + eps * direction)
    # From a random start, 10 steps of eps/10 move every coordinate by eps towards the corner
    # (stopping at the ball's face): the start's draw is replayed from the same seed.
    start = clean + (torch.rand(clean.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    start = clean + (start - clean) * eps
    out = pgd(quadratic, clean, eps, 10, True, torch.Generator().manual_seed(0))
    expected = torch.minimum(torch.maximum(start + eps * direction, clean - eps), clean + eps)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(fgsm(lambda x: (x * target).sum(-1), clean, eps),
                               clean + eps * torch.sign(target))


def test_pgd_stops_inside_when_the_optimum_is_interior():
    clean = torch.zeros(1, 2)
    target = torch.tensor([[0.03, -0.02]])
    out = pgd(lambda x: -((x - target) ** 2).sum(-1), clean, 0.1, 40, False)
    assert (out - target).abs().max() <= 0.1 / 40 + 1e-7


floats = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None)
@given(arrays("float32", (6, 11), elements=floats), st.floats(0.0, 0.5), st.integers(0, 99),
       st.sampled_from(["random", "critic", "mad"]))
def test_every_attack_stays_in_the_ball(obs, eps, seed, name):
    clean = torch.from_numpy(obs)
    out = make_attack(name, seed=seed).perturb(victim(), clean, eps)
    assert out.shape == clean.shape and out.dtype == clean.dtype
    check_in_ball(out, clean, eps, name)


def test_solvers_stay_in_the_ball_for_a_steep_objective():
    clean = torch.randn(32, 11, generator=torch.Generator().manual_seed(1))
    agent = victim()
    with torch.no_grad():
        f = PolicyKL(agent.actor, agent.actor(clean))
    for solver in (lambda: pgd(f, clean, 0.05), lambda: sgld(f, clean, 0.05),
                   lambda: fgsm(f, clean, 0.05)):
        check_in_ball(solver(), clean, 0.05, "solver")


def test_mad_increases_the_action_difference_over_random_noise():
    agent = victim()
    clean = torch.randn(256, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = PolicyKL(agent.actor, agent.actor(clean))
        random = diff(make_attack("random", seed=0).perturb(agent, clean, 0.075)).mean()
        mad = diff(make_attack("mad", seed=0).perturb(agent, clean, 0.075)).mean()
    assert mad > 3 * random, (float(mad), float(random))


def test_critic_attack_lowers_the_value_below_random_noise():
    agent = victim()
    with torch.no_grad():
        agent.critic.net.layers[-1].weight.mul_(100.0)
    clean = torch.randn(256, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        v_random = agent.critic(make_attack("random").perturb(agent, clean, 0.075)).mean()
        v_critic = agent.critic(make_attack("critic").perturb(agent, clean, 0.075)).mean()
        v_clean = agent.critic(clean).mean()
    assert v_critic < v_random - 0.5 * abs(v_clean - v_random) - 1e-3
    assert v_critic < v_clean


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 1.0), st.floats(0.01, 1.0), st.integers(0, 10_000))
def test_pgd_random_start_stays_in_its_smaller_ball(eps, fraction, seed):
    clean = torch.randn(16, 5, generator=torch.Generator().manual_seed(seed))
    flat = pgd(lambda x: (x * 0).sum(-1), clean, eps, steps=1, random_start=True,
               generator=torch.Generator().manual_seed(seed), start_radius=fraction * eps)
    # a zero gradient has sign 0: the result is the random start itself
    assert (flat - clean).abs().max() <= fraction * eps + 1e-6


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 0.5), st.integers(1, 8), st.integers(0, 10_000))
def test_pgd_best_returns_its_best_evaluated_point_and_that_point_s_value(eps, steps, seed):
    g = torch.Generator().manual_seed(seed)
    clean, w = torch.randn(2, 16, 3, generator=g), torch.randn(2, 1, 3, generator=g)
    low, high = -torch.ones(3), torch.ones(3)
    clean = clean.clamp(low, high)

    def wiggly(x: torch.Tensor) -> torch.Tensor:  # (2, 16): sign steps overshoot its maxima
        return torch.sin(8 * (x * w).sum(-1)) - (x ** 2).sum(-1)

    point, value = pgd_best(wiggly, clean, eps, steps, box=(low, high))
    assert point.shape == clean.shape and value.shape == clean.shape[:-1]
    assert torch.allclose(value, wiggly(point), atol=1e-6)
    assert ((point - clean).abs() <= eps + 1e-6).all()
    assert (point >= low).all() and (point <= high).all()
    # at least as good as no perturbation, and as plain PGD's last point on the same path
    assert (value >= wiggly(clean) - 1e-6).all()
    assert (value >= wiggly(pgd(wiggly, clean, eps, steps, False, box=(low, high))) - 1e-6).all()


def test_the_closed_form_action_direction_gradient_equals_autograd():
    torch.manual_seed(3)
    actor = GaussianActor(5, 2, [16, 16])
    x, d = torch.randn(7, 5), torch.randn(7, 2)
    x_grad = x.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(ActionAlong(actor, d)(x_grad).sum(), x_grad)
    assert torch.allclose(ActionAlong(actor, d).gradient(x), auto, atol=1e-6)
