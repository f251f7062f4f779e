import numpy as np
import pytest

from robustpo.core.envs import make_env, make_vector_env
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
