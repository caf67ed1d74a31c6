"""Every study, by name, found on disk: each module under analyses/GROUP/ (any depth) whose file name does not start
with "_" is a study and defines `STUDY` (a `probe.study.Study`) named after its path: analyses/claims/post_ln.py is
"claims.post_ln", written to runs/claims/post_ln. Code shared by several studies lives in modules named `_*.py`.
Groups: papers (reproductions), claims (the seeds' textbook claims), dynamics (training dynamics), vision.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from probe.study import Study

ROOT = Path(__file__).parent
GROUP_TITLES = {
    "papers": "Reproductions of papers",
    "claims": "The claims lab: what the seeds assert about Transformers, tested by experiment",
    "dynamics": "Training dynamics",
    "vision": "Vision",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


def names() -> list[str]:
    """Study names, group by group (in GROUP_TITLES order), without importing them."""
    found = []
    for group in GROUP_TITLES:
        for path in sorted((ROOT / group).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if not any(p.startswith("_") for p in parts):
                found.append(".".join(parts))
    return found


def studies() -> dict[str, Study]:
    """name -> Study for every study (imports every study module)."""
    return {name: load(name) for name in names()}


def groups() -> list[str]:
    return list(dict.fromkeys(n.split(".")[0] for n in names()))


def resolve(name: str) -> list[str]:
    """Study names that `name` means: a full name ("claims.post_ln"), its last part ("post_ln"), a group
    ("claims") or any dotted part of names ("scan_snap" -> every "papers.scan_snap.*"). Unknown or ambiguous
    names raise, listing what exists."""
    all_names = names()
    found = [n for n in all_names if f".{name}." in f".{n}."]
    leaves = [n for n in found if n.endswith("." + name) or n == name]
    if len(leaves) > 1 and len(leaves) == len(found):
        raise KeyError(f"{name!r} is ambiguous: {leaves}")
    if not found:
        raise KeyError(f"no study or group named {name!r}; groups: {groups()}; studies: {all_names}")
    return found


def load(name: str) -> Study:
    found = resolve(name)
    if len(found) != 1:
        raise KeyError(f"{name!r} names several studies: {found}")
    study = module("analyses." + found[0]).STUDY
    if study.name != found[0]:
        raise ValueError(f"analyses.{found[0]} defines a study named {study.name!r}; name it {found[0]!r}")
    return study
