"""The claims lab as a whole: which studies it runs and its index, runs/claims/{report.md, metrics.json}.

Members are found through the registry, never listed by hand: every study of the claims group, plus the vision
studies that test a seed claim too (`EXTRA`) when they exist. `GROUPS` places each claim of
shared/reference/claims.md in its group (a study missing from it is shown under "Other"); the index has one row per
claim with its group, source, prediction, estimate, interval and verdict, linking the study's report and figures.
`python -m analyses.claims` and `python -m analyses run claims` both run the lab through `run_lab`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from analyses import registry
from probe.study import write_index

GROUP = "claims"
EXTRA = ("vision.cnn_vs_vit", "vision.vit_positions")  # seed 000 §2-3 claims, studied in the vision group
TITLE = registry.GROUP_TITLES[GROUP]
_ROWS = {
    "Normalisation, residuals, depth": ("post_ln", "norms", "residual", "components"),
    "Attention": ("attn_scale", "multi_head", "qk_separate", "dot_vs_additive", "causal_mask", "padding_mask"),
    "Positions and embeddings": ("positions", "embed_scale"),
    "Training recipe": ("warmup", "optimizers", "dropout", "label_smoothing", "exposure_bias", "ffn"),
    "Transfer, tokens, objectives, cost": ("pretrain_finetune", "tokenizers", "mlm", "parallel", "params_vs_time"),
    "Vision (000 §2-3)": ("cnn_vs_vit", "vit_positions"),
}
GROUPS = {study: group for group, studies in _ROWS.items() for study in studies}
DESCRIPTION = (
    "Each row is one statement the seed documents (shared/seeds/) make about Transformers, tested by experiment "
    "on small models: the claim, its source, the predicted comparison, the measured estimate with its 95% interval "
    "over seeds, and the verdict: supported when the whole interval lies on the predicted side of the bound, "
    "refuted when it lies wholly on the other side, inconclusive when it straddles the bound. A refuted claim is a "
    "finding, reported as plainly as a supported one. Each claim links its study's report and figures."
)


def group_of(name: str) -> str:
    """The claims.md group of a study name ("claims.mlm" -> "Transfer, tokens, objectives, cost")."""
    return GROUPS.get(name.rsplit(".", 1)[-1], "Other")


def members(names: Sequence[str] | None = None) -> list[str]:
    """The lab's studies: the claims group's (or the given `names`) and the vision studies of `EXTRA` that exist."""
    known = registry.names()
    own = list(names) if names is not None else [n for n in known if n.split(".")[0] == GROUP]
    return own + [n for n in EXTRA if n in known and n not in own]


def write(out: str | Path, done: Sequence[tuple[str, Path]]) -> Path:
    """The lab's index under `out` from every finished (name, output dir) that belongs to the lab."""
    lab = set(members())
    ordered = sorted([(n, Path(d)) for n, d in done if n in lab], key=lambda item: _rank(item[0]))
    return write_index(out, TITLE, ordered, DESCRIPTION, group_of=group_of)


def _rank(name: str) -> int:
    """Position of a study in claims.md's order; studies not in it come last."""
    leaf, order = name.rsplit(".", 1)[-1], list(GROUPS)
    return order.index(leaf) if leaf in GROUPS else len(order)
