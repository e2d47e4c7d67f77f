"""Compact HTML tables for reports shown in a notebook.

``_repr_html_`` returns a plain string (no widgets, no scripts), so a notebook exported to HTML
or rendered on GitHub keeps the table. Every value is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__: list[str] = []

_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL = "padding:1px 8px;text-align:{align};border-bottom:1px solid #ddd"


def table(title: str, rows: Sequence[tuple[str, object]], *, note: str | None = None) -> str:
    """A two-column table under a bold title; numbers right-aligned with thousands separators."""
    body = []
    for label, value in rows:
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        align = "right" if isinstance(value, int | float) else "left"
        body.append(
            f"<tr><th style='{_CELL.format(align='left')}'>{html.escape(label)}</th>"
            f"<td style='{_CELL.format(align=align)}'>{html.escape(str(text))}</td></tr>"
        )
    caption = f"<b>{html.escape(title)}</b>"
    footer = f"<div style='font-size:0.85em'>{html.escape(note)}</div>" if note else ""
    return f"<div>{caption}<table style='{_STYLE}'>{''.join(body)}</table>{footer}</div>"
