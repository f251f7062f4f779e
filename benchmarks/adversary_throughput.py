"""Learned-attack training throughput: the SA-RL and PA-AD adversaries' PPO on the zoo's PPO
Hopper-v5 victim, against robustpo's plain PPO on Hopper-v5 with the same recipe, measured in
one run.

An adversary's environment step is a task step plus the victim's forward pass (and, for PA-AD,
the gradient actor's FGSM step through the victim); the adversary environment batches both
over its copies. The ratio to plain PPO is what the attack protocol's budgets cost beyond
training an agent. Timings alternate between the three after a warm-up iteration; medians of
the repeats.

    python benchmarks/adversary_throughput.py [--iterations 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from robustpo.agents.agent import load_agent
from robustpo.attacks.learned import AdversaryVectorEnv, DirectorVectorEnv
from robustpo.learners.ppo import PPOLearner
from robustpo.training.presets import task_ppo_config

ZOO = Path(__file__).resolve().parents[1] / "zoo" / "ppo-Hopper-v5"


def rate(env_class: type[AdversaryVectorEnv] | None, iterations: int) -> float:
    """Env-steps/s of the PPO learner on the adversary MDP (or on the task for None)."""
    cfg = task_ppo_config("Hopper-v5", total_steps=(iterations + 1) * 2048)
    victim = load_agent(ZOO)
    envs = None if env_class is None else env_class(victim, 0.075, cfg.ppo.num_envs)
    learner = PPOLearner(cfg, envs=envs)
    learner.step()  # warm-up
    start, steps = time.perf_counter(), learner.global_step
    for _ in range(iterations):
        learner.step()
    out = (learner.global_step - steps) / (time.perf_counter() - start)
    learner.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3, help="timed PPO iterations")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    kinds = {"plain ppo": None, "sarl adversary": AdversaryVectorEnv,
             "paad adversary": DirectorVectorEnv}
    runs: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.repeats):
        for name, env_class in kinds.items():
            runs[name].append(rate(env_class, args.iterations))
            torch.set_num_threads(1)
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items()),
              flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\nHopper-v5, env-steps/s, median of {args.repeats} ({args.iterations} iterations x "
          f"2048 steps each):")
    for k, v in med.items():
        print(f"  {k:15s} {v:8,.0f}")
    for k in ("sarl adversary", "paad adversary"):
        print(f"  ratio {k} / plain ppo: {med[k] / med['plain ppo']:.2f}x")


if __name__ == "__main__":
    main()
