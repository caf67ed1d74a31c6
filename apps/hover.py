"""Attention you can read by hovering (the interaction of circuitsvis' `attention_patterns`, built offline): a small
Streamlit component (st.components.v2, inline HTML/CSS/JS, no CDN) that shows the query tokens in a row; hovering
one (or clicking it, to pin it) colours the key tokens of every head by where that query attends. For a ViT the
queries and keys are laid out as the image's patch grid, beside the class token."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

CSS = """
.probe-attn { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
.probe-attn .row { display: flex; flex-wrap: wrap; align-items: center; gap: 3px; margin: 3px 0; }
.probe-attn .label { width: 7.5em; color: #666; font-size: 12px; }
.probe-attn .tok { padding: 2px 5px; border: 1px solid #ddd; border-radius: 3px; cursor: default;
  min-width: 1.2em; text-align: center; }
.probe-attn .q { cursor: pointer; }
.probe-attn .q.active { outline: 2px solid #d62728; }
.probe-attn .grid { display: inline-grid; gap: 2px; vertical-align: middle; margin-left: 4px; }
.probe-attn .grid .tok { width: 22px; height: 22px; padding: 0; min-width: 0; font-size: 0; }
.probe-attn .hint { color: #666; font-size: 12px; margin-bottom: 4px; }
"""

HTML = '<div class="probe-attn"><div class="hint"></div><div class="body"></div></div>'

JS = """
export default function(component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector('.probe-attn');
  const hint = root.querySelector('.hint');
  const body = root.querySelector('.body');
  body.innerHTML = '';
  const { queries, keys, pattern, heads, grid } = data;  // pattern [head][query][key]
  let pinned = null;
  hint.textContent = 'Hover a query token to colour the keys it attends to in every head (darkest: the largest ' +
    'weight of the row in that head; hover a key for its weight); click to pin.';

  function cell(text, cls) {
    const el = document.createElement('span');
    el.className = 'tok ' + cls;
    el.textContent = text;
    el.title = text;
    return el;
  }
  function lay(cells, row) {  // a row of tokens, or [first token] + patch grid
    if (!grid) { cells.forEach(c => row.appendChild(c)); return; }
    row.appendChild(cells[0]);
    const g = document.createElement('span');
    g.className = 'grid';
    g.style.gridTemplateColumns = `repeat(${grid[1]}, auto)`;
    cells.slice(1).forEach(c => g.appendChild(c));
    row.appendChild(g);
  }
  const qRow = document.createElement('div');
  qRow.className = 'row';
  qRow.innerHTML = '<span class="label">queries</span>';
  const qCells = queries.map((t, i) => { const c = cell(t, 'q'); c.dataset.q = i; return c; });
  lay(qCells, qRow);
  body.appendChild(qRow);
  const kCells = heads.map((name, h) => {
    const row = document.createElement('div');
    row.className = 'row';
    row.innerHTML = `<span class="label">${name}</span>`;
    const cells = keys.map((t, j) => { const c = cell(t, 'k'); c.dataset.head = h; c.dataset.k = j; return c; });
    lay(cells, row);
    body.appendChild(row);
    return cells;
  });
  function show(q) {
    qCells.forEach((c, i) => c.classList.toggle('active', i === q));
    kCells.forEach((cells, h) => cells.forEach((c, j) => {
      const w = q === null ? 0 : pattern[h][q][j];
      const top = q === null ? 1 : Math.max(...pattern[h][q], 1e-9);
      const a = Math.min(Math.max(w / top, 0), 1);
      c.style.background = `rgba(31, 119, 180, ${a.toFixed(4)})`;
      c.style.color = a > 0.55 ? 'white' : 'black';
      c.dataset.weight = w.toFixed(4);
      c.title = q === null ? '' : `${heads[h]}: ${queries[q]} -> ${keys[j]}: ${w.toFixed(3)}`;
    }));
  }
  qCells.forEach((c, i) => {
    c.addEventListener('mouseenter', () => { if (pinned === null) show(i); });
    c.addEventListener('click', () => { pinned = pinned === i ? null : i; show(pinned === null ? i : pinned); });
  });
  show(queries.length - 1);
}
"""


@st.cache_resource
def _component() -> Any:
    return st.components.v2.component("probe_attention_hover", html=HTML, css=CSS, js=JS)


def hover_attention(pattern: np.ndarray, queries: list[str], keys: list[str], heads: list[str], key: str,
                    grid: tuple[int, int] | None = None) -> None:
    """Mount the component for `pattern` [head, query, key] (rows sum to 1). With `grid` (rows, cols), the tokens
    after the first are drawn as that grid (a ViT's patches after the class token)."""
    pattern = np.asarray(pattern, dtype=float)
    if pattern.shape != (len(heads), len(queries), len(keys)):
        raise ValueError(f"pattern has shape {pattern.shape}; expected (heads, queries, keys) = "
                         f"({len(heads)}, {len(queries)}, {len(keys)})")
    data = {"queries": list(queries), "keys": list(keys), "heads": list(heads),
            "pattern": np.round(pattern, 4).tolist(), "grid": list(grid) if grid else None}
    _component()(data=data, key=key)
