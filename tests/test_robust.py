"""Robust training (SA-PPO, CAR-PPO, BAR-PPO): reductions to PPO, the inner solvers, the
closed-form gradients, and the eps ramp."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.adversaries import Minibatch, method_class
from robustpo.adversaries.carppo import car_weights
from robustpo.config.sections import PPOConfig
from robustpo.core.nets import GaussianActor
from robustpo.core.objectives import PolicyKL, SurrogateLoss
from robustpo.core.perturb import BALL_TOLERANCE
from robustpo.core.surrogate import Surrogate
from robustpo.training.driver import train
from robustpo.training.presets import resolve_config

from .conftest import tensors_equal

STEPS = 2 * 64 * 4  # 4 iterations of the tiny config


def minibatch(seed: int, n: int = 64, obs_dim: int = 6, act_dim: int = 3):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    actor = GaussianActor(obs_dim, act_dim, [16, 16], init_std=0.6)
    with torch.no_grad():  # move off the initialisation so that the policy varies with s
        for p in actor.parameters():
            p.add_(0.4 * torch.randn(p.shape, generator=g))
    obs = torch.randn(n, obs_dim, generator=g)
    actions = torch.randn(n, act_dim, generator=g)
    with torch.no_grad():
        old_log_probs = actor.log_prob(actor(obs), actions) + 0.2 * torch.randn(n, generator=g)
    adv = torch.randn(n, generator=g)
    return actor, Minibatch(obs, actions, old_log_probs, adv, torch.zeros(n), torch.zeros(n))


def objective(algo: str, seed: int = 0, entropy_coef: float = 0.0, **kw):
    """The training adversary of ``algo`` with method-section values ``kw``."""
    cls = method_class(algo)
    return cls(cls.config_class(**kw), PPOConfig(entropy_coef=entropy_coef), 0.1,
               torch.Generator().manual_seed(seed))


def perturb(adversary, actor, batch, eps):
    clean = Surrogate(actor, batch.obs, batch.actions, batch.old_log_probs, batch.adv, 0.2)
    return adversary.perturb(actor, batch, clean, eps)


@pytest.mark.parametrize("algo,overrides", [
    ("barppo", {"attack_eps": 0.0, "kappa": 0.0}),
    ("carppo", {"attack_eps": 0.0, "car_reg": 0.0, "kappa": 1.0}),
    ("sappo", {"attack_eps": 0.0, "kappa": 1.0}),
])
def test_robust_methods_reduce_to_ppo(tmp_path, tiny, algo, overrides):
    ppo = train("ppo", "Hopper-v5", steps=STEPS, seed=3, out=tmp_path / "ppo", overrides=tiny,
                progress=False)
    robust = train(algo, "Hopper-v5", steps=STEPS, seed=3, out=tmp_path / algo,
                   overrides={**tiny, **overrides}, progress=False)
    assert tensors_equal(ppo.agent.tensors(), robust.agent.tensors())


def test_nonzero_eps_changes_the_parameters(tmp_path, tiny):
    ppo = train("ppo", "Hopper-v5", steps=STEPS, seed=3, out=tmp_path / "ppo", overrides=tiny,
                progress=False)
    bar = train("barppo", "Hopper-v5", steps=STEPS, seed=3, out=tmp_path / "bar",
                overrides={**tiny, "attack_eps": 0.2, "eps_ramp": 0.0, "kappa": 0.0},
                progress=False)
    assert not tensors_equal(ppo.agent.tensors(), bar.agent.tensors())
    header, *rows = (tmp_path / "bar" / "metrics.csv").read_text().splitlines()
    assert header.endswith("train_eps,inner_objective,perturbed_kl")
    last = rows[-1].split(",")
    assert float(last[-3]) == pytest.approx(0.2) and float(last[-1]) > 0


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000), st.floats(0.0, 0.5), st.sampled_from(
    [("sappo", "sgld"), ("carppo", "pgd"), ("carppo", "sgld"), ("barppo", "sgld")]))
def test_training_perturbations_lie_in_the_ball(seed, eps, method):
    actor, batch = minibatch(seed)
    algo, solver = method
    perturbed = perturb(objective(algo, seed, inner_solver=solver), actor, batch, eps)
    assert perturbed.shape == batch.obs.shape
    assert (perturbed - batch.obs).abs().max() <= eps + BALL_TOLERANCE


@pytest.mark.parametrize("seed", range(3))
def test_max_kl_solver_beats_random_perturbations(seed):
    actor, batch = minibatch(seed)
    eps, obs = 0.1, batch.obs
    with torch.no_grad():
        kl = PolicyKL(actor, actor(obs))
        solved = perturb(objective("barppo", seed), actor, batch, eps)
        g = torch.Generator().manual_seed(seed)
        random = obs + (torch.rand(obs.shape, generator=g) * 2 - 1) * eps
        assert kl(solved).mean() > 2 * kl(random).mean()


@pytest.mark.parametrize("solver", ["pgd", "sgld"])
def test_min_surrogate_solver_lowers_the_surrogate(solver):
    actor, batch = minibatch(7)
    loss = SurrogateLoss(actor, batch.actions, batch.old_log_probs, batch.adv, 0.2)
    with torch.no_grad():
        solved = perturb(objective("carppo", inner_solver=solver), actor, batch, 0.1)
        # L is the negated surrogate: the solver must raise it, i.e. lower the surrogate
        assert loss(solved).mean() > loss(batch.obs).mean() + 0.05


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=64), st.floats(0.1, 1e4))
def test_car_soft_weights_sum_to_one_and_favour_the_worst(losses, temperature):
    loss = torch.tensor(losses, dtype=torch.float64)
    w = car_weights(loss, temperature)
    assert float(w.sum()) == pytest.approx(1.0)
    assert (w >= 0).all()
    assert w[loss.argmax()] >= w.max() - 1e-12


def test_closed_form_input_gradients_match_autograd():
    actor, b = minibatch(11)
    with torch.no_grad():
        clean_mean = actor(b.obs)
    x = b.obs + 0.05
    for f in (PolicyKL(actor, clean_mean),
              SurrogateLoss(actor, b.actions, b.old_log_probs, b.adv, 0.2)):
        xr = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(f(xr).sum(), xr)
        torch.testing.assert_close(f.gradient(x), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("algo,kw", [
    ("ppo", {}), ("sappo", {"kappa": 0.7}), ("sappo", {"kappa": 0.7, "sigma_grad": True}),
    ("barppo", {"kappa": 0.5}),
    ("barppo", {"kappa": 0.0}), ("carppo", {"kappa": 1.0, "car_reg": 0.3, "car_lambda": 2.0}),
    ("carppo", {"kappa": 0.0, "car_reg": 1.0, "car_lambda": 0.5}),
    ("barppo", {"kappa": 0.3, "robust_std_grad": "clean"}),
    ("carppo", {"kappa": 1.0, "car_reg": 0.3, "car_lambda": 2.0, "robust_std_grad": "clean"}),
])
def test_closed_form_policy_gradient_matches_autograd(algo, kw):
    actor, batch = minibatch(5)
    kw = {"entropy_coef": 1e-2, **kw}
    fast = objective(algo, 1, **kw).step(actor, batch, eps=0.1, analytic=True)
    ref = objective(algo, 1, **kw).step(actor, batch, eps=0.1, analytic=False)
    loss = ref.loss - 1e-2 * actor.entropy()
    expected = torch.autograd.grad(loss, list(actor.parameters()))
    assert float(fast.loss) == pytest.approx(float(ref.loss.detach()), rel=1e-5, abs=1e-7)
    for got, want in zip(fast.grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    if algo != "ppo":
        assert float(fast.metrics["perturbed_kl"]) > 0
        assert float(fast.metrics["inner_objective"]) != 0


@pytest.mark.parametrize("analytic", [True, False])
def test_clean_std_grad_moves_the_mean_gradient_only(analytic):
    # BAR-PPO without guidance: with robust_std_grad = clean, the log-std gradient is the
    # clean PPO one; the mean-network gradient and the loss are the perturbed ones.
    actor, batch = minibatch(7)

    def grads(algo, **kw):
        step = objective(algo, 2, **kw).step(actor, batch, eps=0.1, analytic=analytic)
        if analytic:
            return step.loss.detach(), step.grads
        return step.loss.detach(), torch.autograd.grad(step.loss, list(actor.parameters()))

    ppo_loss, ppo = grads("ppo")
    lit_loss, literal = grads("barppo", kappa=0.0)
    cln_loss, clean = grads("barppo", kappa=0.0, robust_std_grad="clean")
    torch.testing.assert_close(clean[0], ppo[0])
    assert not torch.allclose(literal[0], ppo[0])
    for a, b in zip(clean[1:], literal[1:]):
        torch.testing.assert_close(a, b)
    assert float(cln_loss) == pytest.approx(float(lit_loss)) != pytest.approx(float(ppo_loss))


def test_eps_ramps_linearly_over_the_first_three_quarters():
    cfg = resolve_config("barppo", "Hopper-v5")
    assert cfg.ppo.iterations == 976 and cfg.attack_eps == 0.075
    adversary = method_class("barppo")(cfg.method, cfg.ppo, cfg.attack_eps, torch.Generator())
    assert adversary.eps(0) == 0.0
    assert adversary.eps(366) == pytest.approx(0.075 * 366 / 732)
    assert adversary.eps(732) == adversary.eps(975) == pytest.approx(0.075)
    assert objective("ppo").eps(500) == 0.0


def test_robust_training_resumes_bit_exactly(tmp_path, tiny):
    from robustpo.io.checkpoint import load_checkpoint
    from robustpo.io.rundir import checkpoint_paths
    from robustpo.learners.ppo import PPOLearner
    from robustpo.training.presets import config_from_dict

    full = train("barppo", "Hopper-v5", steps=2 * STEPS, seed=2, out=tmp_path,
                 overrides={**tiny, "attack_eps": 0.1}, progress=False)
    first = checkpoint_paths(tmp_path)[0]  # iteration 4 of 8 (the last 3 are kept)
    tensors, meta = load_checkpoint(first)
    assert meta["iteration"] == 4 and "rng.adversary" in tensors
    learner = PPOLearner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    while learner.iteration < 8:
        learner.step()
    assert tensors_equal(learner.agent.tensors(), full.agent.tensors())
    learner.close()


@pytest.mark.parametrize("analytic", [True, False])
def test_sappo_sigma_grad_moves_the_log_std_gradient_only(analytic):
    # SA_PPO's released configs leave sigma attached in the KL term: its gradient then also
    # reaches log-std (and pushes sigma up: a larger sigma shrinks the term).
    actor, batch = minibatch(3)

    def grads(**kw):
        step = objective("sappo", 4, kappa=1.0, **kw).step(actor, batch, eps=0.1,
                                                         analytic=analytic)
        if analytic:
            return step.grads
        return torch.autograd.grad(step.loss, list(actor.parameters()))

    fixed, attached = grads(), grads(sigma_grad=True)
    assert (attached[0] < fixed[0]).all()  # descent raises log-std
    for a, b in zip(fixed[1:], attached[1:]):
        torch.testing.assert_close(a, b)
