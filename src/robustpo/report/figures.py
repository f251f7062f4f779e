"""The report's figures (matplotlib, no display needed). Each function returns a figure, or
None when the runs hold nothing for it; :func:`export` writes it as PNG and SVG. Returns are
undiscounted episode returns; steps are environment steps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ..io.figures import save_figure
from ..results.compare import group, median_agent
from .aggregates import AGGREGATES, Estimate
from .data import CURVE_COLUMNS, RunData, method_curves, methods

CURVE_LABELS = {"episode_return": "episode return", "eval_return": "evaluation return",
                "policy_std": "policy std",
                "perturbed_kl": "KL(clean || perturbed)", "train_eps": "training eps"}
GRID_POINTS = 200


def _colors(methods: list[str]) -> dict[str, str]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {m: cycle[k % len(cycle)] for k, m in enumerate(methods)}


def learning_curves(runs: list[RunData], env: str) -> Figure | None:
    """Per method, the median over seeds of each :data:`CURVE_COLUMNS` metric against
    environment steps, with the band between the seeds' minimum and maximum."""
    runs = [r for r in runs if r.env == env and r.curves]
    columns = [c for c in CURVE_COLUMNS if any(c in r.curves for r in runs)]
    if not columns:
        return None
    colors = _colors(methods(runs))
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.4), squeeze=False)
    for ax, column in zip(axes[0], columns, strict=True):
        for method in colors:
            series = [r.curves[column] for r in runs if r.method == method and column in r.curves]
            if not series:
                continue
            end = min(s[0][-1] for s in series)
            grid = np.linspace(min(s[0][0] for s in series), end, GRID_POINTS)
            values = np.array([np.interp(grid, *s) for s in series])
            ax.plot(grid, np.median(values, 0), color=colors[method],
                    label=f"{method} ({len(series)})")
            if len(series) > 1:
                ax.fill_between(grid, values.min(0), values.max(0), color=colors[method],
                                alpha=0.2, linewidth=0)
        ax.set_xlabel("environment steps")
        ax.set_title(CURVE_LABELS[column])
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{env}: training (median over seeds, band min-max)")
    fig.tight_layout()
    return fig


