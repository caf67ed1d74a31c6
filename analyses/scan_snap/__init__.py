"""Scan and Snap (Tian et al. 2023, arXiv 2305.16380) and JoMA (Tian et al. 2023, arXiv 2310.00535) analyses.

`python -m analyses.scan_snap {figure4,figure6,theory,transformer,text,joma,trajectory,all} [--quick] [--out DIR]`;
each sub-module has a `run(out=None, quick=False, ...) -> Result`.
"""

from __future__ import annotations

import importlib

SUBCOMMANDS = ("figure4", "figure6", "theory", "transformer", "text", "joma")


def run(sub: str, **kwargs):
    """Run one sub-command by name (also "trajectory")."""
    if sub not in SUBCOMMANDS + ("trajectory",):
        raise ValueError(f"sub={sub!r} is not one of {SUBCOMMANDS + ('trajectory',)}")
    return importlib.import_module(f"analyses.scan_snap.{sub}").run(**kwargs)
