"""The toy ISA-MDP: exact values and gradients, the adversaries' inner problems solved
exactly, and the mechanism's outcome fractions."""

import itertools

import numpy as np
import pytest
import torch

from robustpo.analysis.toy_isamdp import (
    METHODS,
    corridor_trap,
    objective,
    optimal_policy,
    run_toy,
)


def random_theta(mdp, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, mdp.n_states, mdp.n_actions, generator=gen, dtype=torch.float64)


def test_values_match_a_hand_computed_corridor():
    mdp = corridor_trap(length=2, r_safe=0.3, gamma=0.9)
    # go with probability p everywhere: V(hub) = p * 0.9 * p * 0.9 * p * 1 + (1 - p) * 0.3
    p = 0.7
    policy = torch.tensor([p, 1 - p], dtype=torch.float64).expand(1, mdp.n_states, 2)
    expected = p * 0.9 * p * 0.9 * p + (1 - p) * 0.3
    assert float(mdp.start_value(policy)[0]) == pytest.approx(expected, abs=1e-12)


def test_the_mdp_is_intrinsic_the_optimal_policy_is_the_optimal_robust_one():
    mdp = corridor_trap()
    best = optimal_policy(mdp)
    actions = best.argmax(-1)
    for s, ball in enumerate(mdp.balls):
        if s != mdp.n_states - 1:  # the absorbing end state has no preferred action
            assert all(actions[o] == actions[s] for o in ball)
    policy = best.unsqueeze(0)
    worst = mdp.start_value(mdp.attacked(policy, mdp.strongest_adversary(policy)))
    assert float(worst[0]) == pytest.approx(mdp.gamma ** 3, abs=1e-12)
    assert float(mdp.start_value(policy)[0]) == pytest.approx(mdp.gamma ** 3, abs=1e-12)


def test_the_strongest_adversary_is_the_minimum_over_every_deterministic_adversary():
    mdp = corridor_trap()
    policy = torch.softmax(random_theta(mdp, n=6), -1)
    found = mdp.start_value(mdp.attacked(policy, mdp.strongest_adversary(policy)))
    brute = torch.full((6,), float("inf"), dtype=torch.float64)
    for choice in itertools.product(*mdp.balls):
        adversary = torch.tensor(choice).expand(6, -1)
        brute = torch.minimum(brute, mdp.start_value(mdp.attacked(policy, adversary)))
    assert torch.allclose(found, brute, atol=1e-12)


def test_the_max_kl_adversary_shows_the_furthest_observation_of_each_ball():
    mdp = corridor_trap()
    policy = torch.softmax(random_theta(mdp, n=3), -1)
    adversary = mdp.max_kl_adversary(policy)
    for n, s in itertools.product(range(3), range(mdp.n_states)):
        def kl(o, n=n, s=s):
            return float((policy[n, s] * (policy[n, s] / policy[n, o]).log()).sum())
        assert kl(int(adversary[n, s])) == pytest.approx(max(kl(o) for o in mdp.balls[s]))


@pytest.mark.parametrize("method", list(METHODS))
def test_the_exact_policy_gradient_matches_finite_differences(method):
    # ARPO's objective min_nu V^{pi o nu} is differentiable where its minimiser is unique
    # (Danskin): the gradient with the adversary held fixed is the true gradient there.
    mdp = corridor_trap()
    theta = random_theta(mdp, n=1, seed=3).requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(mdp, theta, method, 0.3), theta)
    h = 1e-6
    for index in itertools.product(range(mdp.n_states - 1), range(mdp.n_actions)):
        step = torch.zeros_like(theta)
        step[(0, *index)] = h
        with torch.no_grad():
            numeric = (objective(mdp, theta + step, method, 0.3)
                       - objective(mdp, theta - step, method, 0.3)) / (2 * h)
        assert float(grad[(0, *index)]) == pytest.approx(float(numeric), abs=1e-7)


def test_unknown_method_and_bad_mdp_are_clear_errors():
    with pytest.raises(ValueError, match="choose one of"):
        run_toy(methods=("ppo",))
    with pytest.raises(ValueError, match="r_safe"):
        corridor_trap(length=3, r_safe=0.9)


def test_the_mechanism_spo_vulnerable_arpo_deceived_barpo_robust():
    # 100 initial policies, the command's default dynamics. Documented fractions (300
    # initialisations, docs/analysis.md): SPO 0.60 vulnerable / 0.40 deceived; ARPO 0.23
    # robust / 0.77 deceived; BARPO 0.52 robust / 0.47 deceived. Margins hold on any CPU.
    fractions = run_toy(inits=100, methods=("spo", "arpo", "barpo")).fractions()
    spo, arpo, barpo = fractions["spo"], fractions["arpo"], fractions["barpo"]
    assert spo["robust optimum"] < 0.05 and spo["vulnerable"] > 0.4  # decoys never trained
    assert arpo["vulnerable"] == 0 and arpo["deceived"] > spo["deceived"] + 0.15
    assert barpo["robust optimum"] > arpo["robust optimum"] + 0.15
    assert np.isclose(sum(barpo.values()), 1.0)
