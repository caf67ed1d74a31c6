"""circuitsvis views of probe's models that render offline.

circuitsvis 1.43 builds every view twice: an inline one (its whole JavaScript bundle in the page, `local_src`) and one
that imports its scripts from unpkg.com (`cdn_src`). `str(view)`, `show_code()` and any saved page use the CDN one, so
they show nothing without a network; in Jupyter, `_repr_html_` first probes http://google.com (a 1 s timeout) and
only then falls back to the inline one. `offline(view)` keeps the inline one for every use and never touches the
network. `attention(pattern, tokens, layer)` is circuitsvis' `attention_heads` on one prompt of a probe cache, named
by head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jaxtyping import Float
from torch import Tensor


class OfflineHTML:
    """A circuitsvis view whose every rendering carries its own JavaScript: Jupyter shows it, `str()` gives it,
    `save(path)` writes a page that opens without a network."""

    def __init__(self, html: str) -> None:
        if "unpkg.com" in html:
            raise ValueError("this view imports its JavaScript from unpkg.com; pass the circuitsvis view itself "
                             "(its RenderedHTML), not str(view)")
        self.html = html

    def _repr_html_(self) -> str:
        return self.html

    __html__ = __str__ = _repr_html_

    def save(self, path: str | Path) -> Path:
        """Write a standalone HTML page with the view; returns its path."""
        path = Path(path)
        path.write_text(f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{self.html}\n"
                        "</body></html>\n", encoding="utf-8")
        return path


def offline(view: Any) -> OfflineHTML:
    """The offline rendering of a circuitsvis view (any `circuitsvis.*` function's return)."""
    html = getattr(view, "local_src", None)
    if not isinstance(html, str):
        raise TypeError(f"expected a circuitsvis view (a RenderedHTML with `local_src`), got {type(view).__name__}")
    return OfflineHTML(html)


def attention(pattern: Float[Tensor, "head query key"], tokens: list[str], layer: int | None = None,
              causal: bool = True) -> OfflineHTML:
    """circuitsvis' `attention_heads` for one prompt's patterns (e.g. `cache["pattern", L][0]`), offline.

    Heads are named `L{layer}H{h}` (or `H{h}` without a layer); `causal` masks the upper triangle as a decoder's mask
    does (False for encoders and ViTs).
    """
    from circuitsvis.attention import attention_heads

    if pattern.ndim != 3 or pattern.shape[1] != pattern.shape[2]:
        raise ValueError(f"pattern must be one prompt's self-attention [head, query, key] with as many queries as "
                         f"keys (e.g. cache['pattern', L][0]), got shape {tuple(pattern.shape)}")
    if len(tokens) != pattern.shape[-1]:
        raise ValueError(f"{len(tokens)} tokens for a pattern over {pattern.shape[-1]} positions; give one label "
                         "per position")
    prefix = "" if layer is None else f"L{layer}"
    names = [f"{prefix}H{h}" for h in range(pattern.shape[0])]
    view = attention_heads(pattern.detach().float().cpu(), tokens=list(tokens), attention_head_names=names,
                           mask_upper_tri=causal)
    return offline(view)
