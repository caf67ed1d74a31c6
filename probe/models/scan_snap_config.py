"""Configuration of the Scan-and-Snap data model and reparameterised 1-layer model (Tian et al. 2023, arXiv 2305.16380).

Field names and defaults follow the authors' `Dataset2` / `Model2` (facebookresearch/luckmatters,
ssl/real-dataset/decoder_only.py); see /work/shared/reference/scan_snap.md. Vocabulary layout, in token-id order:
common tokens, per-query common tokens, distinct tokens (num_distinct_per_next for each next token), query tokens,
next tokens. M (`d_vocab`) is the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from probe.config import ConfigBase, check_choice, check_positive

INITS = ("zero", "default")


@dataclass
class ScanSnapConfig(ConfigBase):
    kind: ClassVar[str] = "scan_snap"

    num_last: int = 1  # query tokens m
    num_next_per_last: int = 2  # next tokens n per query: K = |psi^{-1}(m)|
    num_common: int = 10
    num_common_per_last: int = 0
    num_distinct_per_next: int = 10
    common_prob: float = 1.0  # unnormalised probability of each common token
    distinct_min: float = 0.1  # distinct tokens get linspace(distinct_min, distinct_max) unnormalised
    distinct_max: float = 1.0
    seq_len: int = 128  # L: L-1 context tokens then the query token
    init: str = "default"  # "zero" (Figure 4) | "default": nn.Linear's U(-1/sqrt(M), 1/sqrt(M)) (Figure 6)
    normalize: bool = True  # L2-normalise the attention-weighted bag
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("num_last", "num_next_per_last", "num_distinct_per_next"):
            check_positive(name, getattr(self, name))
        for name in ("num_common", "num_common_per_last"):
            check_positive(name, getattr(self, name), allow_zero=True)
        if self.seq_len < 2:
            raise ValueError(f"seq_len={self.seq_len!r} must be an integer >= 2 (context tokens plus the query)")
        for name in ("common_prob", "distinct_min", "distinct_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if self.distinct_min > self.distinct_max:
            raise ValueError(f"distinct_min={self.distinct_min} must be <= distinct_max={self.distinct_max}")
        check_choice("init", self.init, INITS)

    # ---- vocabulary layout (as Dataset2) ------------------------------------------------------------------------
    @property
    def num_next(self) -> int:
        return self.num_last * self.num_next_per_last

    @property
    def common_per_last_offset(self) -> int:
        return self.num_common

    @property
    def distinct_offset(self) -> int:
        return self.num_common + self.num_common_per_last * self.num_last

    @property
    def query_offset(self) -> int:
        return self.distinct_offset + self.num_distinct_per_next * self.num_next

    @property
    def next_offset(self) -> int:
        return self.query_offset + self.num_last

    @property
    def d_vocab(self) -> int:
        """M, the vocabulary size: Z and Y are M x M."""
        return self.next_offset + self.num_next

    @property
    def tokens_per_class(self) -> int:
        return self.num_common + self.num_common_per_last + self.num_distinct_per_next
