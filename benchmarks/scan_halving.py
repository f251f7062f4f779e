"""Would successive halving have kept the plain scan's adversary? Replays a finished plain
paper-protocol scan (every configuration trained to the full budget) from its ``attack.json``.

A learned attack's candidates record their training curve: the victim's mean return over the
adversary's last 20 training episodes at the end of each eighth of the budget. Halving with
rungs (0.25, 0.5, 1.0) would have screened the configurations at a quarter and a half of the
budget and trained the better half on; this script ranks them at those points by the training
curve (the proxy available after the fact; a halving scan screens on 10 deterministic
episodes instead), and prints which configuration halving keeps, whether it is the plain
scan's, the screened return each would attack with, and the adversary steps each scan trains.

    python benchmarks/scan_halving.py RUN/attack.json|SUITE.json [--rungs 0.25 0.5 1.0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def replay(candidates: list[dict], rungs: list[float]) -> tuple[dict, float]:
    """The candidate halving keeps among ``candidates`` (first-seed, full-budget ones), and
    the budget it trains, in full-budget units."""
    alive, cost = list(candidates), 0.0
    done = 0.0
    for k, rung in enumerate(rungs):
        cost += len(alive) * (rung - done)
        done = rung
        if k == len(rungs) - 1:
            break
        point = max(1, round(rung * 8)) - 1  # the curve's entry at the end of this rung

        def at(c: dict, point: int = point) -> float:
            curve = c.get("training_curve") or []
            value = curve[point] if point < len(curve) else None
            return float("inf") if value is None else value

        ranked = sorted(alive, key=at)
        alive = ranked[: (len(ranked) + 1) // 2]
    return min(alive, key=lambda c: c["screen_mean"]), cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("attack_json", type=Path)
    parser.add_argument("--rungs", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args()
    data = json.loads(args.attack_json.read_text())
    # attack.json (`robustpo attack`) or the --json of benchmarks/attack_suite.py
    attacks = data["attacks"].items() if "attacks" in data else (
        (r["attack"], r) for r in data["results"])
    for name, result in attacks:
        details = result.get("details") or {}
        if "candidates" not in details or details.get("protocol") != "paper":
            continue
        first_seed = details["candidates"][0]["seed"]
        plain = [c for c in details["candidates"] if c["seed"] == first_seed]
        kept_plain = min(plain, key=lambda c: c["screen_mean"])
        kept, cost = replay(plain, args.rungs)
        same = kept["config"] == kept_plain["config"]
        print(f"{name}: plain scan keeps {kept_plain['config']} (screened "
              f"{kept_plain['screen_mean']:.1f}), {len(plain)} budgets; halving "
              f"{args.rungs} keeps {kept['config']} (screened {kept['screen_mean']:.1f}), "
              f"{cost:.2f} budgets; {'the same' if same else 'a different'} configuration")
        for c in sorted(plain, key=lambda c: c["screen_mean"]):
            curve = ", ".join("-" if v is None else f"{v:.0f}" for v in c["training_curve"])
            print(f"   {c['screen_mean']:8.1f}  {json.dumps(c['config'])}: curve {curve}")


if __name__ == "__main__":
    main()
