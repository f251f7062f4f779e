"""Evaluation tables: printed with rich, written as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..evaluation.episodes import EvalResult
from ..io.checkpoint import atomic_write_text
from .convergence import worst_label
from .suite import SuiteResult


def results_table(results: list[EvalResult], title: str) -> Table:
    """One row per evaluation: natural return first, then each attack, with a drop column."""
    table = Table(title=title)
    for col in ("attack", "eps", "episodes", "mean", "std", "median", "95% CI", "vs natural"):
        table.add_column(col, justify="left" if col == "attack" else "right")
    natural = next((r.stats.mean for r in results if r.attack == "none"), None)
    for r in results:
        s = r.stats
        drop = "" if natural in (None, 0) else f"{(s.mean - natural) / abs(natural):+.1%}"
        table.add_row(
            "natural" if r.attack == "none" else r.attack, f"{r.eps:g}", str(r.episodes),
            f"{s.mean:.1f}", f"{s.std:.1f}", f"{s.median:.1f}",
            f"[{s.ci95[0]:.1f}, {s.ci95[1]:.1f}]", drop,
        )
    return table


def print_results(results: list[EvalResult], title: str, console: Console | None = None) -> None:
    """Print :func:`results_table`."""
    (console or Console()).print(results_table(results, title))


def write_json(results: list[EvalResult], path: Path, extra: dict | None = None) -> None:
    """Write ``{**extra, "results": [...]}`` atomically."""
    payload = {**(extra or {}), "results": [r.to_dict() for r in results]}
    atomic_write_text(path, json.dumps(payload, indent=1))


def write_csv(results: list[EvalResult], path: Path) -> None:
    """Write one CSV row per evaluation (returns undiscounted, eps normalised) atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["env", "attack", "eps", "episodes", "mean", "std", "median", "ci95_low",
                     "ci95_high"])
    for r in results:
        s = r.stats
        writer.writerow([r.env, r.attack, r.eps, r.episodes, s.mean, s.std, s.median, *s.ci95])
    atomic_write_text(path, buf.getvalue())


def suite_table(suite: SuiteResult, title: str) -> Table:
    """Natural return, each attack's return, and the worst case, as one table; learned
    attacks that did not converge and a worst case that is an upper bound are said so in the
    caption."""
    table = results_table([suite.natural, *suite.attacks.values()], title)
    if suite.attacks:
        name, mean = suite.worst
        natural = suite.natural.stats.mean
        drop = f"{(mean - natural) / abs(natural):+.1%}" if natural else ""
        table.add_row(f"[bold]worst ({name})[/bold]", f"{suite.eps:g}", "", f"[bold]{mean:.1f}",
                      "", "", "", drop)
        notes = [f"{a}: {why}" for a, why in suite.flags.items()]
        if worst_label(suite.protocol):
            notes.append(f"worst case: {worst_label(suite.protocol)}")
        table.caption = "; ".join(notes) or None
    return table


def comparison_table(suites: dict[str, SuiteResult], title: str) -> Table:
    """Agents side by side: one column per agent (mean return, 95% CI), one row for the
    natural return, one per attack, and the worst case with its drop from natural."""
    table = Table(title=title)
    table.add_column("attack")
    for label in suites:
        table.add_column(label, justify="right")
    first = next(iter(suites.values()))

    def cell(r: EvalResult) -> str:
        lo, hi = r.stats.ci95
        return f"{r.stats.mean:.1f} [{lo:.0f}, {hi:.0f}]"

    table.add_row("natural", *(cell(s.natural) for s in suites.values()))
    for name in first.attacks:
        table.add_row(f"{name} (eps {first.eps:g})", *(cell(s.attacks[name])
                                                       for s in suites.values()))
    worst = []
    for s in suites.values():
        name, mean = s.worst
        drop = (mean - s.natural.stats.mean) / abs(s.natural.stats.mean)
        worst.append(f"[bold]{mean:.1f}[/bold] ({name}, {drop:+.0%})")
    table.add_row("[bold]worst[/bold]", *worst)
    return table


def curve_table(curve: list[SuiteResult], title: str) -> Table:
    """Robustness curve: one row per eps, the mean return under each attack and the worst."""
    table = Table(title=title)
    names = list(curve[0].attacks)
    for col in ("eps", *names, "worst"):
        table.add_column(col, justify="right")
    for suite in curve:
        worst = f"{suite.worst[1]:.1f} ({suite.worst[0]})" if names else ""
        table.add_row(f"{suite.eps:g}", *(f"{suite.attacks[n].stats.mean:.1f}" for n in names),
                      worst)
    return table


def write_curve_csv(curve: list[SuiteResult], path: Path) -> None:
    """Write one CSV row per (eps, attack) of a robustness curve atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["env", "eps", "attack", "episodes", "mean", "std", "ci95_low", "ci95_high"])
    for suite in curve:
        for name, r in {"none": suite.natural, **suite.attacks}.items():
            s = r.stats
            writer.writerow([suite.env, suite.eps, name, r.episodes, s.mean, s.std, *s.ci95])
    atomic_write_text(path, buf.getvalue())
