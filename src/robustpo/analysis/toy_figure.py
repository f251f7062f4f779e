"""The toy ISA-MDP's figure: where each method's policy-gradient ascent ends, per initialisation
(:mod:`robustpo.analysis.toy_isamdp`)."""

from __future__ import annotations

from pathlib import Path

from ..io.figures import FIGURE_FORMATS, save_figure
from .toy_isamdp import OUTCOMES, ToyResult

OUTCOME_COLORS = {"robust optimum": "#2a9d8f", "vulnerable": "#e9c46a", "deceived": "#e76f51",
                  "unsettled": "#b0b0b0"}


def toy_figure(results: dict[float, ToyResult], out: Path) -> list[Path]:
    """Draw the outcome fractions per method (stacked bars, at the first ``r_safe``) and, for
    several ``r_safe`` values, each method's deceived and robust-optimum fractions against
    ``r_safe``; write ``out`` with the suffixes ``.png`` and ``.svg``; return the paths.

    Args:
        results: ``r_safe`` -> the run of :func:`~robustpo.analysis.toy_isamdp.run_toy`.
        out: path without suffix.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = len(results) > 1
    fig, axes = plt.subplots(1, 2 if sweep else 1, figsize=(12 if sweep else 6, 5),
                             squeeze=False)
    r_safe, first = next(iter(results.items()))
    fractions = first.fractions()
    methods = list(fractions)
    ax = axes[0, 0]
    bottom = [0.0] * len(methods)
    for outcome in OUTCOMES:
        values = [fractions[m][outcome] for m in methods]
        ax.bar(methods, values, bottom=bottom, label=outcome, color=OUTCOME_COLORS[outcome])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("fraction of initial policies")
    ax.set_title(f"where exact policy gradient ends (r_safe {r_safe:g})")
    ax.tick_params(axis="x", rotation=20)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, fontsize=8)
    if sweep:
        ax = axes[0, 1]
        xs = sorted(results)
        for m in methods:
            line = ax.plot(xs, [results[x].fractions()[m]["deceived"] for x in xs], "o-",
                           label=f"{m}: deceived")
            ax.plot(xs, [results[x].fractions()[m]["robust optimum"] for x in xs], "s--",
                    color=line[0].get_color(), alpha=0.6, label=f"{m}: robust optimum")
        ax.set_xlabel("safe exit reward r_safe")
        ax.set_ylabel("fraction of initial policies")
        ax.set_title("deceived (solid) and robust optimum (dashed)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=7)
    fig.tight_layout()
    save_figure(fig, out, dpi=130)
    return [out.parent / f"{out.name}.{fmt}" for fmt in FIGURE_FORMATS]
