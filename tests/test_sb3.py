"""Stable-Baselines3 victims: the adapter reproduces the model's actions and values, honours
VecNormalize, rejects mismatched or unreadable files, and the attack suite lowers the return."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import robustpo
import robustpo.attacks.action
from robustpo.agents.sb3 import SB3ModelError, load_sb3_victim

SMALL = {"net_arch": [16, 16]}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("sb3")
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Hopper-v5")]), clip_obs=5.0)
    ppo = PPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0,
              policy_kwargs=dict(SMALL))
    ppo.learn(128)
    ppo.save(d / "ppo")
    venv.save(d / "vecnormalize.pkl")
    sac = SAC("MlpPolicy", "Hopper-v5", learning_starts=16, buffer_size=500, seed=0,
              policy_kwargs=dict(SMALL))
    sac.learn(32)
    sac.save(d / "sac")
    td3 = TD3("MlpPolicy", "Hopper-v5", learning_starts=16, buffer_size=500, seed=0,
              policy_kwargs=dict(SMALL))
    td3.learn(32)
    td3.save(d / "td3")
    return d, venv


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_adapter_reproduces_the_models_actions(models, algo):
    d, venv = models
    vn = d / "vecnormalize.pkl" if algo == "ppo" else None
    victim = load_sb3_victim(d / f"{algo}.zip", "Hopper-v5", vn)
    model = {"ppo": PPO, "sac": SAC, "td3": TD3}[algo].load(d / f"{algo}.zip")
    raw = np.random.default_rng(0).normal(scale=2.0, size=(7, 11))
    model_input = venv.normalize_obs(raw) if vn else raw
    expected, _ = model.predict(model_input, deterministic=True)
    np.testing.assert_allclose(victim.act(raw), expected, atol=1e-6)
    assert victim.critic(victim.normalize(raw)).shape == (7,)
    if algo == "ppo":  # eps applies to VecNormalize's clipped normalised observation
        np.testing.assert_allclose(victim.normalize(raw).numpy(), model_input, atol=1e-5)
        with torch.no_grad():
            values = model.policy.predict_values(torch.as_tensor(model_input).float())
        torch.testing.assert_close(victim.critic(victim.normalize(raw)), values.squeeze(-1))


def test_mismatched_and_unreadable_files_get_clear_errors(models, tmp_path):
    d, _ = models
    with pytest.raises(SB3ModelError, match=r"takes observations of shape \(11,\), but "
                                            r"Walker2d-v5 gives \(17,\)"):
        load_sb3_victim(d / "ppo.zip", "Walker2d-v5")
    wider = tmp_path / "wider.zip"  # the same model claiming actions in [-2, 2]
    with zipfile.ZipFile(d / "ppo.zip") as src, zipfile.ZipFile(wider, "w") as dst:
        for item in src.namelist():
            content = src.read(item)
            if item == "data":
                data = json.loads(content)
                data["action_space"]["low"], data["action_space"]["high"] = "[-2 -2 -2]", "[2 2 2]"
                content = json.dumps(data).encode()
            dst.writestr(item, content)
    with pytest.raises(SB3ModelError, match=r"acts in a Box of shape \(3,\) and bounds \[-2"):
        load_sb3_victim(wider, "Hopper-v5")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(SB3ModelError, match="not a readable Stable-Baselines3 model"):
        load_sb3_victim(junk, "Hopper-v5")
    with pytest.raises(SB3ModelError, match="not a readable VecNormalize"):
        load_sb3_victim(d / "ppo.zip", "Hopper-v5", d / "sac.zip")
    result = subprocess.run([sys.executable, "-m", "robustpo", "attack", "--sb3",
                             str(d / "ppo.zip"), "--env", "Walker2d-v5"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "Walker2d-v5 gives" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sb3-ppo-InvertedPendulum-v5.zip"


def test_attacks_lower_an_sb3_models_return():
    # A committed Stable-Baselines3 PPO model (32-32 MLP, 16k steps on InvertedPendulum-v5), so
    # that no figure depends on how a CPU trains it. Measured when it was made: natural and
    # random 1000 on every episode, MAD about 20-40; the margins are wide.
    victim = load_sb3_victim(FIXTURE, "InvertedPendulum-v5")
    natural = robustpo.evaluate(victim, 5, "none")
    rand = robustpo.evaluate(victim, 5, "random", 0.15)
    mad = robustpo.evaluate(victim, 5, "mad", 0.15)
    assert natural.stats.mean > 900 and rand.stats.mean > 900, (natural.stats, rand.stats)
    assert mad.stats.mean < rand.stats.mean - 400, (mad.stats.mean, rand.stats.mean)


@pytest.mark.parametrize("algo", [SAC, TD3])
def test_the_q_of_sac_and_td3_models_takes_actions_in_action_units(tmp_path, algo):
    # Pendulum's actions lie in [-2, 2]; Stable-Baselines3's critics take them rescaled to
    # [-1, 1]. min-q attacks these victims with their own Q1 (robustpo.attacks.action).
    model = algo("MlpPolicy", "Pendulum-v1", learning_starts=16, buffer_size=500, seed=0,
                 policy_kwargs=dict(SMALL))
    model.learn(32)
    model.save(tmp_path / "model")
    victim = load_sb3_victim(tmp_path / "model.zip", "Pendulum-v1")
    obs = torch.as_tensor(np.random.default_rng(1).normal(size=(5, 3)), dtype=torch.float32)
    actions = torch.tensor([[-2.0], [-1.0], [0.0], [1.5], [2.0]])
    with torch.no_grad():
        expected = model.critic(obs, actions / 2.0)[0].squeeze(-1)
        own = robustpo.attacks.action.own_q(victim)(obs, actions)
        torch.testing.assert_close(own, expected)
        mean = model.actor(obs, deterministic=True) if algo is SAC else model.actor(obs)
        torch.testing.assert_close(victim.critic(obs), model.critic(obs, mean)[0].squeeze(-1))
