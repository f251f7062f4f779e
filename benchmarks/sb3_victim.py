"""Train the Stable-Baselines3 PPO Hopper-v5 victim used in docs/results.md ("victims from
elsewhere"), then attack it with robustpo's suite through the SB3 adapter.

Stable-Baselines3's PPO with its defaults for MuJoCo-style tasks: MlpPolicy (64-64 tanh,
separate policy and value networks), 2048 steps per update, 10 epochs of 64-sample minibatches,
learning rate 3e-4, VecNormalize on observations and rewards (clip 10).

    python benchmarks/sb3_victim.py [--steps 500000] [--out zoo/sb3-ppo-Hopper-v5]
    robustpo attack --sb3 zoo/sb3-ppo-Hopper-v5/model.zip --env Hopper-v5 \\
        --vecnormalize zoo/sb3-ppo-Hopper-v5/vecnormalize.pkl --eps 0.075
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("zoo/sb3-ppo-Hopper-v5"))
    args = parser.parse_args()
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Hopper-v5")]), clip_obs=10.0)
    model = PPO("MlpPolicy", venv, n_steps=2048, batch_size=64, n_epochs=10, learning_rate=3e-4,
                seed=args.seed, device="cpu", verbose=0)
    model.learn(args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "model.zip")
    venv.save(str(args.out / "vecnormalize.pkl"))
    print(f"saved {args.out / 'model.zip'} and {args.out / 'vecnormalize.pkl'}")


if __name__ == "__main__":
    main()
