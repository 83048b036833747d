"""Saving matplotlib figures (Agg canvas, no pyplot), shared by the spaces' and the spoofing reports."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

DPI = 100


def save_figure(fig: Figure, path) -> Figure:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    fig.savefig(path, dpi=DPI)
    return fig
