"""``robustpo report``: one self-contained HTML page (figures embedded as PNG data, no
network access needed) of many run directories, with every figure also written as PNG and SVG
beside it."""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..io.checkpoint import atomic_write_text
from ..results.compare import legend
from . import figures
from .aggregates import (
    AGGREGATES,
    aggregate_estimates,
    improvement_probabilities,
    performance_profiles,
)
from .data import RunData, read_run

PROFILE_POINTS = 101
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#222}h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
img{max-width:100%;margin:.5em 0}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}td:first-child,th:first-child,
td:nth-child(2){text-align:left}tr.median{font-weight:bold}.note{color:#555;font-size:.9em}
details{margin:.2em 0}pre{font-size:.8em;background:#f6f6f6;padding:.5em}"""


@dataclass
class Section:
    """A heading, paragraphs of HTML and figures (name -> PNG bytes) in order."""

    title: str
    parts: list[str] = field(default_factory=list)

    def html(self) -> str:
        return f"<h2>{html.escape(self.title)}</h2>\n" + "\n".join(self.parts)


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def build_report(run_dirs: list[Path], out: Path, title: str = "robustpo report") -> Path:
    """Read ``run_dirs``, draw every figure, and write ``out`` (HTML) with the figures as
    PNG and SVG in ``out``'s sibling directory ``<stem>_figures/``; returns ``out``.

    Raises:
        CheckpointError: no run directory given, or one is not a run (the message names it).
    """
    if not run_dirs:
        raise CheckpointError("robustpo report needs at least one run directory.")
    runs = [read_run(Path(d)) for d in run_dirs]
    figure_dir = out.parent / f"{out.stem}_figures"
    envs = list(dict.fromkeys(r.env for r in runs))
    targets = [t for t in ("observation", "action") if any(t in r.suites for r in runs)]
    sections = []
    for env in envs:
        section = Section(env)
        slug = env.replace("/", "_")
        _add(section, figures.learning_curves(runs, env), figure_dir, f"{slug}-training",
             "training curves")
        for target in targets:
            for name, fig in (
                    ("scatter", figures.natural_vs_worst(runs, env, target)),
                    ("attacks", figures.attack_bars(runs, env, target)),
                    ("eps", figures.robustness_curves(runs, env, target))):
                _add(section, fig, figure_dir, f"{slug}-{target}-{name}", f"{target} {name}")
            _add_aggregates(section, runs, env, target, figure_dir, slug)
        sections.append(section)
    sections.append(_runs_table(runs, targets))
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class='note'>{len(runs)} runs; written {time.strftime('%Y-%m-%d %H:%M')}. "
            f"Returns are undiscounted episode returns of the deterministic policy; the worst "
            f"case is the lowest mean return over the attack suite. Figures also in "
            f"{html.escape(figure_dir.name)}/ as PNG and SVG.</p>"
            + "\n".join(s.html() for s in sections) + "</body></html>")
    atomic_write_text(out, page)
    return out


def _add(section: Section, fig, figure_dir: Path, name: str, alt: str) -> None:
    if fig is not None:
        section.parts.append(_image(figures.export(fig, figure_dir, name), alt))


def _add_aggregates(section: Section, runs: list[RunData], env: str, target: str,
                    figure_dir: Path, slug: str) -> None:
    """rliable's aggregates of the worst-case return per method (and of the natural one)."""
    rows = [r.suites[target] for r in runs if r.env == env and target in r.suites]
    if not rows:
        return
    by_method: dict[str, list] = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    worst = {m: np.array([r.worst[1] for r in v]) for m, v in by_method.items()}
    natural = {m: np.array([r.natural for r in v]) for m, v in by_method.items()}
    counts = ", ".join(f"{m}: {len(v)}" for m, v in worst.items())
    section.parts.append(
        f"<p class='note'>Aggregates over agents ({target} attacks; agents per method: "
        f"{html.escape(counts)}); rliable's definitions, bootstrap 95% CIs over agents.</p>")
    estimates = {"worst-case": aggregate_estimates(worst),
                 "natural": aggregate_estimates(natural)}
    for what, estimate in estimates.items():
        fig = figures.aggregate_intervals(estimate,
                                          f"{env}: {what} return per method ({target})")
        _add(section, fig, figure_dir, f"{slug}-{target}-aggregates-{what}",
             f"{what} aggregates")
    _add(section, figures.improvement_matrix(
        improvement_probabilities(worst),
        f"{env}: P(worst-case return of X > that of Y) ({target})"),
        figure_dir, f"{slug}-{target}-improvement", "probability of improvement")
    values = np.concatenate(list(worst.values()) + list(natural.values()))
    thresholds = np.linspace(values.min(), values.max(), PROFILE_POINTS)
    _add(section, figures.profile_plot(
        performance_profiles(worst, thresholds), thresholds,
        f"{env}: performance profile of the worst-case return ({target})"),
        figure_dir, f"{slug}-{target}-profile", "performance profile")
    table = ["<table><tr><th>method</th><th>agents</th>"
             + "".join(f"<th>worst {a}</th>" for a in AGGREGATES) + "</tr>"]
    for method, est in estimates["worst-case"].items():
        table.append(f"<tr><td>{html.escape(method)}</td><td>{len(worst[method])}</td>"
                     + "".join(f"<td>{est[a].point:.0f} [{est[a].low:.0f}, {est[a].high:.0f}]"
                               f"</td>" for a in AGGREGATES) + "</tr>")
    section.parts.append("".join(table) + "</table>")


def _runs_table(runs: list[RunData], targets: list[str]) -> Section:
    """Every run: method, environment, seed, natural and worst-case return per target, the
    flags, and its config (folded)."""
    section = Section("All runs")
    head = ["run", "method", "env", "seed"]
    for target in targets:
        head += [f"natural ({target})", f"worst ({target})", "by", "flags"]
    rows = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    all_rows = []
    for run in runs:
        cells = [run.run.name, run.method, run.env, str(run.seed)]
        for target in targets:
            row = run.suites.get(target)
            if row is None:
                cells += ["–"] * 4
                continue
            all_rows.append(row)
            cells += [f"{row.natural:.1f}", row.worst_cell(1), row.worst[0],
                      "; ".join(f"{a}: {why}" for a, why in row.flags.items())]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    section.parts.append("".join(rows) + "</table>")
    if legend(all_rows):
        section.parts.append(f"<p class='note'>{html.escape(legend(all_rows))}</p>")
    for run in runs:
        section.parts.append(f"<details><summary>{html.escape(str(run.run))}: config</summary>"
                             f"<pre>{html.escape(run.config_text)}</pre></details>")
    return section
