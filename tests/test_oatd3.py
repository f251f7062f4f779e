"""OA-TD3: the OA target never exceeds the unperturbed one, PGD stays in the action ball and
the action space, gradient surgery's guarantees, the reductions to TD3, and exact resume."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from robustpo.adversaries.oatd3 import surgery
from robustpo.agents.agent import load_agent
from robustpo.attacks import make_attack
from robustpo.core.gae import compute_gae
from robustpo.core.nets import TwinQ
from robustpo.core.objectives import NegatedTwinQ
from robustpo.core.perturb import pgd
from robustpo.errors import ConfigError
from robustpo.io.checkpoint import load_checkpoint
from robustpo.io.rundir import checkpoint_paths
from robustpo.learners.ppo import PPOLearner
from robustpo.learners.td3 import TD3Learner
from robustpo.results.suite import run_suite
from robustpo.training.driver import train
from robustpo.training.presets import config_from_dict, resolve_config

from .conftest import REDUCTION, TINY_TD3, tensors_equal

SETS = {**TINY_TD3, "learning_starts": 200}


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 40),
       omega=st.floats(0.01, 0.99), conflict=st.booleans())
def test_surgery_never_opposes_either_gradient_and_is_the_weighted_sum_without_conflict(
        seed, n, omega, conflict):
    gen = torch.Generator().manual_seed(seed)
    g1, g2 = torch.randn(n, generator=gen, dtype=torch.float64), torch.randn(
        n, generator=gen, dtype=torch.float64)
    if (torch.dot(g1, g2) < 0) != conflict:
        g2 = -g2
    out = surgery(g1, g2, omega)
    if torch.dot(g1, g2) < 0:
        tol = 1e-9 * (g1.norm() * g2.norm() + 1)
        assert torch.dot(out, g1) >= -tol and torch.dot(out, g2) >= -tol
    else:
        assert torch.equal(out, (1 - omega) * g1 + omega * g2)
    assert torch.equal(surgery(g1, g2, 0.0), g1) and torch.equal(surgery(g1, g2, 1.0), g2)


@pytest.mark.parametrize("hidden", [[32, 32], [16, 24, 8]])
def test_the_twin_critics_closed_form_action_gradient_equals_autograd(hidden):
    torch.manual_seed(4)
    critics = TwinQ(5, 3, hidden).requires_grad_(False)
    obs, actions = torch.randn(9, 5), torch.randn(2, 9, 3)
    objective = NegatedTwinQ(critics, obs)
    value, grad = objective.value_and_gradient(actions)
    assert torch.allclose(value, objective(actions), atol=1e-5)
    x = actions.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(objective(x).sum(), x)
    assert torch.allclose(grad, auto, atol=1e-6) and grad.abs().max() > 0.01


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.0, 0.05, 0.3, 2.0]))
def test_pgd_over_actions_stays_in_the_ball_and_the_box(seed, eps):
    gen = torch.Generator().manual_seed(seed)
    low, high = torch.tensor([-1.0, -2.0, 0.0]), torch.tensor([1.0, 2.0, 3.0])
    start = low + torch.rand(2, 16, 3, generator=gen) * (high - low)
    radius = eps * (high - low) / 2
    w = torch.randn(3, generator=gen)
    out = pgd(lambda a: (a * w).sum(-1).sum(0), start, radius, 7, random_start=True,
              generator=gen, box=(low, high))
    assert ((out - start).abs() <= radius + 1e-6).all()
    assert (out >= low).all() and (out <= high).all()


def test_the_oa_target_never_exceeds_the_unperturbed_target():
    cfg = resolve_config("oa-td3", "Hopper-v5", preset="defaults",
                         overrides={**SETS, "eps": 0.3}, total_steps=1000)
    learner = TD3Learner(cfg)
    for _ in range(300):
        learner.collect()
    for _ in range(20):  # critics that are not at their initialisation
        learner.gradient_step()
    method, nets = learner.method, learner.nets
    batch = learner.buffer.sample(256, torch.Generator().manual_seed(1))
    method.target(nets, batch, torch.Generator().manual_seed(2))
    oa = method.oa_target(nets, batch)
    with torch.no_grad():
        plain = batch.rewards + cfg.td3.gamma * batch.not_done * method.critics_target(
            batch.next_obs, method.next_actions).min(0).values
    # PGD's values split the first layer's sum: equal to the critics' call up to rounding
    assert (oa <= plain + 1e-5 * (1 + plain.abs())).all()
    assert (oa < plain - 1e-4).float().mean() > 0.5
    learner.close()


@pytest.mark.parametrize("overrides", [{"eps": 0.0, "omega": 0.5}, {"eps": 0.2, "omega": 0.0}])
def test_oa_td3_reduces_to_td3_bit_for_bit(tmp_path, overrides, td3_baseline):
    td3 = td3_baseline
    oa = train("oa-td3", "Hopper-v5", out=tmp_path / "oa", overrides={**SETS, **overrides},
               **REDUCTION)
    assert tensors_equal(td3.agent.tensors(),
                         {k: v for k, v in oa.agent.tensors().items()
                          if not k.startswith("q_adv.")})
    assert set(oa.agent.modules) == {"actor", "q", "q_adv"}


def test_oa_td3_learns_an_oa_critic_below_the_nominal_one_and_resumes_exactly(tmp_path):
    sets = {**SETS, "eps": 0.5, "checkpoint_every": 4}
    full = train("oa-td3", "Hopper-v5", steps=800, seed=2, preset="defaults", progress=False,
                 out=tmp_path, overrides=sets)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    values = dict(zip(header, last, strict=True))
    assert float(values["oa_q_mean"]) < float(values["q_mean"])  # planning against eps
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path)[0])
    learner = TD3Learner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    while learner.iteration < learner.total_iterations:
        learner.step()
    assert tensors_equal(learner.agent.tensors(), full.agent.tensors())
    learner.close()
    attack = make_attack("min-oa-q", target="action")  # an OA agent is attacked with its own
    suite = run_suite(load_agent(tmp_path), ["min-oa-q"], 0.2, episodes=2, target="action")
    attack.prepare(load_agent(tmp_path), 0.2)
    assert attack.details == {"q": "the victim's own OA critic", "pgd_steps": 10} and suite.attacks


def test_oa_ppo_with_omega_zero_is_ppo_bit_for_bit_and_resumes_exactly(tmp_path, tiny):
    kwargs = dict(steps=2 * 64 * 8, seed=5, progress=False)
    ppo = train("ppo", "Hopper-v5", out=tmp_path / "ppo", overrides=tiny, **kwargs)
    zero = train("oa-ppo", "Hopper-v5", out=tmp_path / "zero",
                 overrides={**tiny, "omega": 0.0}, **kwargs)
    assert tensors_equal(ppo.agent.tensors(), {k: v for k, v in zero.agent.tensors().items()
                                               if not k.startswith("q_adv.")})
    full = train("oa-ppo", "Hopper-v5", out=tmp_path / "oa", overrides={**tiny, "eps": 0.3},
                 **kwargs)
    assert not tensors_equal(ppo.agent.tensors(), full.agent.tensors())
    tensors, meta = load_checkpoint(checkpoint_paths(tmp_path / "oa")[0])
    learner = PPOLearner(config_from_dict(meta["config"], "test"))
    learner.restore(tensors, meta, "test")
    while learner.iteration < learner.total_iterations:
        learner.step()
    assert tensors_equal(learner.agent.tensors(), full.agent.tensors())
    learner.close()
    rows = (tmp_path / "oa" / "metrics.csv").read_text().splitlines()
    assert "oa_critic_loss" in rows[0] and float(dict(zip(
        rows[0].split(","), rows[-1].split(",")))["oa_advantage_std"]) > 0


@pytest.mark.parametrize("oa_lambda", [None, 0.0, 0.5])
def test_oa_ppo_advantage_is_gae_on_the_oa_values_td_errors(tiny, oa_lambda):
    # With a constant Q_adv = c, V_adv = c everywhere: A_adv must be GAE with V = c (and the
    # OA lambda, PPO's when unset), which checks the bootstrapping (0 after a termination, the
    # final state at a truncation) and that the recursion stops at episode ends.
    cfg = resolve_config("oa-ppo", "Hopper-v5", seed=3,
                         overrides={**tiny, "omega": 1.0, "oa_gae_lambda": oa_lambda})
    learner = PPOLearner(cfg)
    try:
        critic = learner.adversary.critic
        with torch.no_grad():
            for p in critic.parameters():
                p.zero_()
            critic.net.layers[-1].bias.fill_(2.5)
        ended = torch.zeros(())
        while not ended:  # a rollout with an episode end in it
            rollout = learner.collect()
            ended = rollout.ends.sum()
        expected, _ = compute_gae(rollout.rewards, torch.full_like(rollout.rewards, 2.5),
                                  2.5 * rollout.continues, rollout.ends, cfg.ppo.gamma,
                                  cfg.ppo.gae_lambda if oa_lambda is None else oa_lambda)
        got = learner.adversary.rollout_advantages(rollout, learner.agent)
        assert torch.allclose(got, expected, atol=1e-5)
    finally:
        learner.close()


def test_oa_ppo_rejects_an_oa_lambda_outside_the_unit_interval(tiny):
    with pytest.raises(ConfigError, match="oa_gae_lambda"):
        resolve_config("oa-ppo", "Hopper-v5", seed=0, overrides={"oa_gae_lambda": 1.5})


def test_oa_ppo_keeps_ppo_update_sizes_on_hopper():
    # PPO's first iterations on Hopper-v5 clip about 14% of the samples; an OA advantage
    # without return noise (a function of the sampled action alone) clipped about half and
    # diverged. 10 iterations of the preset, about 10 s.
    cfg = resolve_config("oa-ppo", "Hopper-v5", seed=0)
    learner = PPOLearner(cfg)
    try:
        stats = [learner.step() for _ in range(10)]
    finally:
        learner.close()
    clip = sum(s["clip_fraction"] for s in stats) / len(stats)
    kl = max(s["approx_kl"] for s in stats)
    assert clip < 0.3 and kl < 0.04, (clip, kl)
