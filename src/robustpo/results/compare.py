"""Natural and worst-case returns of many agents, grouped by method: the table of robust-RL papers.

Each agent is a run directory holding the ``attack.json`` that ``robustpo attack RUN --attacks
all`` writes. Agents are grouped by method (algorithm plus whether SPO guidance is on) and
environment; the *median agent* of a group is the one with the median worst-case return (the
lower median for an even count), as in SA-PPO (Zhang et al., 2020, section 6) and the BARPO
paper, which report the agent of median robustness out of many.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from ..adversaries.base import method_class
from ..attacks.base import OBSERVATION
from ..config.sections import PPOConfig, TrainConfig
from ..errors import CheckpointError, RobustpoError
from ..io.rundir import read_run_config
from ..training.presets import config_from_dict
from .convergence import QUICK, convergence_flags, worst_label
from .suite import RESULT_FILES

DEFAULT_LAYOUT = (PPOConfig().num_envs, PPOConfig().rollout_steps)
SB3_MODEL = "model.zip"  # a Stable-Baselines3 victim's directory holds this and no config
SB3_METHOD = "SB3 victim"


def is_sb3_victim(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a policy trained elsewhere (a Stable-Baselines3
    ``model.zip`` and no robustpo config) rather than a robustpo run."""
    return (run_dir / SB3_MODEL).is_file() and not (run_dir / "config.yaml").is_file()


@dataclass(frozen=True)
class AgentRow:
    """One agent's suite result. Returns are undiscounted episode returns (mean over episodes).

    Attributes:
        run: the run directory.
        method: display name, e.g. ``"BAR-PPO"``, ``"CAR-PPO (no guidance)"``.
        env: Gymnasium id.
        seed: training seed.
        eps: the attack radius (normalised observation units, or half-ranges of the action
            space for action attacks).
        natural: mean return without attack.
        attacks: mean return under each attack, in suite order.
        flags: learned attacks that did not converge, with the reason.
        protocol: the attack protocol (``quick``: the worst case is an upper bound).
    """

    run: Path
    method: str
    env: str
    seed: int
    eps: float
    natural: float
    attacks: dict[str, float]
    flags: dict[str, str] = field(default_factory=dict)
    protocol: str = QUICK

    @property
    def upper_bound(self) -> bool:
        """Whether the worst case only bounds the true one from above."""
        return bool(worst_label(self.protocol))

    def cell(self, attack: str, digits: int) -> str:
        """The mean return under ``attack``, ``†`` when it did not converge."""
        if attack not in self.attacks:
            return "–"
        return f"{self.attacks[attack]:.{digits}f}" + ("†" if attack in self.flags else "")

    def worst_cell(self, digits: int) -> str:
        """The worst case, ``≤`` when it is an upper bound."""
        return ("≤ " if self.upper_bound else "") + f"{self.worst[1]:.{digits}f}"

    @property
    def worst(self) -> tuple[str, float]:
        """``(attack, mean return)`` of the strongest attack."""
        name = min(self.attacks, key=self.attacks.__getitem__)
        return name, self.attacks[name]

    @property
    def drop(self) -> float:
        """(worst - natural) / |natural|, the relative loss under the strongest attack."""
        return (self.worst[1] - self.natural) / abs(self.natural)


def method_name(cfg: TrainConfig) -> str:
    """Display name of a run's method with its variant's tags (the method's
    ``variant_tags``: CAR-PPO and BAR-PPO with ``kappa == 0`` are marked as having no SPO
    guidance, CAR-PPO then being ARPO of the BARPO paper; BAR-PPO otherwise shows its kappa;
    ``robust_std_grad: clean`` adds "clean-std"). A rollout layout other than the default 8
    environments x 256 steps (e.g. the reference code bases' 1 x 2048) is named too, so that
    such agents get their own median."""
    method = method_class(cfg.algo)
    name, tags = method.display_name, method.variant_tags(cfg.method)
    layout = (cfg.ppo.num_envs, cfg.ppo.rollout_steps) if cfg.ppo is not None else DEFAULT_LAYOUT
    if layout != DEFAULT_LAYOUT:
        tags.append(f"{layout[0]} env x {layout[1]}")
    return name + (f" ({', '.join(tags)})" if tags else "")


