"""Would training several TD3 seeds as one batched network be cheaper per seed? Times the
critic update's core (forward and backward of 256-256 ReLU twin critics, batch 256, Hopper-v5's
sizes, one thread) for one seed's two critics and for ``--seeds`` seeds' critics stacked as one
batched network (one ``baddbmm`` per layer, as :class:`robustpo.core.nets.TwinQ`), alternating,
and prints the cost per seed of the stacked network against one seed alone.

    python benchmarks/td3_seed_batching.py [--seeds 3] [--steps 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

BATCH, HIDDEN, IN = 256, 256, 14  # Hopper-v5: 11 observation + 3 action inputs


def critic_step_ms(members: int, steps: int) -> float:
    """Milliseconds per forward and backward pass of ``members`` stacked ReLU critics."""
    sizes = [IN, HIDDEN, HIDDEN, 1]
    weights = [(torch.randn(members, i, o) / i ** 0.5).requires_grad_(True)
               for i, o in itertools.pairwise(sizes)]
    biases = [torch.zeros(members, 1, o, requires_grad=True) for o in sizes[1:]]
    x = torch.randn(members, BATCH, IN)

    def step() -> None:
        h = x
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < len(weights) - 1:
                h = torch.relu(h)
        torch.autograd.grad(h.square().mean(), weights + biases)

    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    one, stacked = [], []
    for r in range(args.repeats):
        one.append(critic_step_ms(2, args.steps))
        stacked.append(critic_step_ms(2 * args.seeds, args.steps) / args.seeds)
        print(f"repeat {r + 1}: one seed {one[-1]:.2f} ms, stacked {stacked[-1]:.2f} ms per seed",
              flush=True)
    a, b = statistics.median(one), statistics.median(stacked)
    print(f"median per seed: one seed alone {a:.2f} ms, {args.seeds} seeds stacked {b:.2f} ms; "
          f"stacked / alone {b / a:.2f}x")


if __name__ == "__main__":
    main()
