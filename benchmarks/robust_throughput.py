"""Robust-training throughput: BAR-PPO, CAR-PPO and SA-PPO vs Stable-Baselines3 *plain* PPO on
Hopper-v5, measured in one run.

robustpo runs each method's Hopper-v5 preset at its full training eps (0.075) from the first
iteration: BAR-PPO with 10-step SGLD (max-KL inner problem), CAR-PPO with 10-step PGD
(min-surrogate), SA-PPO with 10-step SGLD (KL regulariser), every minibatch of every epoch.
The peer is Stable-Baselines3 PPO with the same PPO work (2048 samples, 10 epochs of 64-sample
minibatches, 64-64 tanh MLPs) and its usual single environment. Timings alternate between
learners after a warm-up; the median of the repeats is kept.

    python benchmarks/robust_throughput.py [--iterations 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics

import torch
from ppo_throughput import robustpo_rate, sb3_rate

METHODS = ("barppo", "carppo", "sappo", "ppo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5, help="timed PPO iterations")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {m: [] for m in METHODS}
    runs["sb3 ppo (1 env)"] = []
    for r in range(args.repeats):
        for method in METHODS:
            runs[method].append(robustpo_rate(args.iterations, algo=method))
        torch.set_num_threads(1)  # PPOLearner sets its own; restore for SB3
        runs["sb3 ppo (1 env)"].append(sb3_rate(args.iterations, 1))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nHopper-v5 training throughput, env-steps/s, median of {args.repeats} "
          f"({args.iterations} iterations x 2048 steps each):")
    for k, v in med.items():
        print(f"  {k:17s} {v:8,.0f}")
    for method in METHODS:
        print(f"  ratio {method} / sb3 plain ppo: {med[method] / med['sb3 ppo (1 env)']:.2f}x")


if __name__ == "__main__":
    main()