def natural_vs_worst(runs: list[RunData], env: str, target: str) -> Figure | None:
    """One point per agent: natural return against worst-case return under ``target``'s
    attacks; each method's median agent ringed; an open marker for an upper bound."""
    rows = [r.suites[target] for r in runs if r.env == env and target in r.suites]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 4.4))
    colors = _colors(list(dict.fromkeys(r.method for r in rows)))
    for method, members in group(rows).items():
        median = median_agent(members)
        for row in members:
            ax.scatter(row.natural, row.worst[1], s=36, color=colors[method[1]],
                       facecolors="none" if row.upper_bound else colors[method[1]],
                       label=method[1] if row is members[0] else None)
        ax.scatter(median.natural, median.worst[1], s=160, facecolors="none",
                   edgecolors=colors[method[1]], linewidths=1.5)
    low = min(min(r.natural, r.worst[1]) for r in rows)
    high = max(max(r.natural, r.worst[1]) for r in rows)
    ax.plot([low, high], [low, high], ":", color="grey", linewidth=1)
    ax.set_xlabel("natural return")
    ax.set_ylabel(f"worst-case return ({target} attacks)")
    ax.set_title(f"{env}: each agent\n(ringed: the method's median agent; open marker: "
                 "upper bound)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def attack_bars(runs: list[RunData], env: str, target: str) -> Figure | None:
    """Each method's median agent: mean return without attack and under each attack, with
    bootstrap 95% CIs."""
    rows = {id(r.suites[target]): r for r in runs if r.env == env and target in r.suites}
    if not rows:
        return None
    medians = {m: rows[id(median_agent(members))]
               for (_, m), members in group([r.suites[target] for r in rows.values()]).items()}
    attacks = list(dict.fromkeys(a for r in medians.values() for a in r.attack_ci[target]))
    colors = _colors(list(medians))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(attacks) * max(1, len(medians) / 2)),
                                    3.8))
    width = 0.8 / len(medians)
    for k, (method, run) in enumerate(medians.items()):
        cis = run.attack_ci[target]
        xs = [i + (k - (len(medians) - 1) / 2) * width for i, a in enumerate(attacks) if a in cis]
        means = np.array([cis[a][0] for a in attacks if a in cis])
        errors = np.array([[cis[a][0] - cis[a][1], cis[a][2] - cis[a][0]]
                           for a in attacks if a in cis]).T
        ax.bar(xs, means, width, yerr=errors, capsize=2, color=colors[method],
               label=f"{method} (seed {run.seed})")
    ax.set_xticks(range(len(attacks)), attacks)
    ax.set_ylabel("mean return [95% CI]")
    ax.set_title(f"{env}: median agent per method under each {target} attack")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def robustness_curves(runs: list[RunData], env: str, target: str) -> Figure | None:
    """Per method, against eps: the median over its runs of the worst case (solid), the
    range over its runs shaded, and the median natural return (dashed)
    (:func:`~robustpo.report.data.method_curves`)."""
    curves = method_curves(runs, env, target)
    if not curves:
        return None
    colors = _colors([c.method for c in curves])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for c in curves:
        color = colors[c.method]
        agents = f"{c.runs} agent{'s' if c.runs > 1 else ''}"
        ax.plot(c.eps, np.median(c.worst, 0), "o-", color=color, label=f"{c.method} ({agents})")
        if c.runs > 1:
            ax.fill_between(c.eps, c.worst.min(0), c.worst.max(0), color=color, alpha=0.15,
                            linewidth=0)
        ax.plot(c.eps, np.median(c.natural, 0), "--", color=color, alpha=0.6)
    ax.set_xlabel(f"eps ({target})")
    ax.set_ylabel("return, median over agents (solid: worst case;\ndashed: natural); "
                  "shaded: range")
    ax.set_title(f"{env}: robustness curves")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def aggregate_intervals(estimates: dict[str, dict[str, Estimate]], title: str) -> Figure:
    """IQM, median and mean per method with their 95% CIs, one panel each."""
    methods = list(estimates)
    colors = _colors(methods)
    fig, axes = plt.subplots(1, len(AGGREGATES), figsize=(3.6 * len(AGGREGATES),
                                                          0.5 * len(methods) + 1.4),
                             squeeze=False, sharey=True)
    for ax, name in zip(axes[0], AGGREGATES, strict=True):
        for k, method in enumerate(methods):
            e = estimates[method][name]
            ax.plot([e.low, e.high], [k, k], color=colors[method], linewidth=6, alpha=0.5)
            ax.plot([e.point], [k], "|", color="black", markersize=12)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def improvement_matrix(probabilities: dict[tuple[str, str], Estimate], title: str
                       ) -> Figure | None:
    """P(X > Y) for every ordered pair, with its 95% CI in the cell."""
    if not probabilities:
        return None
    methods = list(dict.fromkeys(m for pair in probabilities for m in pair))
    n = len(methods)
    grid = np.full((n, n), np.nan)
    fig, ax = plt.subplots(figsize=(1.6 * n + 2.4, 1.1 * n + 1.2))
    for (x, y), e in probabilities.items():
        i, j = methods.index(x), methods.index(y)
        grid[i, j] = e.point
        ax.text(j, i, f"{e.point:.2f}\n[{e.low:.2f}, {e.high:.2f}]", ha="center",
                va="center", fontsize=7)
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdBu")
    ax.set_xticks(range(n), methods, rotation=20, fontsize=7)
    ax.set_yticks(range(n), methods, fontsize=7)
    ax.set_xlabel("Y")
    ax.set_ylabel("X")
    fig.colorbar(image, ax=ax, label="P(X > Y)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def profile_plot(profiles: dict[str, tuple[np.ndarray, np.ndarray]], thresholds: np.ndarray,
                 title: str) -> Figure:
    """Performance profiles: the fraction of each method's agents above each threshold."""
    colors = _colors(list(profiles))
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for method, (profile, ci) in profiles.items():
        ax.plot(thresholds, profile, color=colors[method], label=method)
        ax.fill_between(thresholds, ci[0], ci[1], color=colors[method], alpha=0.2, linewidth=0)
    ax.set_xlabel("return threshold tau")
    ax.set_ylabel("fraction of agents > tau")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def export(fig: Figure, directory: Path, name: str) -> bytes:
    """Write ``directory/name.png`` and ``.svg`` atomically, close the figure, and return
    the PNG's bytes (for embedding)."""
    return save_figure(fig, directory / name, dpi=110)["png"]
