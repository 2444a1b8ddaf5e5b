"""A model card rendered: as Markdown and as one self-contained HTML page (pure functions).

Why two renderings: MLflow's artifact viewer, a pull request and a terminal read Markdown; the
on-call page opens the HTML. Both lay out the same rows (include/registry/card/content.py) and
escape every value, so a recorded value cannot inject markup into either.
"""

from __future__ import annotations

import html
from typing import Any

from include.core.html import MISSING, Markup, cells, escape, kv_table, table
from include.core.urls import redact_url
from include.registry.card.content import (
    gate_rows,
    known_limits,
    lineage_rows,
    metric_rows,
    partition_cells,
    purpose,
    slice_rows,
    status_rows,
    text,
    title,
    training_rows,
)
from include.registry.card.facts import CardFacts

NO_PARTITIONS = "No partitions recorded (lineage.json missing or empty)."
PARTITION_HEADER = ["table", "interval", "sha256", "validation", "expectations ok"]

# ---------------------------------------------------------------------------------------------
# Markdown


def _md(value: Any, digits: int = 4) -> str:
    """A Markdown table cell: escaped so that a value cannot inject markup or break the table."""
    escaped = html.escape(text(value, digits), quote=False)
    return escaped.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(header: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    """A Markdown table, every cell escaped."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_block(block: str) -> list[str]:
    """Preformatted text (the gate table keeps its columns); a fence inside cannot close the block."""
    return ["```", redact_url(block).replace("```", "'''"), "```", ""]


def _md_section(heading: str, header: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    """A section holding one table, or saying that nothing was recorded."""
    return [f"## {heading}", "", *(_md_table(header, rows) if rows else ["None recorded.", ""])]


def _md_partitions(facts: CardFacts) -> list[str]:
    """Every partition with its full sha256 (the Markdown card is the one to compare hashes with)."""
    rows = []
    for p in facts.get("partitions") or []:
        table_name, interval, result, counts, docs, quarantine = partition_cells(p)
        rows.append((table_name, interval, p.get("sha256"), result, counts, docs, quarantine))
    if not rows:
        return [NO_PARTITIONS, ""]
    return _md_table([*PARTITION_HEADER, "Data Docs", "quarantine"], rows)


def _md_gate(facts: CardFacts) -> list[str]:
    """The gate's verdict, its reasons and its table verbatim."""
    gate = facts.get("gate") or {}
    lines = ["## Gate decision and reasons", "", *_md_table(["", "value"], gate_rows(facts))]
    if gate.get("evaluated"):
        lines += [f"- {_md(r)}" for r in gate.get("reasons") or ["all checks passed"]] + [""]
        if gate.get("table"):
            lines += _md_block(str(gate["table"]))
    return lines


def render_markdown(facts: CardFacts) -> str:
    """The card as Markdown (MLflow's artifact viewer, a pull request, a terminal)."""
    params = (facts.get("run") or {}).get("params") or {}
    lines = [
        f"# {_md(title(facts))}",
        "",
        f"Generated {_md(facts.get('generated_at'))} (event: {_md(facts.get('event'))}). "
        "Rebuilt from MLflow and the validation records at each event of this version.",
        "",
        "## Purpose",
        "",
        _md(purpose(facts)),
        "",
        "## Status",
        "",
        *_md_table(["", "value"], status_rows(facts)),
        "## Training data",
        "",
        *_md_table(["", "value"], training_rows(facts)),
        "### Partitions",
        "",
        *_md_partitions(facts),
        *_md_section("Parameters", ["parameter", "value"], sorted(params.items())),
        *_md_section("Metrics (holdout, overall)", ["metric", "value"], metric_rows(facts)),
        *_md_section("Metrics per slice", ["slice", "ROC AUC", "rows", "note"], slice_rows(facts)),
        *_md_gate(facts),
        "## Lineage",
        "",
        *_md_table(["", "value"], lineage_rows(facts)),
    ]
    lines += ["## Known limits", ""] + [f"- {_md(x)}" for x in known_limits(facts)] + [""]
    missing = facts.get("missing") or {}
    if missing:
        lines += ["## Missing records", ""] + [f"- {_md(k)}: {_md(v)}" for k, v in missing.items()] + [""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# HTML

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;text-align:left;vertical-align:top}th{background:#f2f3f4}"
    "pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:12px}"
    ".state{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}"
    ".champion{background:#1e8449}.challenger{background:#2874a6}.retired{background:#7f8c8d}"
    ".other{background:#b9770e}.bad{color:#c0392b;font-weight:bold}.muted{color:#777}"
    ".path{word-break:break-all}"
)


def _h(value: Any) -> str:
    """Every value on the HTML card goes through this: formatted, credentials removed, escaped
    (Markup built here from escaped parts is inserted as is)."""
    return escape(value if isinstance(value, Markup) else text(value))


def _html_table(header: list[str], rows: list[tuple[Any, ...]]) -> str:
    """An HTML table, every cell escaped (unless built here as Markup)."""
    return table(header, (cells(row, _h) for row in rows))


def _html_list(items: list[Any]) -> str:
    """A bulleted list, every item escaped."""
    return "<ul>" + "".join(f"<li>{_h(x)}</li>" for x in items) + "</ul>"


def _html_section(heading: str, header: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    """A section holding one table, or saying that nothing was recorded."""
    return [f"<h2>{heading}</h2>", _html_table(header, rows) if rows else "<p>None recorded.</p>"]


def _html_heading(facts: CardFacts) -> str:
    """Model, version and a state badge coloured like the registry's aliases."""
    state = str((facts.get("status") or {}).get("state", "unknown"))
    css = state if state in ("champion", "challenger", "retired") else "other"
    return (
        f"<h1>Model card: {_h(facts.get('model_name', 'model'))} version "
        f'<span id="model-version">{_h(facts.get("version", "?"))}</span> '
        f'<span class="state {css}">{_h(state)}</span></h1>'
    )


def _html_partitions(facts: CardFacts) -> str:
    """Every partition, its sha256 shortened (in full in the Markdown card), failures in red."""
    rows: list[tuple[Any, ...]] = []
    for p in facts.get("partitions") or []:
        table_name, interval, result, counts, docs, quarantine = partition_cells(p)
        sha = str(p.get("sha256") or "")
        sha_cell = Markup(f"<code>{escape(sha[:12])}</code>")
        if result != "passed" and result != "no validation record":
            result = Markup(f'<span class="bad">{escape(redact_url(result))}</span>')
        if docs != MISSING:  # a long path: let it wrap rather than widen the table
            docs = Markup(f'<span class="path">{escape(docs)}</span>')
        rows.append((table_name, interval, sha_cell, result, counts, docs, quarantine))
    if not rows:
        return f"<p>{NO_PARTITIONS}</p>"
    return _html_table([*PARTITION_HEADER, "Data Docs page", "quarantine"], rows)


def _html_gate(facts: CardFacts) -> list[str]:
    """The gate's verdict, its reasons and its table verbatim."""
    gate = facts.get("gate") or {}
    parts = ["<h2>Gate decision and reasons</h2>", kv_table(gate_rows(facts), _h)]
    if gate.get("evaluated"):
        parts.append(_html_list(gate.get("reasons") or ["all checks passed"]))
        if gate.get("table"):
            parts.append(f"<pre>{_h(gate['table'])}</pre>")
    return parts


def render_html(facts: CardFacts) -> str:
    """The card as one self-contained HTML page (inline CSS, no scripts, nothing fetched)."""
    params = (facts.get("run") or {}).get("params") or {}
    missing = facts.get("missing") or {}
    parts = [
        _html_heading(facts),
        f'<p class="muted">Generated {_h(facts.get("generated_at"))} (event: {_h(facts.get("event"))}). '
        "Rebuilt from MLflow and the validation records at each event of this version.</p>",
        "<h2>Purpose</h2>",
        f"<p>{_h(purpose(facts))}</p>",
        "<h2>Status</h2>",
        kv_table(status_rows(facts), _h),
        "<h2>Training data</h2>",
        kv_table(training_rows(facts), _h),
        "<h3>Partitions</h3>",
        _html_partitions(facts),
        *_html_section("Parameters", ["parameter", "value"], sorted(params.items())),
        *_html_section("Metrics (holdout, overall)", ["metric", "value"], metric_rows(facts)),
        *_html_section("Metrics per slice", ["slice", "ROC AUC", "rows", "note"], slice_rows(facts)),
        *_html_gate(facts),
        "<h2>Lineage</h2>",
        kv_table(lineage_rows(facts), _h),
        "<h2>Known limits</h2>",
        _html_list(known_limits(facts)),
    ]
    if missing:
        items = "".join(f"<li>{_h(k)}: {_h(v)}</li>" for k, v in missing.items())
        parts += ["<h2>Missing records</h2>", f"<ul>{items}</ul>"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_h(title(facts))}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