def read_agent(run_dir: Path, target: str = OBSERVATION,
               result_file: str | None = None) -> AgentRow:
    """Read ``run_dir/config.yaml`` and the suite result of ``target``'s attacks
    (``attack.json`` for observation attacks, ``attack-action.json`` for action attacks, or
    ``result_file``, a file name inside ``run_dir`` such as ``attack-action-eps0.2.json`` for a
    suite written with ``--json`` at another eps). A directory holding a Stable-Baselines3
    ``model.zip`` and no config (a victim trained elsewhere, attacked with ``--sb3``) is the
    method "SB3 victim", seed 0.

    Raises:
        CheckpointError: the directory is not a run, has no suite result yet, or the result
            is not the JSON ``robustpo attack`` writes.
    """
    external = is_sb3_victim(run_dir)
    if not external:
        try:
            cfg = config_from_dict(read_run_config(run_dir), f"{run_dir}/config.yaml")
        except RobustpoError as exc:
            raise CheckpointError(f"{run_dir}/config.yaml cannot be read: {exc}") from None
    path = run_dir / (result_file or RESULT_FILES[target])
    command, where = f"robustpo attack {run_dir} --attacks all --target {target}", ""
    if result_file is not None:  # a suite written elsewhere, usually at another eps
        command += f" --eps EPS --json {path}"
        where = " (EPS: the radius that file is for)"
    if not path.is_file():
        raise CheckpointError(f"{run_dir} has no {path.name}: evaluate it first with "
                              f"`{command}`{where}.")
    try:
        data = json.loads(path.read_text())
        attacks = {name: float(r["mean"]) for name, r in data["attacks"].items()}
        ci_low = {name: float(r.get("ci95", [r["mean"]])[0])
                  for name, r in data["attacks"].items()}
        natural, eps = float(data["natural"]["mean"]), float(data["eps"])
        protocol = str(data.get("protocol", QUICK))
        disagree = {name for name, r in data["attacks"].items()
                    if r.get("details", {}).get("seeds_disagree")}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a robustpo attack result ({exc!r}); rerun `{command}`.") from None
    if not attacks:
        raise CheckpointError(f"{path} holds no attack; rerun `{command}`.")
    flags = convergence_flags(attacks, ci_low, disagree, target)
    if external:
        return AgentRow(run_dir, SB3_METHOD, str(data.get("env", "?")), 0, eps, natural,
                        attacks, flags, protocol)
    return AgentRow(run_dir, method_name(cfg), cfg.env, cfg.seed, eps, natural, attacks,
                    flags, protocol)


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


@dataclass(frozen=True)
class MethodSummary:
    """One method's agents on one environment, summarised as the papers compare methods.

    Attributes:
        env: Gymnasium id.
        method: display name (:func:`method_name`).
        agents: number of agents.
        natural: median over the agents of their mean natural return.
        median: the median agent (:func:`median_agent`); its worst case is the method's.
        baseline: the method the ratios are relative to (the environment's first method).
        natural_ratio: ``natural`` / the baseline's ``natural``.
        worst_ratio: the median agent's worst case / the baseline's median agent's.
    """

    env: str
    method: str
    agents: int
    natural: float
    median: AgentRow
    baseline: str
    natural_ratio: float
    worst_ratio: float


def summarise(rows: list[AgentRow]) -> list[MethodSummary]:
    """Per ``(env, method)`` group (:func:`group`): the median natural return and the median
    agent's worst case, each as a ratio to the environment's first method in ``rows``' order
    (e.g. ``compare PPO-runs OA-PPO-runs`` compares OA-PPO with PPO). A ratio is NaN when the
    baseline's value is 0."""
    out: list[MethodSummary] = []
    base: dict[str, tuple[str, float, float]] = {}
    for (env, method), members in group(rows).items():
        natural = statistics.median(r.natural for r in members)
        median = median_agent(members)
        base_method, base_natural, base_worst = base.setdefault(
            env, (method, natural, median.worst[1]))
        out.append(MethodSummary(env, method, len(members), natural, median, base_method,
                                 _ratio(natural, base_natural),
                                 _ratio(median.worst[1], base_worst)))
    return out


