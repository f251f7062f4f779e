"""Attacks on actions: every executed action inside the action ball and the action space,
the rules of random and biggest, learned Q functions cached by victim, and min-q beating
random on a trained TD3 agent."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import robustpo
import robustpo.attacks.action as action
from robustpo.attacks import make_attack
from robustpo.attacks.base import action_ball
from robustpo.core.perturb import check_action_in_ball
from robustpo.errors import ActionOutOfBallError, UnknownNameError
from robustpo.learners.td3 import td3_agent
from robustpo.results.suite import run_suite
from robustpo.training.driver import train

LOW, HIGH = np.array([-1.0, -2.0, 0.0], np.float32), np.array([1.0, 2.0, 3.0], np.float32)


def tiny_td3_victim(seed: int = 0):
    torch.manual_seed(seed)
    agent = td3_agent("Hopper-v5", 4, 3, LOW, HIGH, [8], False, 10.0, None)
    agent.modules.eval()
    return agent


class FixedAdversary:
    """Stands in for a trained action adversary: fixed actions in [-3, 3] (clipped by the
    attack)."""

    def __init__(self, actions):
        self.actions = actions

    def act_normalized(self, obs):
        return self.actions

    def normalize(self, obs):
        return torch.as_tensor(obs)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0, 2.5]),
       name=st.sampled_from(["random", "biggest", "min-q", "learned"]))
def test_every_action_attack_stays_in_the_ball_and_the_action_space(seed, eps, name):
    agent = tiny_td3_victim(seed % 3)
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(32, 4, generator=gen)
    chosen = torch.as_tensor(LOW) + torch.rand(32, 3, generator=gen) * torch.as_tensor(
        HIGH - LOW)
    chosen[:4] = torch.as_tensor(HIGH)  # at the bounds: the ball reaches outside the space
    chosen[4:8] = torch.as_tensor(LOW)
    attack = make_attack(name, seed=seed, target="action")
    if name == "learned":
        attack.adversary = FixedAdversary(
            (torch.rand(32, 3, generator=gen) * 6 - 3).numpy())
    else:
        attack.prepare(agent, eps)
    executed = attack.perturb(agent, obs, chosen, eps)
    check_action_in_ball(executed, chosen, eps, torch.as_tensor(LOW), torch.as_tensor(HIGH),
                         name)


def test_the_ball_check_rejects_actions_outside_the_ball_or_the_space():
    low, high = torch.as_tensor(LOW), torch.as_tensor(HIGH)
    chosen = torch.tensor([[0.0, 0.0, 1.0]])
    check_action_in_ball(chosen + torch.tensor([[0.1, 0.2, 0.15]]), chosen, 0.1, low, high, "t")
    with pytest.raises(ActionOutOfBallError, match="outside the l_inf ball"):
        check_action_in_ball(chosen + torch.tensor([[0.0, 0.21, 0.0]]), chosen, 0.1, low, high,
                             "t")  # 0.21 > 0.1 half-ranges of 2
    with pytest.raises(ActionOutOfBallError):
        check_action_in_ball(torch.tensor([[0.0, 0.0, -0.01]]), torch.tensor([[0.0, 0.0, 0.0]]),
                             0.1, low, high, "t")  # below the space's bound
    with pytest.raises(ActionOutOfBallError):
        check_action_in_ball(torch.tensor([[float("nan"), 0.0, 1.0]]), chosen, 0.1, low, high,
                             "t")


def test_biggest_moves_each_actuator_eps_away_from_its_nearer_bound():
    agent = tiny_td3_victim()
    chosen = torch.tensor([[0.5, -1.0, 1.4], [-0.2, 1.9, 1.5]])
    executed = make_attack("biggest", target="action").perturb(agent, torch.zeros(2, 4), chosen,
                                                               0.1)
    # half-ranges 1, 2, 1.5; centres 0, 0, 1.5 (at the centre: up)
    expected = torch.tensor([[0.4, -0.8, 1.55], [-0.1, 1.7, 1.65]])
    assert torch.allclose(executed, expected, atol=1e-6)
    low, high = action_ball(agent, chosen, 0.1)
    assert torch.allclose(low[0], torch.tensor([0.4, -1.2, 1.25]), atol=1e-6)
    assert torch.allclose(high[1], torch.tensor([-0.1, 2.0, 1.65]), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.floats(0.0, 1.0))
def test_biggest_moves_every_actuator_by_the_full_radius_even_at_the_bounds(seed, eps):
    # The clip to the action space never shortens it: the largest executed perturbation.
    agent = tiny_td3_victim()
    gen = torch.Generator().manual_seed(seed)
    chosen = torch.as_tensor(LOW) + torch.rand(16, 3, generator=gen) * torch.as_tensor(
        HIGH - LOW)
    chosen[:4], chosen[4:8] = torch.as_tensor(HIGH), torch.as_tensor(LOW)
    executed = make_attack("biggest", target="action").perturb(agent, torch.zeros(16, 4),
                                                               chosen, eps)
    moved = (executed - chosen).abs()
    assert torch.allclose(moved, eps * torch.as_tensor((HIGH - LOW) / 2).expand_as(moved),
                          atol=1e-5)


def test_min_q_uses_a_td3_agents_own_critic_and_lowers_it():
    agent = tiny_td3_victim()
    obs = torch.randn(64, 4)
    chosen = agent.actor(obs).detach()
    attack = make_attack("min-q", target="action")
    attack.prepare(agent, 0.3)
    executed = attack.perturb(agent, obs, chosen, 0.3)
    q1 = agent.modules["q"].q1
    assert attack.details == {"q": "the victim's own critic Q_1", "pgd_steps": 10}
    assert (q1(obs, executed) <= q1(obs, chosen) + 1e-5).float().mean() > 0.9


def test_more_pgd_steps_reach_min_q_and_find_q_at_least_as_low_on_average():
    agent = tiny_td3_victim(1)
    obs = torch.randn(256, 4)
    chosen = agent.actor(obs).detach()
    q1 = agent.modules["q"].q1
    lows = {}
    for steps in (1, 50):
        attack = make_attack("min-q", target="action")
        attack.pgd_steps = steps
        attack.prepare(agent, 0.3)
        executed = attack.perturb(agent, obs, chosen, 0.3)
        check_action_in_ball(executed, chosen, 0.3, torch.as_tensor(LOW), torch.as_tensor(HIGH),
                             "min-q")
        assert attack.details["pgd_steps"] == steps
        lows[steps] = float(q1(obs, executed).detach().mean())
    assert lows[50] <= lows[1] + 1e-4


def test_unknown_action_attacks_and_targets_are_named():
    with pytest.raises(UnknownNameError, match="Unknown action attack 'critic'"):
        make_attack("critic", target="action")
    with pytest.raises(UnknownNameError, match="Unknown attack target 'reward'"):
        make_attack("random", target="reward")


@pytest.mark.slow
def test_learned_qs_of_a_ppo_victim_are_cached_by_its_fingerprint(tmp_path, monkeypatch):
    # min-q learns a Sarsa Q of a PPO victim (no critic of actions); min-oa-q an OA Q. Both
    # are cached and reused for the same victim, and retrained for a changed one.
    monkeypatch.setitem(action.SARSA_SCHEDULE, "iterations", 2)
    monkeypatch.setitem(action.OA_Q_SCHEDULE, "steps", 600)
    monkeypatch.setitem(action.OA_Q_SCHEDULE, "learning_starts", 200)
    result = train("ppo", "InvertedPendulum-v5", steps=2048, seed=0, preset="defaults",
                   out=tmp_path / "ppo", progress=False)
    victim = robustpo.load_agent(result.run_dir)
    calls = {"sarsa": 0, "oa": 0}
    real_sarsa, real_oa = action.train_sarsa_q, action.train_oa_q

    def sarsa(*a, **k):
        calls["sarsa"] += 1
        return real_sarsa(*a, **k)

    def oa(*a, **k):
        calls["oa"] += 1
        return real_oa(*a, **k)

    monkeypatch.setattr(action, "train_sarsa_q", sarsa)
    monkeypatch.setattr(action, "train_oa_q", oa)
    cache = tmp_path / "attacks"
    first = run_suite(victim, ["min-q", "min-oa-q"], 0.2, episodes=2, cache_dir=cache,
                      target="action")
    again = run_suite(victim, ["min-q", "min-oa-q"], 0.2, episodes=2, cache_dir=cache,
                      target="action")
    assert calls == {"sarsa": 1, "oa": 1}
    assert [r.returns for r in first.attacks.values()] == \
        [r.returns for r in again.attacks.values()]
    assert first.to_json()["target"] == "action"
    with torch.no_grad():
        victim.actor.mean_net.layers[0].weight.add_(0.01)
    run_suite(victim, ["min-q", "min-oa-q"], 0.2, episodes=2, cache_dir=cache, target="action")
    assert calls == {"sarsa": 2, "oa": 2}


@pytest.mark.slow
def test_min_oa_q_fine_tunes_a_copy_of_a_td3_victims_critics_and_caches_it(tmp_path,
                                                                          monkeypatch):
    # A TD3-family victim without an OA critic: min-oa-q starts from its twin critics,
    # fine-tunes a copy with the OA target, caches it, and leaves the victim alone.
    monkeypatch.setitem(action.OA_TWIN_Q_SCHEDULE, "steps", 600)
    monkeypatch.setitem(action.OA_TWIN_Q_SCHEDULE, "learning_starts", 200)
    result = train("td3", "InvertedPendulum-v5", steps=1000, seed=0, preset="defaults",
                   overrides={"learning_starts": 500, "hidden": [32, 32]},
                   out=tmp_path / "td3", progress=False)
    victim = robustpo.load_agent(result.run_dir)
    own = {k: v.clone() for k, v in victim.modules["q"].state_dict().items()}
    calls = []
    real = action.train_oa_q
    monkeypatch.setattr(action, "train_oa_q", lambda *a, **k: calls.append(k) or real(*a, **k))
    cache = tmp_path / "attacks"
    first = run_suite(victim, ["min-oa-q"], 0.3, episodes=2, cache_dir=cache, target="action")
    again = run_suite(victim, ["min-oa-q"], 0.3, episodes=2, cache_dir=cache, target="action")
    assert len(calls) == 1 and calls[0]["init"] is victim.modules["q"]
    assert first.attacks["min-oa-q"].returns == again.attacks["min-oa-q"].returns
    details = first.to_json()["attacks"]["min-oa-q"]["details"]
    assert details["q"] == "OA Q fine-tuned from the victim's own critics"
    assert all(torch.equal(v, own[k]) for k, v in victim.modules["q"].state_dict().items())
    # the fine-tuned copy moved away from the critics it started from
    attack = make_attack("min-oa-q", target="action")
    attack.cache_dir = cache
    attack.prepare(victim, 0.3)
    obs = torch.randn(64, victim.obs_dim)
    acts = victim.actor(obs).detach()
    assert not torch.allclose(attack.q(obs, acts), victim.modules["q"].q1(obs, acts))


def hopper_td3_victim():
    torch.manual_seed(0)
    ones = np.ones(3, np.float32)
    return td3_agent("Hopper-v5", 11, 3, -ones, ones, [8], False, 10.0, None)


def test_the_action_adversary_can_observe_the_victims_action():
    """observe_action appends the victim's action in half-ranges; the task is the same."""
    from robustpo.attacks.learned import ActionAdversaryVectorEnv, action_view

    victim = hopper_td3_victim()
    plain = ActionAdversaryVectorEnv(victim, 0.1, 2)
    seeing = ActionAdversaryVectorEnv(victim, 0.1, 2, observe_action=True)
    assert plain.single_observation_space.shape == (11,)
    assert seeing.single_observation_space.shape == (14,)
    (o_plain, _), (o_seeing, _) = plain.reset(seed=3), seeing.reset(seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(o_seeing[:, :11], o_plain)
        chosen = victim.act_normalized(torch.from_numpy(o_plain))
        np.testing.assert_allclose(o_seeing[:, 11:], chosen, atol=1e-6)  # [-1, 1] space
        delta = np.full((2, 3), 0.5, np.float32)
        o_plain, r_plain, *_ = plain.step(delta)
        o_seeing, r_seeing, *_ = seeing.step(delta)
        np.testing.assert_array_equal(r_seeing, r_plain)
    seeing.set_observations(o_seeing)  # a resumed learner hands back the adversary's view
    np.testing.assert_array_equal(seeing._obs, o_plain)
    scaled = action_view(tiny_td3_victim(), np.stack([LOW, HIGH, (LOW + HIGH) / 2]))
    np.testing.assert_allclose(scaled, [[-1, -1, -1], [1, 1, 1], [0, 0, 0]])
    plain.close()
    seeing.close()


def test_an_adversary_that_observes_the_action_is_given_it_when_attacking():
    class Seeing(FixedAdversary):
        obs_dim = 4 + 3

        def act_normalized(self, obs):
            self.seen = np.asarray(obs)
            return self.actions

    agent = tiny_td3_victim()
    obs = torch.randn(5, 4)
    chosen = torch.as_tensor(LOW) + torch.rand(5, 3) * torch.as_tensor(HIGH - LOW)
    attack = make_attack("learned", target="action")
    attack.adversary = Seeing(np.ones((5, 3), np.float32))
    executed = attack.perturb(agent, obs, chosen, 0.1)
    np.testing.assert_allclose(attack.adversary.seen[:, :4], obs.numpy())
    half, centre = (HIGH - LOW) / 2, (HIGH + LOW) / 2
    np.testing.assert_allclose(attack.adversary.seen[:, 4:], (chosen.numpy() - centre) / half,
                               atol=1e-6)
    check_action_in_ball(executed, chosen, 0.1, torch.as_tensor(LOW), torch.as_tensor(HIGH),
                         "learned")


def test_observing_the_action_changes_the_cache_key_and_nothing_else(tmp_path):
    from robustpo.attacks import learned
    from robustpo.attacks.cache import config_fingerprint, recipe_record

    victim = hopper_td3_victim()
    attack = make_attack("learned", protocol="paper", target="action")
    plain = attack._cache(victim, 0.1, 4096, {}, 0, tmp_path).directory
    seeing = attack._cache(victim, 0.1, 4096, {"observe_action": True}, 0, tmp_path).directory
    assert plain != seeing and plain.parent == seeing.parent
    # a configuration without the option keeps the key it had before the option existed
    cfg = learned.adversary_ppo_config("Hopper-v5", seed=0, total_steps=4096, overrides={})
    assert plain.name == config_fingerprint({"steps": 4096, "recipe": recipe_record(cfg)})[:12]


def test_a_warm_started_action_adversary_starts_as_biggest():
    """The warm start regresses the adversary's mean onto biggest's move: on states it did not
    see, its perturbation points where biggest's does (an untrained one agrees on about
    two thirds of the actuators or fewer)."""
    from robustpo.attacks import learned
    from robustpo.learners.ppo import PPOLearner

    victim = hopper_td3_victim()
    cfg = learned.adversary_ppo_config("Hopper-v5", seed=0, total_steps=4096)
    env = learned.ActionAdversaryVectorEnv(victim, 0.1, cfg.ppo.num_envs, observe_action=True)
    learner = PPOLearner(cfg, envs=env)
    attack = make_attack("learned", protocol="paper", target="action")
    biggest = make_attack("biggest", target="action")
    untrained = copy.deepcopy(learner.agent)
    attack.warm_start(learner, victim, 0.1, learned.WARM_START, 0)
    learner.close()
    states = learned.ActionAdversaryVectorEnv(victim, 0.1, 4)
    obs, _ = states.reset(seed=7)
    seen = []
    for _ in range(50):
        seen.append(obs)
        obs, *_ = states.step(np.ones((4, 3), np.float32))
    states.close()
    obs = torch.from_numpy(np.concatenate(seen))
    chosen = victim.actor(obs).detach()
    target = torch.sign(biggest.perturb(victim, obs, chosen, 0.1) - chosen)
    for adversary, low, high in ((learner.agent, 0.9, 1.0), (untrained, 0.0, 0.8)):
        adversary.obs_normalizer.frozen = True
        attack.adversary = adversary
        moved = torch.sign(attack.perturb(victim, obs, chosen, 0.1) - chosen)
        assert low <= (moved == target).float().mean() <= high
