"""Learned attacks reuse a cached model only for the same victim and configuration."""

import json

import numpy as np
import pytest
import torch

import robustpo.attacks.learned as learned
from robustpo.agents.agent import gaussian_agent
from robustpo.attacks import make_attack
from robustpo.attacks.cache import (
    FINGERPRINT_FILE,
    config_fingerprint,
    recipe_record,
    victim_fingerprint,
)
from robustpo.learners.ppo import PPOLearner
from robustpo.training.presets import task_ppo_config


def pendulum_agent(seed: int = 0):
    torch.manual_seed(seed)
    return gaussian_agent("Pendulum-v1", 3, 1, np.array([-2.0]), np.array([2.0]), [8, 8])


def test_a_cache_is_reused_for_its_victim_and_retrained_for_another(tmp_path, monkeypatch):
    monkeypatch.setattr(learned.SARLAttack, "steps", 2048)  # one PPO iteration of the defaults
    trained = {"iterations": 0}
    real_step = PPOLearner.step

    def counting_step(self):
        trained["iterations"] += 1
        return real_step(self)

    monkeypatch.setattr(PPOLearner, "step", counting_step)

    def prepare(agent):
        attack = make_attack("sarl")
        attack.cache_dir = tmp_path
        attack.prepare(agent, 0.1)
        return attack

    victim = pendulum_agent()
    first = prepare(victim)
    assert trained["iterations"] == 1
    record = json.loads((tmp_path / "sarl-eps0.1" / FINGERPRINT_FILE).read_text())
    assert record["victim"] == victim_fingerprint(victim)
    again = prepare(victim)
    assert trained["iterations"] == 1  # reused, not retrained
    obs = torch.randn(5, 3)
    np.testing.assert_array_equal(first.adversary_actions(obs), again.adversary_actions(obs))

    with torch.no_grad():  # the same architecture, other weights: a stale cache
        victim.actor.mean_net.layers[0].weight.add_(0.01)
    prepare(victim)
    assert trained["iterations"] == 2
    victim.obs_normalizer.rms.mean += 0.5  # the normaliser is part of the victim too
    prepare(victim)
    assert trained["iterations"] == 3
    monkeypatch.setattr(learned.SARLAttack, "steps", 4096)  # another budget: retrained
    prepare(victim)
    assert trained["iterations"] == 5
    prepare(victim)
    assert trained["iterations"] == 5


def test_an_interrupted_training_leaves_no_valid_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(learned.SARLAttack, "steps", 2048)
    victim = pendulum_agent()
    attack = make_attack("sarl")
    attack.cache_dir = tmp_path
    attack.prepare(victim, 0.1)
    with torch.no_grad():
        victim.actor.mean_net.layers[0].weight.add_(0.01)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(PPOLearner, "step", interrupted)
    stale = make_attack("sarl")
    stale.cache_dir = tmp_path
    with pytest.raises(KeyboardInterrupt):
        stale.prepare(victim, 0.1)
    assert not (tmp_path / "sarl-eps0.1" / FINGERPRINT_FILE).exists()


def test_recipes_fingerprint_what_is_learned_not_how_the_run_is_watched():
    base = task_ppo_config("Hopper-v5")
    watched = task_ppo_config("Hopper-v5", overrides={"eval_every": 5000, "eval_episodes": 3,
                                                       "keep_best": True, "select_episodes": 5})
    assert config_fingerprint(recipe_record(watched)) == config_fingerprint(recipe_record(base))
    changed = task_ppo_config("Hopper-v5", overrides={"policy_lr": 1e-3})
    assert config_fingerprint(recipe_record(changed)) != config_fingerprint(recipe_record(base))
    # The records made before evaluation settings existed (zoo/*/attacks) stay valid.
    assert set(recipe_record(base)["run"]) == {"checkpoint_every", "keep_checkpoints",
                                              "vector_mode", "torch_threads"}


def test_a_learned_attack_is_not_prepared_while_another_process_holds_its_cache(
        tmp_path, monkeypatch):
    from robustpo.errors import BusyError
    from robustpo.evaluation.episodes import run_episodes
    from robustpo.io.locks import exclusive

    prepared = []
    monkeypatch.setattr(learned.SARLAttack, "prepare",
                        lambda self, agent, eps: prepared.append(eps))
    agent = pendulum_agent()
    attack = make_attack("sarl")
    attack.cache_dir = tmp_path
    with exclusive(tmp_path / f"{attack.cache_name}-eps0.1.lock", "test"):
        with pytest.raises(BusyError, match="in use by another robustpo process"):
            run_episodes(agent, attack, 0.1, episodes=1)
        assert prepared == []
        # another eps is another cache, and an attack that learns nothing takes no lock
        with pytest.raises(RuntimeError):  # prepare was replaced, so perturb has no model
            run_episodes(agent, attack, 0.2, episodes=1)
        assert prepared == [0.2]
        noise = make_attack("random")
        noise.cache_dir = tmp_path
        assert run_episodes(agent, noise, 0.1, episodes=1).stats.mean < 0
    with pytest.raises(RuntimeError):  # released: prepared at eps 0.1 now
        run_episodes(agent, attack, 0.1, episodes=1)
    assert prepared == [0.2, 0.1]