@dataclass(frozen=True)
class AttackStats:
    """One method's agents on one environment, column by column: the mean and the sample
    standard deviation over the agents of their mean returns, the form of the action-robustness
    papers' tables (Tessler et al. 2019; the OA-PI paper): methods as rows, the natural return
    and each attack as columns.

    Attributes:
        env: Gymnasium id.
        method: display name (:func:`method_name`).
        agents: number of agents.
        columns: ``"natural"``, each attack every agent was evaluated under, and ``"worst"``
            (each agent's worst case) -> ``(mean, std)``; std is NaN for a single agent.
        flagged: the attacks that did not converge on at least one of the agents.
        upper_bound: whether some agent's worst case is an upper bound (quick protocol).
    """

    env: str
    method: str
    agents: int
    columns: dict[str, tuple[float, float]]
    flagged: frozenset[str]
    upper_bound: bool


def per_attack(rows: list[AgentRow]) -> list[AttackStats]:
    """Per ``(env, method)`` group (:func:`group`), the mean and standard deviation over its
    agents of the natural return, of the return under each attack, and of the worst case. An
    attack missing from some agent's suite is left out of that group's columns rather than
    averaged over fewer agents."""
    attacks = _attack_columns(rows)
    out = []
    for (env, method), members in group(rows).items():
        values = {"natural": [r.natural for r in members]}
        values.update({a: [r.attacks[a] for r in members] for a in attacks
                       if all(a in r.attacks for r in members)})
        values["worst"] = [r.worst[1] for r in members]
        columns = {k: (statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else float("nan"))
                   for k, v in values.items()}
        out.append(AttackStats(env, method, len(members), columns,
                               frozenset(a for r in members for a in r.flags),
                               any(r.upper_bound for r in members)))
    return out


def _per_attack_cells(rows: list[AgentRow]) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of cells of :func:`per_attack`'s table: ``mean ± std`` (the
    mean alone for one agent), ``†`` on an attack that did not converge on some agent, ``≤`` on
    a worst case that is an upper bound for some agent, ``–`` where some agent lacks the
    attack."""
    head = ["natural", *_attack_columns(rows), "worst"]
    body = []
    for m in per_attack(rows):
        cells = [m.env, m.method, str(m.agents)]
        for col in head:
            if col not in m.columns:
                cells.append("–")
                continue
            mean, std = m.columns[col]
            cell = f"{mean:.1f}" + ("" if math.isnan(std) else f" ± {std:.1f}")
            cell = ("≤ " if col == "worst" and m.upper_bound else "") + cell
            cells.append(cell + ("†" if col in m.flagged else ""))
        body.append(cells)
    return ["env", "method", "agents", *head], body


def per_attack_markdown(rows: list[AgentRow]) -> list[str]:
    """The lines of :func:`per_attack` as a markdown table (cells as
    :func:`_per_attack_cells` writes them)."""
    head, body = _per_attack_cells(rows)
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *("| " + " | ".join(cells) + " |" for cells in body)]


def per_attack_table(rows: list[AgentRow]) -> Table:
    """:func:`per_attack_markdown`'s table for the terminal."""
    head, body = _per_attack_cells(rows)
    table = Table(title="Per method: mean ± standard deviation over the agents")
    for col in head:
        table.add_column(col, justify="left" if col in ("env", "method") else "right")
    for cells in body:
        table.add_row(*cells)
    return table


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else float("nan")


def _attack_columns(rows: list[AgentRow]) -> list[str]:
    return list(dict.fromkeys(a for r in rows for a in r.attacks))


