import numpy as np
import pytest

from robustpo.config import parse_set_options, resolve_config
from robustpo.envs import make_env, make_vector_env
from robustpo.errors import ConfigError, UnknownNameError


def test_threaded_vector_env_matches_gymnasium_sync():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(150, 3, 3))
    runs = []
    for mode in ("thread", "sync"):
        env = make_vector_env("Hopper-v5", 3, mode)
        obs, _ = env.reset(seed=7)
        trace, finals = [obs], []
        for a in actions:
            obs, reward, term, trunc, info = env.step(a)
            trace += [obs, reward, term, trunc]
            if "final_obs" in info:
                finals += [f for f, m in zip(info["final_obs"], info["_final_obs"]) if m]
        env.close()
        runs.append((trace, finals))
    (t1, f1), (t2, f2) = runs
    assert len(f1) > 0  # random actions make Hopper fall: episodes ended and reset
    assert all(np.array_equal(x, y) for x, y in zip(t1, t2))
    assert all(np.array_equal(x, y) for x, y in zip(f1, f2))


def test_presets_hold_reference_values():
    hopper = resolve_config("ppo", "Hopper-v5")
    assert (hopper.policy_lr, hopper.value_lr, hopper.attack_eps) == (3e-4, 2.5e-4, 0.075)
    assert hopper.batch_size == 2048 and hopper.iterations == 976 and not hopper.value_clip
    cheetah = resolve_config("ppo", "HalfCheetah-v5")
    assert (cheetah.policy_lr, cheetah.value_lr, cheetah.init_std) == (1e-4, 1e-3, 0.5)
    assert cheetah.entropy_coef == 1e-4 and cheetah.attack_eps == 0.15
    assert resolve_config("ppo", "Ant-v5").iterations == 4882


def test_overrides_are_typed_and_checked():
    cfg = resolve_config("ppo", "Hopper-v5", overrides=parse_set_options(
        ["policy_lr=1e-4", "hidden=[32, 32]", "value_clip=true", "max_grad_norm=0.5"]))
    assert cfg.policy_lr == 1e-4 and cfg.hidden == [32, 32] and cfg.value_clip
    with pytest.raises(ConfigError, match="'epochs' expects int"):
        resolve_config("ppo", "Hopper-v5", overrides={"epochs": "many"})
    with pytest.raises(ConfigError, match="not divisible by minibatches"):
        resolve_config("ppo", "Hopper-v5", overrides={"minibatches": 7})
    with pytest.raises(ConfigError, match="expects key=value"):
        parse_set_options(["policy_lr"])
    with pytest.raises(UnknownNameError, match="Unknown algorithm 'dqn'. Valid algorithms are"):
        resolve_config("dqn", "Hopper-v5")
    with pytest.raises(UnknownNameError, match="Unknown preset"):
        resolve_config("ppo", "Hopper-v5", preset="nonexistent")


def test_unknown_and_unsupported_environments():
    with pytest.raises(UnknownNameError, match="Unknown environment 'Hoper-v5'.*Hopper-v5"):
        make_env("Hoper-v5")
    with pytest.raises(ConfigError, match="continuous"):
        make_env("CartPole-v1")


def test_envpool_backend_follows_gymnasium_dynamics():
    envpool = pytest.importorskip("envpool")
    import gymnasium as gym

    pool = envpool.make("Hopper-v5", env_type="gymnasium", num_envs=1, seed=0,
                        reset_noise_scale=0.0)
    pool.reset()
    env = gym.make("Hopper-v5", reset_noise_scale=0.0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = rng.uniform(-1, 1, 3)
        obs_pool = pool.step(action[None])[0][0]
        obs_gym = env.step(action)[0]
        np.testing.assert_allclose(obs_pool, obs_gym, atol=1e-9)


def test_envpool_vector_env_resets_in_the_same_step():
    pytest.importorskip("envpool")
    env = make_vector_env("Hopper-v5", 3, "envpool")
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    ended_seen = False
    for _ in range(200):
        obs, reward, term, trunc, info = env.step(rng.uniform(-1, 1, (3, 3)))
        assert obs.shape == (3, 11) and reward.dtype == np.float64
        if (term | trunc).any():
            ended_seen = True
            mask = info["_final_obs"]
            for i in np.flatnonzero(mask):
                assert not np.array_equal(info["final_obs"][i], obs[i])  # a fresh episode
    assert ended_seen
    assert env.call("get_sim_state") == (None, None, None)
    env.close()
