"""PPO training throughput: robustpo vs Stable-Baselines3 on Hopper-v5, measured in one run.

Both learners use the same PPO work per update: 2048 samples, 10 epochs of 32 minibatches
(64 samples), policy and value MLPs 64-64 tanh, Adam. robustpo runs its Hopper-v5 preset
(8 environments x 256 steps) with its default environment backend (two threads) and, if
envpool is installed, with ``vector_mode=envpool``; Stable-Baselines3 runs twice, with its
usual single environment (1 x 2048) and with 8 DummyVecEnv environments (8 x 256), and the
ratio is reported against each. Timings alternate between learners, after a warm-up, and
the median of the repeats is kept, since this machine's speed drifts.

    python benchmarks/ppo_throughput.py [--iterations 5] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import warnings

import torch

warnings.filterwarnings("ignore")


def robustpo_rate(iterations: int, vector_mode: str = "thread", algo: str = "ppo") -> float:
    """Env-steps/s of robustpo's ``algo`` preset on Hopper-v5. Methods with an eps ramp run at
    their full eps from the first iteration, so the inner solver's cost is all counted."""
    from dataclasses import fields

    from robustpo.adversaries.base import method_class
    from robustpo.learners.ppo import PPOLearner
    from robustpo.training.presets import resolve_config

    overrides: dict[str, object] = {"vector_mode": vector_mode}
    if "eps_ramp" in {f.name for f in fields(method_class(algo).config_class)}:
        overrides["eps_ramp"] = 0.0
    cfg = resolve_config(algo, "Hopper-v5", overrides=overrides)
    learner = PPOLearner(cfg)
    learner.step()  # warm-up
    start, steps = time.perf_counter(), learner.global_step
    for _ in range(iterations):
        learner.step()
    rate = (learner.global_step - steps) / (time.perf_counter() - start)
    learner.close()
    return rate


def sb3_rate(iterations: int, n_envs: int) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("Hopper-v5", n_envs=n_envs, seed=0)
    model = PPO(
        "MlpPolicy", env, n_steps=2048 // n_envs, batch_size=64, n_epochs=10, learning_rate=3e-4,
        device="cpu", verbose=0, seed=0,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]},
                       "activation_fn": torch.nn.Tanh},
    )
    model.learn(2048)  # warm-up
    start = time.perf_counter()
    model.learn(iterations * 2048, reset_num_timesteps=False)
    rate = iterations * 2048 / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5, help="timed PPO iterations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (both learners)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs: dict[str, list[float]] = {"robustpo": [], "sb3 (1 env)": [], "sb3 (8 envs)": []}
    if importlib.util.find_spec("envpool"):
        runs["robustpo envpool"] = []
    for r in range(args.repeats):
        runs["robustpo"].append(robustpo_rate(args.iterations))
        if "robustpo envpool" in runs:
            runs["robustpo envpool"].append(robustpo_rate(args.iterations, "envpool"))
        torch.set_num_threads(args.threads)  # PPOLearner sets its own; restore for SB3
        runs["sb3 (1 env)"].append(sb3_rate(args.iterations, 1))
        runs["sb3 (8 envs)"].append(sb3_rate(args.iterations, 8))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nHopper-v5 PPO training throughput, env-steps/s, median of {args.repeats} "
          f"({args.iterations} iterations x 2048 steps each, {args.threads} torch thread(s)):")
    for k, v in med.items():
        print(f"  {k:17s} {v:8,.0f}")
    for ours in [k for k in med if k.startswith("robustpo")]:
        for peer in ("sb3 (1 env)", "sb3 (8 envs)"):
            print(f"  ratio {ours} / {peer}: {med[ours] / med[peer]:.2f}x")


if __name__ == "__main__":
    main()
