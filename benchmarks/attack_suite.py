"""Wall time of the full attack-suite evaluation of one agent, learned attackers included.

Runs ``robustpo attack``'s suite (every registered attack at the agent's eps, 50 episodes
each by default) with an empty model cache, so the learned attacks train at the protocol's
budgets (``--protocol paper``: their scans); prints the time of each attack and the total,
and the table.

    python benchmarks/attack_suite.py [RUN_DIR] [--episodes 50] [--protocol quick|paper]
                                      [--cache EMPTY_DIR] [--json OUT.json]

``--cache`` keeps the trained attack models (in a directory that must start empty, so that
the timing includes their training); ``--json`` writes the results with each learned attack's
scan (every candidate's screening return and training curve) and the times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from robustpo.agents.agent import load_agent
from robustpo.attacks import make_attack
from robustpo.results.suite import evaluate, resolve_attack_names
from robustpo.results.tables import print_results, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="zoo/ppo-Hopper-v5", type=Path)
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--protocol", choices=["quick", "paper"], default="quick",
                        help="the learned attacks' budgets and search")
    parser.add_argument("--cache", type=Path, default=None,
                        help="empty directory to keep the trained attack models in")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    if args.cache is not None and args.cache.exists() and any(args.cache.iterdir()):
        parser.error(f"--cache {args.cache} is not empty; the timing needs untrained attackers")
    torch.set_num_threads(1)  # as `robustpo attack` does
    agent = load_agent(args.run_dir)
    eps = agent.attack_eps
    start = time.perf_counter()
    results, times = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        for name in ["none", *resolve_attack_names("all")]:
            t0 = time.perf_counter()
            attack = make_attack(name, protocol=args.protocol)
            attack.cache_dir = Path(cache)
            results.append(evaluate(agent, args.episodes, attack, 0.0 if name == "none" else eps))
            times[name] = time.perf_counter() - t0
            print(f"{name:8s} {times[name]:7.1f} s   mean return {results[-1].stats.mean:8.1f}",
                  flush=True)
    total = time.perf_counter() - start
    print_results(results, f"{agent.env_id}, eps {eps:g}, {args.episodes} episodes per row")
    worst = min(results[1:], key=lambda r: r.stats.mean)
    print(f"worst: {worst.attack} {worst.stats.mean:.1f}")
    print(f"total wall time of the suite: {total / 60:.1f} min")
    if args.json is not None:
        write_json(results, args.json, {"run": str(args.run_dir), "protocol": args.protocol,
                                        "seconds": {**times, "total": total}})


if __name__ == "__main__":
    main()
