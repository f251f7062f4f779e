"""OA-TD3's training cost against TD3's: robustpo's TD3 learner with and without the OA critic
on Hopper-v5 (the same recipe, 256-256 networks, batch 256), measured in one run, at each PGD
step count K of ``--pgd-steps`` (the OA target's inner minimisation is the added cost); with
``--ppo-iterations N``, also OA-PPO's against PPO's (their Hopper-v5 presets, N timed
iterations of 2048 steps after one untimed, alternating in the same way). ``--hidden-dtype
bfloat16`` times TD3 and OA-TD3 both with bf16 hidden-to-hidden products.

Each measurement fills the buffer with ``--warmup`` random steps (untimed), then times
``--steps`` environment steps with their gradient steps; the methods alternate, ``--repeats``
times. Printed: each method's median env-steps/s and its wall time per environment step
relative to TD3, as the median over repeats of the ratio within each repeat (TD3 and OA-TD3
measured back to back, which cancels most drift of a shared machine's load).

    python benchmarks/oa_throughput.py [--steps 1000] [--warmup 1000] [--repeats 3]
                                       [--pgd-steps 5 10 20] [--threads 1]
                                       [--ppo-iterations 0] [--hidden-dtype float32]
"""

from __future__ import annotations

import argparse
import statistics

import ppo_throughput  # benchmarks/ is this script's path
from td3_throughput import machine, robustpo_rate


def rate(algo: str, steps: int, warmup: int, threads: int, pgd_steps: int = 10,
         hidden_dtype: str = "float32") -> float:
    """Env-steps/s of ``algo`` after ``warmup`` random steps."""
    overrides = {"pgd_steps": pgd_steps} if algo == "oa-td3" else {}
    return robustpo_rate(steps, warmup, threads, algo, {**overrides, "hidden_dtype": hidden_dtype})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="timed environment steps")
    parser.add_argument("--warmup", type=int, default=1000, help="random steps before them")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pgd-steps", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ppo-iterations", type=int, default=0,
                        help="timed PPO iterations for OA-PPO against PPO (0: skip)")
    parser.add_argument("--hidden-dtype", default="float32", choices=["float32", "bfloat16"],
                        help="dtype of TD3's and OA-TD3's hidden-to-hidden products")
    args = parser.parse_args()
    print(machine(), flush=True)
    measures = {"td3": lambda: rate("td3", args.steps, args.warmup, args.threads,
                                    hidden_dtype=args.hidden_dtype)}
    for k in args.pgd_steps:
        measures[f"oa-td3 K={k}"] = lambda k=k: rate("oa-td3", args.steps, args.warmup,
                                                     args.threads, k, args.hidden_dtype)
    if args.ppo_iterations:
        for algo in ("ppo", "oa-ppo"):
            measures[algo] = lambda algo=algo: ppo_throughput.robustpo_rate(
                args.ppo_iterations, algo=algo)
    runs: dict[str, list[float]] = {k: [] for k in measures}
    for r in range(args.repeats):
        for name, measure in measures.items():
            runs[name].append(measure())
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items()),
              flush=True)
    for name, values in runs.items():
        base = "ppo" if "ppo" in name else "td3"
        ratios = [b / rate for b, rate in zip(runs[base], values, strict=True)]
        print(f"{name:12s} median {statistics.median(values):7.1f} env-steps/s, wall time per "
              f"step {statistics.median(ratios):.2f}x {base.upper()}'s (median of paired "
              f"repeats; range {min(ratios):.2f}-{max(ratios):.2f})", flush=True)


if __name__ == "__main__":
    main()
