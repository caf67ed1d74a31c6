"""Plotly figures the explorer and the run pages share: every head of a layer as a grid with token labels on both
axes, signed heat-maps centred at zero (patching, attribution), categorical bar charts (token names such as "3" or
"<pad>" stay categories), images at their true aspect ratio, and loss curves with TensorBoard's smoothing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from apps.lib import unique

MARGIN = dict(l=10, r=10, t=50, b=10)


def head_grid(patterns: np.ndarray, keys: list[str], queries: list[str], title: str = "", cols: int | None = None,
              names: Sequence[str] | None = None, zmax: float = 1.0) -> go.Figure:
    """One heat-map per head ([head, query, key]) on a shared colour scale, token labels on both axes of each."""
    n = patterns.shape[0]
    cols = cols or min(n, 2 if len(keys) > 12 else 4)
    rows = math.ceil(n / cols)
    names = list(names or [f"head {h}" for h in range(n)])
    fig = make_subplots(rows, cols, subplot_titles=names, horizontal_spacing=0.24 / cols,
                        vertical_spacing=min(0.4 / rows, 0.2) if rows > 1 else 0.0)
    x, y = unique(keys), unique(queries)
    for h in range(n):
        hover = f"{names[h]}<br>query %{{y}}<br>key %{{x}}<br>%{{z:.3f}}<extra></extra>"
        fig.add_trace(go.Heatmap(z=patterns[h], x=x, y=y, coloraxis="coloraxis", name=names[h], hovertemplate=hover),
                      h // cols + 1, h % cols + 1)
    side = max(220, 14 * len(queries) + 90)
    fig.update_layout(title=title, coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": zmax}, height=rows * side,
                      margin=MARGIN)
    fig.update_xaxes(type="category", tickangle=-60, tickfont_size=9)
    fig.update_yaxes(type="category", autorange="reversed", tickfont_size=9)
    return fig


def signed_heatmap(z: np.ndarray, x: Sequence[str], y: Sequence[str], title: str = "", xlabel: str = "",
                   ylabel: str = "", zmax: float | None = None, height: int | None = None,
                   text: np.ndarray | None = None, sequential: bool = False) -> go.Figure:
    """A red-blue heat-map centred at zero; `zmax` fixes the symmetric range (to compare two maps). `sequential`:
    a 0..zmax Viridis scale instead (probabilities). `text` is written in the cells."""
    z = np.asarray(z, dtype=float)
    zmax = zmax if zmax is not None else float(np.abs(z).max()) or 1.0
    scale = dict(colorscale="Viridis", zmin=0, zmax=zmax) if sequential else \
        dict(colorscale="RdBu", zmid=0, zmin=-zmax, zmax=zmax)
    fig = go.Figure(go.Heatmap(z=z, x=list(x), y=list(y), **scale,
                               text=text, texttemplate="%{text}" if text is not None else None,
                               hovertemplate=f"{ylabel} %{{y}}<br>{xlabel} %{{x}}<br>%{{z:.4f}}<extra></extra>"))
    fig.update_layout(title=title, height=height or max(220, 28 * len(y) + 120), margin=MARGIN, xaxis_title=xlabel,
                      yaxis_title=ylabel)
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def bar(labels: Sequence[str], values: Sequence[float], title: str = "", ylabel: str = "",
        height: int = 320) -> go.Figure:
    """Bars over categorical labels, in the given order."""
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=MARGIN, yaxis_title=ylabel)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(labels))
    return fig


def image(pixels: np.ndarray, title: str = "", height: int = 300, zmax: float | None = None,
          colorscale: str = "gray_r") -> go.Figure:
    """An image (or any map on a grid) with square pixels and integer axes (row 0 on top)."""
    pixels = np.asarray(pixels, dtype=float)
    fig = go.Figure(go.Heatmap(z=pixels, colorscale=colorscale, zmin=0, zmax=zmax,
                               hovertemplate="row %{y}, column %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=height, margin=MARGIN)
    fig.update_xaxes(dtick=1, constrain="domain", showgrid=False)
    fig.update_yaxes(dtick=1, autorange="reversed", scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False)
    return fig


def image_grid(maps: np.ndarray, names: Sequence[str], title: str = "", cols: int = 4, zmax: float | None = None,
               colorscale: str = "Viridis", side: int = 200) -> go.Figure:
    """Several maps [n, h, w] side by side with square cells and one colour scale."""
    n = maps.shape[0]
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows, cols, subplot_titles=list(names), horizontal_spacing=0.04, vertical_spacing=0.12)
    for i in range(n):
        fig.add_trace(go.Heatmap(z=maps[i], coloraxis="coloraxis", name=names[i],
                                 hovertemplate=f"{names[i]}<br>row %{{y}}, column %{{x}}: %{{z:.3f}}<extra></extra>"),
                      i // cols + 1, i % cols + 1)
    fig.update_layout(title=title, height=rows * side + 60, margin=MARGIN,
                      coloraxis={"colorscale": colorscale, "cmin": 0, "cmax": zmax})
    for i in range(n):
        axis = "" if i == 0 else str(i + 1)
        fig.update_layout(**{f"yaxis{axis}": dict(scaleanchor=f"x{axis}", autorange="reversed", dtick=1,
                                                  constrain="domain"),
                             f"xaxis{axis}": dict(dtick=1, constrain="domain")})
    return fig


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with weight in [0, 1), debiased at the start (so the
    first point is the first value, not weight * 0). weight 0 returns the values."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight={weight!r} must be in [0, 1)")
    out, last, n = [], 0.0, 0
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(v)
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight**n))
    return out


def curves(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, ylabel: str,
           log_y: bool = False, smoothing: float = 0.0, mark: float | None = None, height: int = 380) -> go.Figure:
    """Overlaid curves (x = step): the smoothed line solid, the raw values faint behind it (as TensorBoard)."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    for i, (name, (x, y)) in enumerate(series.items()):
        color = palette[i % len(palette)]
        if smoothing > 0:
            fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines", line=dict(color=color, width=1),
                                     opacity=0.25, name=f"{name} (raw)", showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=list(x), y=ema(y, smoothing) if smoothing > 0 else list(y), name=name,
                                 mode="lines" if len(x) > 20 else "lines+markers", line=dict(color=color, width=2)))
    if mark is not None:
        fig.add_vline(x=mark, line_dash="dash", line_color="grey")
    fig.update_layout(title=title, height=height, margin=MARGIN, xaxis_title="step", yaxis_title=ylabel,
                      yaxis_type="log" if log_y else "linear", legend=dict(orientation="h", y=-0.2))
    return fig
