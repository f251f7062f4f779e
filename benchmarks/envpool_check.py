"""Is envpool worth adopting as a vector backend? Parity with Gymnasium, and speed.

1. Parity: Hopper-v5 from the same (noise-free) initial state, stepped with the same random
   actions, in envpool and in Gymnasium: largest observation and reward differences.
2. Speed: env-steps/s of 8 Hopper-v5 copies with random actions: envpool (1 and 2 threads)
   against robustpo's ThreadedVectorEnv and Gymnasium's SyncVectorEnv, median of repeats.

envpool is not a robustpo dependency; run this in an environment that has it:

    pip install envpool && python benchmarks/envpool_check.py
"""

from __future__ import annotations

import statistics
import time

import gymnasium as gym
import numpy as np

STEPS = 4096


def parity(steps: int = 300) -> tuple[float, float, int]:
    import envpool

    pool = envpool.make("Hopper-v5", env_type="gymnasium", num_envs=1, seed=0,
                        reset_noise_scale=0.0)
    pool.reset()
    env = gym.make("Hopper-v5", reset_noise_scale=0.0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    obs_diff = rew_diff = 0.0
    for t in range(steps):
        action = rng.uniform(-1, 1, 3)
        o1, r1, term1, _, _ = pool.step(action[None])
        o2, r2, term2, _, _ = env.step(action)
        obs_diff = max(obs_diff, float(np.abs(o1[0] - o2).max()))
        rew_diff = max(rew_diff, abs(float(r1[0]) - r2))
        if term1[0] or term2:
            assert term1[0] == term2, "episodes ended at different steps"
            return obs_diff, rew_diff, t + 1
    return obs_diff, rew_diff, steps


def rate_envpool(threads: int, n: int = 8) -> float:
    import envpool

    pool = envpool.make("Hopper-v5", env_type="gymnasium", num_envs=n, num_threads=threads,
                        seed=0)
    pool.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS // n, n, 3))
    start = time.perf_counter()
    for a in actions:
        pool.step(a)
    return STEPS / (time.perf_counter() - start)


def rate_vector(mode: str, n: int = 8) -> float:
    from robustpo.core.envs import make_vector_env

    env = make_vector_env("Hopper-v5", n, mode)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS // n, n, 3))
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    rate = STEPS / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    obs_diff, rew_diff, steps = parity()
    print(f"parity over {steps} steps: max |obs diff| {obs_diff:.2e}, max |reward diff| "
          f"{rew_diff:.2e}")
    runs: dict[str, list[float]] = {k: [] for k in (
        "envpool 1 thread", "envpool 2 threads", "robustpo thread", "gymnasium sync")}
    for _ in range(5):
        runs["envpool 1 thread"].append(rate_envpool(1))
        runs["envpool 2 threads"].append(rate_envpool(2))
        runs["robustpo thread"].append(rate_vector("thread"))
        runs["gymnasium sync"].append(rate_vector("sync"))
    base = statistics.median(runs["robustpo thread"])
    print("8 x Hopper-v5, random actions, env-steps/s (median of 5):")
    for k, v in runs.items():
        med = statistics.median(v)
        print(f"  {k:18s} {med:8,.0f}  ({med / base:.2f}x robustpo thread)")


if __name__ == "__main__":
    main()
