"""Figures of the claims studies: one way to write a matplotlib figure to a study's output directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save(fig: Any, path: Path) -> list[Path]:
    """Lay `fig` out, write it as a PNG at `path`, close it; returns [path], as a study's `figures` does."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
