"""What a report shows of one run directory: its method, training curves, suite results
(observation and action attacks) and robustness curves, read from the files ``robustpo
train`` and ``robustpo attack`` write."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, RobustpoError
from ..io.rundir import read_run_config
from ..results.compare import AgentRow, is_sb3_victim, method_name, read_agent
from ..results.suite import RESULT_FILES
from ..training.presets import config_from_dict

CURVE_COLUMNS = ("episode_return", "eval_return", "policy_std", "perturbed_kl", "train_eps")
"""metrics.csv columns drawn as learning curves, where a run has them."""
ROBUSTNESS_CURVE_FILES = {"observation": "robustness_curve.json",
                          "action": "robustness_curve-action.json"}


@dataclass
class RunData:
    """One run directory's results.

    Attributes:
        run: the directory; method, env, seed: from its config.yaml.
        config_text: config.yaml as written.
        curves: metrics.csv column -> ``(steps, values)`` float arrays (environment steps,
            the column's unit; missing or empty columns left out).
        suites: attack target -> its suite row (natural and per-attack mean returns, flags).
        attack_ci: target -> attack (``"natural"`` included) -> ``(mean, ci_low, ci_high)``.
        robustness: target -> attack -> ``(eps, mean return)`` arrays, from the eps sweep.
    """

    run: Path
    method: str
    env: str
    seed: int
    config_text: str
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    suites: dict[str, AgentRow] = field(default_factory=dict)
    attack_ci: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)
    robustness: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = field(
        default_factory=dict)


def methods(runs: list[RunData]) -> list[str]:
    """The runs' methods, each once, in the order of first appearance."""
    return list(dict.fromkeys(r.method for r in runs))


def read_run(run: Path) -> RunData:
    """Read everything a report shows of ``run``; a run with no attack result yet has only
    its training curves.

    Raises:
        CheckpointError: ``run`` is not a robustpo run directory, or one of its result files
            is corrupt (the message names the file and the command that rewrites it).
    """
    run = Path(run)
    if is_sb3_victim(run):
        row = read_agent(run)  # a victim trained elsewhere: its suite result only
        data = RunData(run, row.method, row.env, row.seed, "(trained outside robustpo)")
    else:
        try:
            cfg = config_from_dict(read_run_config(run), f"{run}/config.yaml")
        except RobustpoError as exc:  # the message names the run directory already
            raise CheckpointError(f"Cannot report on {run}: {exc}") from None
        data = RunData(run, method_name(cfg), cfg.env, cfg.seed,
                       (run / "config.yaml").read_text())
    data.curves = _read_metrics(run / "metrics.csv")
    for target, name in RESULT_FILES.items():
        if (run / name).is_file():
            data.suites[target] = read_agent(run, target)
            data.attack_ci[target] = _read_cis(run / name)
    for target, name in ROBUSTNESS_CURVE_FILES.items():
        if (run / name).is_file():
            data.robustness[target] = _read_robustness(run / name)
    return data


def _read_metrics(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for column in CURVE_COLUMNS:
        points = [(float(r["global_step"]), float(r[column])) for r in rows
                  if r.get(column) not in (None, "")]
        if points:
            steps, values = np.array(points).T
            out[column] = (steps, values)
    return out


def _read_cis(path: Path) -> dict[str, tuple[float, float, float]]:
    data = json.loads(path.read_text())  # read_agent has validated the file
    out = {"natural": _ci(data["natural"])}
    out.update({name: _ci(r) for name, r in data["attacks"].items()})
    return out


def _ci(result: dict) -> tuple[float, float, float]:
    low, high = result.get("ci95", [result["mean"], result["mean"]])
    return float(result["mean"]), float(low), float(high)


def _read_robustness(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    command = f"robustpo attack {path.parent} --eps-sweep 0,0.05,0.1"
    try:
        suites = json.loads(path.read_text())
        points: dict[str, list[tuple[float, float]]] = {}
        for suite in suites:
            eps = float(suite["eps"])
            points.setdefault("natural", []).append((eps, float(suite["natural"]["mean"])))
            for name, r in suite["attacks"].items():
                points.setdefault(name, []).append((eps, float(r["mean"])))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a robustness curve ({exc!r}); rerun "
                              f"`{command}`.") from None
    return {name: tuple(np.array(sorted(p)).T) for name, p in points.items()}


@dataclass
class MethodCurve:
    """One method's robustness curve over its runs' eps sweeps.

    Attributes:
        method: the method's name; runs: how many runs it rests on.
        eps: ``(n,)`` the radii every one of these runs was swept at (the target's units:
            normalised observation, or half-ranges of the action space), ascending.
        worst: ``(runs, n)`` each run's worst case (lowest mean return over the attacks).
        natural: ``(runs, n)`` each run's natural return at each radius's sweep point.
    """

    method: str
    runs: int
    eps: np.ndarray
    worst: np.ndarray
    natural: np.ndarray


def method_curves(runs: list[RunData], env: str, target: str) -> list[MethodCurve]:
    """Per method (in the order of first appearance), the worst case and the natural return
    of each of its runs on ``env`` with a ``target`` eps sweep, at the radii all of them were
    swept at; methods whose runs share no radius are left out."""
    out = []
    for method in methods(runs):
        mine = [r.robustness[target] for r in runs
                if r.method == method and r.env == env and target in r.robustness]
        if not mine:
            continue
        worst = [_worst_by_eps(curves) for curves in mine]
        natural = [dict(zip(*curves["natural"], strict=True)) for curves in mine]
        eps = sorted(set.intersection(*(set(w) & set(n) for w, n in zip(worst, natural))))
        if eps:
            out.append(MethodCurve(method, len(mine), np.array(eps),
                                   np.array([[w[e] for e in eps] for w in worst]),
                                   np.array([[n[e] for e in eps] for n in natural])))
    return out


def _worst_by_eps(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[float, float]:
    """eps -> the lowest mean return over the attacks swept at it."""
    worst: dict[float, float] = {}
    for name, (eps, values) in curves.items():
        if name != "natural":
            for e, v in zip(eps, values, strict=True):
                worst[e] = min(worst.get(e, np.inf), v)
    return worst
