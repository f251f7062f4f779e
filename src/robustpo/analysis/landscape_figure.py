"""Pictures of a return landscape (:mod:`robustpo.analysis.landscape`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.figures import FIGURE_FORMATS, save_figure
from .landscape import LandscapePoint


def landscape_figure(points: list[LandscapePoint], out: Path, title: str,
                     attack: str | None, axis_labels: tuple[str, ...]) -> list[Path]:
    """1-D: mean return with its 95% CI band against the step, natural and attacked; 2-D:
    contour maps of the natural and the attacked return. Writes ``out`` + ``.png`` and
    ``.svg``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("natural", [p.natural for p in points])]
    if attack is not None:
        series.append((f"under {attack}", [p.attacked for p in points]))
    if len(points[0].coords) == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        xs = [p.coords[0] for p in points]
        for label, values in series:
            mean, low, high = np.array(values).T
            line = ax.plot(xs, mean, "o-", label=label)
            ax.fill_between(xs, low, high, alpha=0.25, color=line[0].get_color(), linewidth=0)
        ax.axvline(0.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel("mean return [95% CI]")
        ax.legend()
    else:
        xs = sorted({p.coords[0] for p in points})
        ys = sorted({p.coords[1] for p in points})
        grids = [np.array([v[0] for v in values]).reshape(len(xs), len(ys)).T
                 for _, values in series]
        # One colour scale for every panel, so natural and attacked returns read alike.
        low, high = min(g.min() for g in grids), max(g.max() for g in grids)
        levels = np.linspace(low, high if high > low else low + 1.0, 21)
        fig, axes = plt.subplots(1, len(series), figsize=(5.2 * len(series) + 1.2, 4.4),
                                 squeeze=False, layout="constrained")
        for ax, (label, _), grid in zip(axes[0], series, grids, strict=True):
            contour = ax.contourf(xs, ys, grid, levels=levels, cmap="viridis")
            ax.plot([0], [0], "r*", markersize=10)
            ax.set_xlabel(axis_labels[0])
            ax.set_ylabel(axis_labels[1])
            ax.set_title(label)
            ax.locator_params(axis="x", nbins=5)
        fig.colorbar(contour, ax=list(axes[0]), label="mean return")
    fig.suptitle(title, fontsize=10)
    if len(points[0].coords) == 1:
        fig.tight_layout()
    save_figure(fig, out)
    return [out.parent / f"{out.name}.{fmt}" for fmt in FIGURE_FORMATS]
