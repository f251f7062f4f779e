"""The SA-RL learned adversary: its MDP, and that it learns to lower the victim's return."""

from pathlib import Path

import numpy as np
import pytest
import torch

import robustpo
import robustpo.attacks.learned as learned
from robustpo.attacks import make_attack
from robustpo.core.envs import make_env
from robustpo.core.perturb import check_in_ball

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"


def test_adversary_env_perturbs_inside_the_ball_and_negates_the_reward():
    victim = robustpo.load_agent(ZOO)
    env = learned.AdversaryVectorEnv(victim, eps=0.1, num_envs=3)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (3, victim.obs_dim)
    assert env.single_action_space.low.min() == -1.0
    assert env.single_action_space.high.max() == 1.0
    plain = [make_env("Hopper-v5") for _ in range(3)]
    raw = np.stack([p.reset(seed=i)[0] for i, p in enumerate(plain)])
    zero = np.zeros((3, victim.obs_dim), dtype=np.float32)
    for _ in range(5):  # with Delta = 0 the victim acts on the clean observation
        _, adv_reward, *_ = env.step(zero)
        actions = victim.act(raw)
        steps = [p.step(a) for p, a in zip(plain, actions)]
        raw = np.stack([s[0] for s in steps])
        np.testing.assert_allclose(adv_reward, [-s[1] for s in steps])
    big = np.full((3, victim.obs_dim), 5.0, dtype=np.float32)  # clipped to the ball
    check_in_ball(torch.from_numpy(env.perturbation(obs, big)), torch.from_numpy(obs), 0.1,
                  "sarl")
    assert all(s is not None for s in env.call("get_sim_state"))  # resumable
    env.close()


def test_director_env_batches_the_gradient_actor():
    victim = robustpo.load_agent(ZOO)
    env = learned.DirectorVectorEnv(victim, eps=0.075, num_envs=4)
    obs, _ = env.reset(seed=0)
    direction = np.random.default_rng(0).uniform(-1, 1, (4, victim.act_dim)).astype(np.float32)
    batched = env.perturbation(obs, direction)
    single = np.concatenate([  # one copy at a time
        learned.push_action_along(victim, torch.from_numpy(obs[i:i + 1]),
                                  torch.from_numpy(direction[i:i + 1]), 0.075).numpy()
        for i in range(4)])
    # The same sign steps, except where a gradient coordinate is within rounding of zero.
    assert np.mean(np.abs(batched - single) > 1e-6) < 0.05
    env.close()


@pytest.mark.slow
def test_sarl_lowers_the_zoo_agents_return_below_random(tmp_path, monkeypatch):
    monkeypatch.setattr(learned.SARLAttack, "steps", 60 * 2048)  # ~45 s; the default is 500k
    victim = robustpo.load_agent(ZOO)
    attack = make_attack("sarl")
    attack.cache_dir = tmp_path
    sarl = robustpo.evaluate(victim, episodes=3, attack=attack, eps=0.075)
    rand = robustpo.evaluate(victim, episodes=3, attack="random", eps=0.075)
    assert sarl.stats.mean < rand.stats.mean - 1000, (sarl.stats.mean, rand.stats.mean)
    assert (tmp_path / "sarl-eps0.075" / "agent.json").is_file()  # saved for reuse
    reused = make_attack("sarl")
    reused.cache_dir = tmp_path
    again = robustpo.evaluate(victim, episodes=3, attack=reused, eps=0.075)
    assert again.returns == sarl.returns


def test_paad_actor_moves_the_action_along_the_directors_direction():
    victim = robustpo.load_agent(ZOO)
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(64, victim.obs_dim, generator=g)
    direction = torch.rand(64, victim.act_dim, generator=g) * 2 - 1
    with torch.no_grad():
        mu = victim.actor(obs)
        for steps in (1, 10):  # FGSM and PGD
            moved = learned.push_action_along(victim, obs, direction, 0.075, steps)
            check_in_ball(moved, obs, 0.075, "paad")
            along = ((victim.actor(moved) - mu) * direction).sum(-1)
            noise = make_attack("random", seed=1).perturb(victim, obs, 0.075)
            along_random = ((victim.actor(noise) - mu) * direction).sum(-1)
            assert (along > 0).all()
            assert along.mean() > 5 * along_random.abs().mean()


@pytest.mark.slow
def test_paad_lowers_the_zoo_agents_return_below_random(monkeypatch):
    monkeypatch.setattr(learned.PAADAttack, "steps", 40 * 2048)  # ~65 s; the default is 500k
    victim = robustpo.load_agent(ZOO)
    paad = robustpo.evaluate(victim, episodes=3, attack="paad", eps=0.075)
    rand = robustpo.evaluate(victim, episodes=3, attack="random", eps=0.075)
    assert paad.stats.mean < rand.stats.mean - 1000, (paad.stats.mean, rand.stats.mean)
