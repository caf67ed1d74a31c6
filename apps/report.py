"""A run's report.md as the dashboards show it: relative figure paths resolved against the report's folder (figures
are drawn with st.image, which serves files the browser could not fetch from a relative path), and relative links
turned into links to the runs browser (another run's report opens that run; a file opens it in the Files tab)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, urlsplit

IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?\s*\)")
EXTERNAL = ("http://", "https://", "mailto:", "#", "data:")


def run_of(path: Path, runs: list[Path]) -> Path | None:
    """The deepest run folder containing `path` (a file or folder)."""
    inside = [r for r in runs if path == r or r in path.parents]
    return max(inside, key=lambda r: len(r.parts)) if inside else None


def link_target(target: str, base: Path, root: Path, runs: list[Path]) -> str | None:
    """The runs-browser URL (relative to the app) of a link found in a report in `base`, the target unchanged if it
    is external, or None if it points at nothing under the runs root."""
    if target.startswith(EXTERNAL):
        return target
    parts = urlsplit(target)
    path = (base / parts.path).resolve()
    root = root.resolve()
    if not path.exists() or not (path == root or root in path.parents):
        return None
    if path.is_dir():
        run = run_of(path, runs)
        return f"runs_browser?run={quote(str(run.relative_to(root)))}" if run is not None else None
    run = run_of(path.parent, runs)
    if run is None:
        return None
    url = f"runs_browser?run={quote(str(run.relative_to(root)))}"
    if path.name == "report.md" and path.parent == run:
        return url
    return f"{url}&file={quote(str(path.relative_to(run)))}"


def rewrite_links(text: str, base: Path, root: Path, runs: list[Path]) -> str:
    def sub(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        url = link_target(target, base, root, runs)
        return f"[{label}]({url})" if url is not None else f"{label} (*missing: `{target}`*)"

    return LINK.sub(sub, text)


def blocks(text: str, base: Path, root: Path, runs: list[Path]) -> list[tuple[str, object]]:
    """The report as ("md", markdown) and ("images", [(path or None, alt, target)]) blocks, in order. Lines holding
    figures are split: their text goes to a markdown block, their figures to an images block."""
    out: list[tuple[str, object]] = []
    buf: list[str] = []
    fence = False

    def flush() -> None:
        if buf and "".join(buf).strip():
            out.append(("md", rewrite_links("\n".join(buf), base, root, runs)))
        buf.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        found = [] if fence else IMAGE.findall(line)
        if not found:
            buf.append(line)
            continue
        flush()
        rest = IMAGE.sub("", line).strip()
        if rest:
            buf.append(rest)
            flush()
        images = []
        for alt, target in found:
            path = (base / target).resolve() if not target.startswith(EXTERNAL) else None
            images.append((path if path is not None and path.is_file() else None, alt, target))
        out.append(("images", images))
    flush()
    return out


def referenced_figures(text: str, base: Path) -> list[Path]:
    """Existing image files a report refers to (relative paths), in order, without repeats."""
    seen: list[Path] = []
    for _, target in IMAGE.findall(text):
        if target.startswith(EXTERNAL):
            continue
        path = (base / target).resolve()
        if path.is_file() and path not in seen:
            seen.append(path)
    return seen
