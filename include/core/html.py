"""HTML helpers shared by the project's pages: the nightly monitoring report, the on-call page
and the model card.

Why one set: each page used to escape, format numbers and colour statuses its own way, so
the same check could read differently on two pages and a fix to escaping had to be made three
times. Every recorded value reaches a page through `escape` or `fmt`; markup built here from
escaped parts is marked as `Markup` so that it is not escaped twice.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

MISSING = "–"  # a value that was not recorded (an en dash, on every page)

# The verdict of a monitoring check, coloured alike on the report and the on-call page.
STATUS_COLOURS = {"BREACHED": "#c0392b", "ok": "#1e8449", "not evaluated": "#7f8c8d"}


class Markup(str):
    """Markup built from escaped parts: `escape` and `fmt` insert it as is."""


def escape(value: Any) -> str:
    """`value` as HTML text (None as nothing); Markup passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return html.escape("" if value is None else str(value))


def value_text(value: Any, digits: int = 3) -> str:
    """A recorded value as plain text: None and NaN as an en dash, floats rounded to `digits`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt(value: Any, digits: int = 3) -> str:
    """`value_text`, escaped: how a number or a recorded value goes into a table cell."""
    if isinstance(value, Markup):
        return value
    return escape(value_text(value, digits))


def badge(text: str | None, colour: str) -> str:
    """A coloured pill (a status, a gate decision)."""
    return f'<span class="badge" style="background:{colour}">{escape(text or MISSING)}</span>'


def link(href: str | None, text: str, new_tab: bool = True) -> str:
    """A link, or nothing when there is no address (a page shows what exists, not dead links)."""
    if not href:
        return ""
    target = ' target="_blank" rel="noopener"' if new_tab else ""
    return f'<a href="{escape(href)}"{target}>{escape(text)}</a>'


def head(*names: str) -> str:
    """A table's header row."""
    return "<thead><tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr></thead>"


def cells(values: Iterable[Any], text: Callable[[Any], str] = fmt) -> str:
    """One row's <td>s, each value through `text` (which escapes)."""
    return "".join(f"<td>{text(v)}</td>" for v in values)


def table(header: Sequence[str], rows: Iterable[str]) -> str:
    """A table: the header row, then one <tr> per row (each row's <td>s, already escaped)."""
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table>{head(*header)}<tbody>{body}</tbody></table>"


def rows_table(items: Sequence[T], empty: str, header: Sequence[str], row_cells: Callable[[T], str]) -> str:
    """A table with one row per item (`row_cells` gives its <td>s), or `empty` when there is none."""
    if not items:
        return f'<p class="muted">{escape(empty)}</p>'
    return table(header, (row_cells(item) for item in items))


def kv_table(rows: Iterable[tuple[str, Any]], text: Callable[[Any], str] = fmt) -> str:
    """A label/value table (no header row), every value through `text`."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{text(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"
