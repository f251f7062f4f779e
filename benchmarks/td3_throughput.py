"""TD3 training throughput: robustpo's TD3 learner against Stable-Baselines3's TD3 on Hopper-v5
with identical hyperparameters (256-256 ReLU actor and critics, batch 256, Adam 3e-4, tau
0.005, policy delay 2, exploration noise 0.1 and smoothing noise 0.2 clipped at 0.5 in
fractions of the half-range, one gradient step per environment step), measured in one run.

Each measurement fills the buffer with ``--warmup`` random steps (untimed), then times
``--steps`` environment steps with their gradient steps. The two alternate, ``--repeats``
times, at each torch thread count of ``--threads``; medians are printed with their ratio.
``--bfloat16`` adds robustpo with bf16 hidden-to-hidden products (``hidden_dtype=bfloat16``),
timed in the same alternation.

    python benchmarks/td3_throughput.py [--steps 2000] [--warmup 1000] [--repeats 3]
                                        [--threads 1 2] [--bfloat16]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from robustpo.learners.td3 import TD3Learner
from robustpo.training.presets import resolve_config

ENV = "Hopper-v5"


def machine() -> str:
    """The CPU's model, torch's vector capability and whether the CPU multiplies bf16 natively
    (AVX512-BF16 or AMX; read from /proc/cpuinfo, unknown elsewhere): the ratios depend on
    all three, so every printout names them."""
    model, flags = platform.processor() or platform.machine(), None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines
                      if ln.startswith("model name")), model)
        flags = next((set(ln.split(":", 1)[1].split()) for ln in lines
                      if ln.startswith("flags")), set())
    native = "unknown" if flags is None else (
        "yes" if flags & {"avx512_bf16", "amx_bf16"} else "no")
    return (f"{model}; torch {torch.__version__}, capability "
            f"{torch.backends.cpu.get_cpu_capability()}; native bf16 products: {native}")


def robustpo_rate(steps: int, warmup: int, threads: int, algo: str = "td3",
                  overrides: dict | None = None) -> float:
    """Env-steps/s of robustpo's TD3 learner running ``algo`` after ``warmup`` random steps."""
    cfg = resolve_config(algo, ENV, total_steps=warmup + steps + 1000, overrides={
        "learning_starts": warmup, "torch_threads": threads, **(overrides or {})})
    learner = TD3Learner(cfg)
    for _ in range(warmup):
        learner.collect()
    start = time.perf_counter()
    while learner.global_step < warmup + steps:
        learner.step()
    out = (learner.global_step - warmup) / (time.perf_counter() - start)
    learner.close()
    return out


def sb3_rate(steps: int, warmup: int, threads: int) -> float:
    """Env-steps/s of Stable-Baselines3's TD3 after ``warmup`` random steps."""
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    torch.set_num_threads(threads)
    env = gym.make(ENV)
    n = env.action_space.shape[0]
    # SB3 acts and adds its noises in the action space scaled to [-1, 1]: fractions of the
    # half-range, as robustpo's.
    model = TD3("MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000,
                learning_starts=warmup, batch_size=256, tau=0.005, gamma=0.99, train_freq=1,
                gradient_steps=1, action_noise=NormalActionNoise(np.zeros(n), 0.1 * np.ones(n)),
                policy_delay=2, target_policy_noise=0.2, target_noise_clip=0.5,
                policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu")
    model.learn(warmup)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="timed environment steps")
    parser.add_argument("--warmup", type=int, default=1000, help="random steps before them")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bfloat16", action="store_true",
                        help="also time robustpo with bf16 hidden-to-hidden products")
    args = parser.parse_args()
    print(machine(), flush=True)
    contestants = {"robustpo": lambda t: robustpo_rate(args.steps, args.warmup, t)}
    if args.bfloat16:
        contestants["robustpo bf16"] = lambda t: robustpo_rate(
            args.steps, args.warmup, t, overrides={"hidden_dtype": "bfloat16"})
    contestants["sb3"] = lambda t: sb3_rate(args.steps, args.warmup, t)
    for threads in args.threads:
        runs: dict[str, list[float]] = {name: [] for name in contestants}
        for r in range(args.repeats):
            for name, rate in contestants.items():
                runs[name].append(rate(threads))
            print(f"threads {threads}, repeat {r + 1}: " + ", ".join(
                f"{name} {rates[-1]:.0f}" for name, rates in runs.items()) + " env-steps/s",
                flush=True)
        medians = {name: statistics.median(rates) for name, rates in runs.items()}
        print(f"threads {threads}: median env-steps/s " + ", ".join(
            f"{name} {rate:.0f}" for name, rate in medians.items()) + "; against "
            "Stable-Baselines3: " + ", ".join(
                f"{name} {rate / medians['sb3']:.2f}x" for name, rate in medians.items()
                if name != "sb3"), flush=True)


if __name__ == "__main__":
    main()
