"""Writing matplotlib figures for papers: PNG and SVG, atomically."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from .checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_FORMATS = ("png", "svg")


def save_figure(fig: Figure, base: Path, dpi: int = 120) -> dict[str, bytes]:
    """Write ``base.png`` and ``base.svg`` atomically and close ``fig``; returns each
    format's bytes (the PNG for embedding in a page)."""
    import matplotlib.pyplot as plt

    out = {}
    for fmt in FIGURE_FORMATS:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi)
        out[fmt] = buffer.getvalue()
        atomic_write_bytes(base.parent / f"{base.name}.{fmt}", out[fmt])
    plt.close(fig)
    return out
