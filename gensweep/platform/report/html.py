"""A self-contained HTML page: inline CSS, images as base64 data URIs, no scripts, no external assets."""
from __future__ import annotations

import base64
import html
import math
from typing import Any, Iterable, Sequence

import pandas as pd

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; padding: 0 16px; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; font-size: 0.86em; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; margin: 8px 0; }
.method { color: #555; font-size: 0.9em; }
.meta { color: #555; }
figure { margin: 8px 0 20px; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; }
.grids { display: flex; flex-wrap: wrap; gap: 16px; }
.grids figure img { image-rendering: pixelated; width: 320px; }
nav a { margin-right: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.card { flex: 0 1 auto; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, float_fmt: str = ".4g") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else format(value, float_fmt)
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(image_id: str, data: bytes, alt: str, mime: str | None = None, caption: str | None = None,
        css_class: str = "plot") -> str:
    """An embedded image (``mime`` None: PNG, or SVG when ``data`` is an SVG document)."""
    mime = mime or ("image/svg+xml" if data.lstrip()[:5] in (b"<?xml", b"<svg ") else "image/png")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (f'<figure><img id="{esc(image_id)}" class="{esc(css_class)}" alt="{esc(alt)}" '
            f'src="{data_uri(data, mime)}">{cap}</figure>')


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def method(text: str) -> str:
    return f'<p class="method">{esc(text)}</p>'


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, table_id: str | None = None,
          numeric: Sequence[bool] | None = None) -> str:
    numeric = list(numeric) if numeric is not None else [False] * len(columns)
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(fmt(v))}</td>' if num else f"<td>{esc(fmt(v))}</td>"
            for v, num in zip(row, numeric)
        )
        body.append(f"<tr>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def row(*parts: str) -> str:
    """Side by side (wrapping on narrow screens)."""
    return '<div class="row">' + "".join(f'<div class="card">{p}</div>' for p in parts) + "</div>"


def section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{esc(section_id)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, header: str, sections: Sequence[tuple[str, str, str]]) -> str:
    nav = " ".join(f'<a href="#{esc(sid)}">{esc(t)}</a>' for sid, t, _ in sections)
    parts = [section(sid, t, body) for sid, t, body in sections]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{header}<nav>{nav}</nav>{''.join(parts)}</body></html>\n"
    )
