"""The sequence-class data model of Scan and Snap (Tian et al. 2023, arXiv 2305.16380), as the authors' `Dataset2`.

Each class (a next token n) has a query token m = psi(n) and a conditional distribution P(l | n) over its context
tokens: `num_common` common tokens shared by every class (unnormalised probability `common_prob`), optional
per-query common tokens, and `num_distinct_per_next` distinct tokens that occur for n only, with unnormalised
probabilities linspace(distinct_min, distinct_max). An example picks a class uniformly, draws L-1 context tokens
i.i.d. from P(l | n), appends the query token, and labels the sequence with n.

Dimension legend: F classes (next tokens), K tokens per class, M vocabulary, B batch, L sequence length.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from probe.config import ScanSnapConfig


class ScanSnapData:
    """Fact tables and sampler for one `ScanSnapConfig`. Tensors live on `device`."""

    def __init__(self, cfg: ScanSnapConfig, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        tokens, probs, query, nxt = [], [], [], []
        for m in range(cfg.num_last):
            per_last = cfg.common_per_last_offset + m * cfg.num_common_per_last
            for j in range(cfg.num_next_per_last):
                n = m * cfg.num_next_per_last + j
                distinct = cfg.distinct_offset + n * cfg.num_distinct_per_next
                tokens.append(
                    list(range(cfg.num_common))
                    + list(range(per_last, per_last + cfg.num_common_per_last))
                    + list(range(distinct, distinct + cfg.num_distinct_per_next))
                )
                p = torch.cat(
                    [
                        torch.full((cfg.num_common + cfg.num_common_per_last,), float(cfg.common_prob)),
                        torch.linspace(cfg.distinct_min, cfg.distinct_max, cfg.num_distinct_per_next),
                    ]
                )
                probs.append(p / p.sum())
                query.append(cfg.query_offset + m)
                nxt.append(cfg.next_offset + n)
        self.tokens: Int[Tensor, "F K"] = torch.tensor(tokens, device=self.device)
        self.probs: Float[Tensor, "F K"] = torch.stack(probs).to(self.device)
        self.query: Int[Tensor, " F"] = torch.tensor(query, device=self.device)
        self.next: Int[Tensor, " F"] = torch.tensor(nxt, device=self.device)
        n_shared = cfg.num_common + cfg.num_common_per_last
        self.distinct: Int[Tensor, "F D"] = self.tokens[:, n_shared:]
        self.common: Int[Tensor, "F C"] = self.tokens[:, :n_shared]

    @property
    def num_classes(self) -> int:
        return self.tokens.shape[0]

    @property
    def d_vocab(self) -> int:
        return self.cfg.d_vocab

    def cond_prob(self) -> Float[Tensor, "F M"]:
        """P(l | n) over the whole vocabulary, one row per class."""
        out = torch.zeros(self.num_classes, self.d_vocab, device=self.device)
        return out.scatter_(1, self.tokens, self.probs)

    def mask(self, which: str) -> Bool[Tensor, "F M"]:
        """Per class, the vocabulary mask of its 'distinct' or 'common' tokens."""
        idx = {"distinct": self.distinct, "common": self.common}.get(which)
        if idx is None:
            raise ValueError(f"which={which!r} must be 'distinct' or 'common'")
        out = torch.zeros(self.num_classes, self.d_vocab, dtype=torch.bool, device=self.device)
        return out.scatter_(1, idx, True)

    def sample(
        self, batch: int, generator: torch.Generator | None = None
    ) -> tuple[Int[Tensor, "B L"], Int[Tensor, " B"]]:
        """(tokens, labels): context tokens i.i.d. from P(l | n), then the query token; label n."""
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch={batch!r} must be a positive integer")
        cls = torch.randint(self.num_classes, (batch,), generator=generator, device=self.device)
        idx = torch.multinomial(self.probs[cls], self.cfg.seq_len - 1, replacement=True, generator=generator)
        context = self.tokens[cls].gather(1, idx)
        return torch.cat([context, self.query[cls, None]], dim=1), self.next[cls]

    def batch(self, batch: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """A Trainer batch: {"tokens", "labels"}."""
        tokens, labels = self.sample(batch, generator)
        return {"tokens": tokens, "labels": labels}