def _rows_by_group(rows: list[AgentRow]) -> list[tuple[AgentRow, bool]]:
    """Every agent in table order with whether it is its group's median agent."""
    out = []
    for members in group(rows).values():
        median = median_agent(members)
        out += [(r, r is median and len(members) > 1) for r in members]
    return out


def legend(rows: list[AgentRow]) -> str:
    """What the marks of the tables mean, for those that occur in ``rows``."""
    notes = []
    if any(r.flags for r in rows):
        notes.append("† did not converge: a learned attack whose 95% CI lies above the best "
                     "non-learned attack's return, or whose two training seeds disagree")
    if any(r.upper_bound for r in rows):
        notes.append("≤ upper bound: worst case over learned attacks trained below the "
                     "field's budgets (quick protocol)")
    return "; ".join(notes)


def markdown_table(rows: list[AgentRow]) -> str:
    """A markdown table: one line per agent, grouped by environment and method, the median
    agent of each group in bold; columns natural, each attack, worst, (worst - natural) /
    natural. Below it the per-method summary (:func:`summary_markdown`), the per-method means
    and standard deviations of each column (:func:`per_attack_markdown`) and the
    :func:`legend`."""
    attacks = _attack_columns(rows)
    head = ["env", "method", "seed", "natural", *attacks, "worst", "(worst - natural) / natural"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, is_median in _rows_by_group(rows):
        mark = "**" if is_median else ""
        cells = [r.env, r.method, f"{r.seed}{' (median)' if is_median else ''}",
                 f"{r.natural:.1f}",
                 *(r.cell(a, 1) for a in attacks),
                 f"{mark}{r.worst_cell(1)}{mark} ({r.worst[0]})", f"{r.drop:+.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *summary_markdown(rows), "", *per_attack_markdown(rows)]
    if legend(rows):
        lines += ["", legend(rows)]
    return "\n".join(lines)


def summary_markdown(rows: list[AgentRow]) -> list[str]:
    """The lines of the per-method summary (:func:`summarise`) as a markdown table."""
    lines = ["| env | method | agents | median natural | median worst (seed) | "
             "natural / baseline's | worst / baseline's |", "|" + "---|" * 7]
    for m in summarise(rows):
        lines.append(f"| {m.env} | {m.method} | {m.agents} | {m.natural:.1f} | "
                     f"{m.median.worst_cell(1)} ({m.median.seed}) | "
                     f"{m.natural_ratio:.2f} ({m.baseline}) | {m.worst_ratio:.2f} ({m.baseline}) |")
    return lines


def summary_table(rows: list[AgentRow]) -> Table:
    """The per-method summary (:func:`summarise`) for the terminal."""
    table = Table(title="Per method: median natural return, median agent's worst case, "
                        "ratios to the environment's first method")
    for col in ["env", "method", "agents", "median natural", "median worst", "seed",
                "natural ratio", "worst ratio", "baseline"]:
        table.add_column(col, justify="left" if col in ("env", "method", "baseline") else "right")
    for m in summarise(rows):
        table.add_row(m.env, m.method, str(m.agents), f"{m.natural:.0f}",
                      m.median.worst_cell(0), str(m.median.seed), f"{m.natural_ratio:.2f}",
                      f"{m.worst_ratio:.2f}", m.baseline)
    return table


def rich_table(rows: list[AgentRow]) -> Table:
    """The same table for the terminal, the median agent of each group in bold."""
    attacks = _attack_columns(rows)
    table = Table(title="Mean return per agent; the median agent of each method in bold")
    for col in ["env", "method", "seed", "natural", *attacks, "worst", "by", "drop"]:
        table.add_column(col, justify="left" if col in ("env", "method", "by") else "right")
    for r, is_median in _rows_by_group(rows):
        table.add_row(r.env, r.method, str(r.seed), f"{r.natural:.0f}",
                      *(r.cell(a, 0) for a in attacks),
                      r.worst_cell(0), r.worst[0], f"{r.drop:+.0%}",
                      style="bold" if is_median else None)
    table.caption = legend(rows) or None
    return table
