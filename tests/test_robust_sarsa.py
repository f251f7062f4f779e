"""The robust Sarsa (RS) attack: its Q learning, its PGD, and that it lowers the return."""

import pytest
import torch

import robustpo
import robustpo.attacks.robust_sarsa as rs
from robustpo.attacks import make_attack
from robustpo.core.envs import make_env
from robustpo.core.perturb import check_in_ball

ZOO = "zoo/ppo-Hopper-v5"


def test_rs_q_learns_values_and_its_pgd_lowers_q_inside_the_ball():
    victim = robustpo.load_agent(ZOO)
    q = rs.train_sarsa_q(victim, 0.05, 1.0, iterations=3, rollout_steps=64, epochs=2,
                         minibatches=4)
    obs = victim.normalize(make_env("Hopper-v5").reset(seed=0)[0][None])
    obs = obs.repeat(8, 1) + 0.1 * torch.randn(8, obs.shape[1])
    with torch.no_grad():
        clean_q = q(obs, victim.actor(obs))
    assert (clean_q > 0.05).all()  # rewards are positive, so the value of the policy is too
    perturbed = rs.sarsa_pgd(q, victim, obs, 0.075, torch.Generator().manual_seed(0))
    check_in_ball(perturbed, obs, 0.075, "rs")
    with torch.no_grad():
        assert (q(obs, victim.actor(perturbed)) <= clean_q + 1e-4).all()
        assert q(obs, victim.actor(perturbed)).mean() < clean_q.mean()


def test_rs_penalty_makes_q_smoother():
    victim = robustpo.load_agent(ZOO)
    kw = {"iterations": 4, "rollout_steps": 64, "epochs": 2, "minibatches": 4, "seed": 1}
    plain = rs.train_sarsa_q(victim, 0.1, 0.0, **kw)
    smooth = rs.train_sarsa_q(victim, 0.1, 30.0, **kw)
    x = torch.randn(64, victim.obs_dim)
    a = torch.zeros(64, victim.act_dim)
    with torch.no_grad():
        gaps = [(ub - lb).mean() for lb, ub in (q.bounds(x, a, 0.1) for q in (plain, smooth))]
    assert gaps[1] < gaps[0]


@pytest.mark.slow
def test_rs_lowers_the_zoo_agents_return_below_random(tmp_path, monkeypatch):
    monkeypatch.setattr(rs.RobustSarsaAttack, "grid", [(0.05, 0.3), (0.15, 3.0)])
    real = rs.train_sarsa_q
    monkeypatch.setattr(rs, "train_sarsa_q", lambda *a, **k: real(*a, **{**k, "iterations": 10}))
    victim = robustpo.load_agent(ZOO)
    attack = make_attack("rs")
    attack.cache_dir = tmp_path
    result = robustpo.evaluate(victim, episodes=3, attack=attack, eps=0.075)
    rand = robustpo.evaluate(victim, episodes=3, attack="random", eps=0.075)
    assert result.stats.mean < rand.stats.mean - 1000, (result.stats.mean, rand.stats.mean)
    assert set(attack.screened) == {"eps0p05-reg0p3", "eps0p15-reg3"}
    assert (tmp_path / "rs-eps0.075" / "screening.json").is_file()
    reused = make_attack("rs")
    reused.cache_dir = tmp_path
    assert robustpo.evaluate(victim, 3, reused, 0.075).returns == result.returns
