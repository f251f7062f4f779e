"""Natural and worst-case returns of many agents, grouped by method: the table of robust-RL papers.

Each agent is a run directory holding the ``attack.json`` that ``robustpo attack RUN --attacks
all`` writes. Agents are grouped by method (algorithm plus whether SPO guidance is on) and
environment; the *median agent* of a group is the one with the median worst-case return (the
lower median for an even count), as in SA-PPO (Zhang et al., 2020, section 6) and the BARPO
paper, which report the agent of median robustness out of many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .config import PPOConfig
from .errors import CheckpointError
from .rundir import read_run_config

DEFAULT_LAYOUT = (PPOConfig.num_envs, PPOConfig.rollout_steps)
METHOD_NAMES = {"ppo": "PPO", "sappo": "SA-PPO", "carppo": "CAR-PPO", "barppo": "BAR-PPO"}


@dataclass(frozen=True)
class AgentRow:
    """One agent's suite result. Returns are undiscounted episode returns (mean over episodes).

    Attributes:
        run: the run directory.
        method: display name, e.g. ``"BAR-PPO"``, ``"CAR-PPO (no guidance)"``.
        env: Gymnasium id.
        seed: training seed.
        eps: l_inf attack radius on normalised observations.
        natural: mean return without attack.
        attacks: mean return under each attack, in suite order.
    """

    run: Path
    method: str
    env: str
    seed: int
    eps: float
    natural: float
    attacks: dict[str, float]

    @property
    def worst(self) -> tuple[str, float]:
        """``(attack, mean return)`` of the strongest attack."""
        name = min(self.attacks, key=self.attacks.__getitem__)
        return name, self.attacks[name]

    @property
    def drop(self) -> float:
        """(worst - natural) / |natural|, the relative loss under the strongest attack."""
        return (self.worst[1] - self.natural) / abs(self.natural)


def method_name(config: dict) -> str:
    """Display name of a run's method. CAR-PPO and BAR-PPO with ``kappa == 0`` are marked as
    having no SPO guidance (CAR-PPO then is ARPO of the BARPO paper); BAR-PPO otherwise shows
    its kappa, so that agents of a kappa search fall in separate groups. A robust surrogate
    whose log-std gradient is taken at clean states (``robust_std_grad: clean``) adds
    "clean-std". A rollout layout other than the default 8 environments x 256 steps (e.g. the
    reference code bases' 1 x 2048) is named too, so that such agents get their own median."""
    algo = str(config["algo"])
    name = METHOD_NAMES.get(algo, algo)
    kappa = float(config.get("kappa", 1.0))
    tags = []
    if algo in ("carppo", "barppo") and kappa == 0.0:
        tags.append("no guidance")
    elif algo == "barppo":
        tags.append(f"kappa {kappa:g}")
    if algo in ("carppo", "barppo") and config.get("robust_std_grad") == "clean":
        tags.append("clean-std")
    layout = (int(config.get("num_envs", DEFAULT_LAYOUT[0])),
              int(config.get("rollout_steps", DEFAULT_LAYOUT[1])))
    if layout != DEFAULT_LAYOUT:
        tags.append(f"{layout[0]} env x {layout[1]}")
    return name + (f" ({', '.join(tags)})" if tags else "")


def read_agent(run_dir: Path) -> AgentRow:
    """Read ``run_dir/config.yaml`` and ``run_dir/attack.json``.

    Raises:
        CheckpointError: the directory is not a run, has no suite result yet, or the result
            is not the JSON ``robustpo attack`` writes.
    """
    config = read_run_config(run_dir)
    path = run_dir / "attack.json"
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir} has no attack.json: evaluate it first with "
            f"`robustpo attack {run_dir} --attacks all`.")
    try:
        data = json.loads(path.read_text())
        attacks = {name: float(r["mean"]) for name, r in data["attacks"].items()}
        natural, eps = float(data["natural"]["mean"]), float(data["eps"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a robustpo attack result ({exc!r}); rerun `robustpo attack "
            f"{run_dir} --attacks all`.") from None
    if not attacks:
        raise CheckpointError(f"{path} holds no attack; rerun with `--attacks all`.")
    return AgentRow(run_dir, method_name(config), str(config["env"]), int(config["seed"]),
                    eps, natural, attacks)


def median_agent(rows: list[AgentRow]) -> AgentRow:
    """The agent with the median worst-case return (the lower median for an even count)."""
    ranked = sorted(rows, key=lambda r: (r.worst[1], r.seed))
    return ranked[(len(ranked) - 1) // 2]


def group(rows: list[AgentRow]) -> dict[tuple[str, str], list[AgentRow]]:
    """Rows by ``(env, method)``, in first-seen order, each group sorted by seed."""
    groups: dict[tuple[str, str], list[AgentRow]] = {}
    for row in rows:
        groups.setdefault((row.env, row.method), []).append(row)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in groups.items()}


def markdown_table(rows: list[AgentRow]) -> str:
    """A markdown table: one line per agent, grouped by environment and method, the median
    agent of each group in bold; columns natural, each attack, worst, (worst - natural) /
    natural."""
    attacks = list(dict.fromkeys(a for r in rows for a in r.attacks))
    head = ["env", "method", "seed", "natural", *attacks, "worst", "(worst - natural) / natural"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (env, method), members in group(rows).items():
        median = median_agent(members)
        for r in members:
            mark = "**" if r is median and len(members) > 1 else ""
            cells = [env, method, f"{r.seed}{' (median)' if mark else ''}",
                     f"{r.natural:.1f}",
                     *(f"{r.attacks[a]:.1f}" if a in r.attacks else "–" for a in attacks),
                     f"{mark}{r.worst[1]:.1f}{mark} ({r.worst[0]})", f"{r.drop:+.1%}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
