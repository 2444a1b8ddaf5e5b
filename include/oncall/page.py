"""The "Model health" page as HTML: a pure function of `model_health.snapshot()`.

Server-rendered, self-contained (inline CSS and SVG sparklines, no scripts, nothing fetched from
elsewhere), so it renders the same in the Airflow UI's iframe, in a new tab and in a test.
Every value from the records is escaped.
"""

from __future__ import annotations

import math

from include.core.html import STATUS_COLOURS, badge, escape, fmt, link, rows_table, table
from include.oncall.sections import (
    AlertEntry,
    Freshness,
    MonitoringSection,
    QuarantineEntry,
    QuarantineSection,
    RequestEntry,
    ServingSection,
    Snapshot,
    VersionEntry,
)

CHECK_LABELS = {
    "feature_drift": "Feature drift (share of features drifted)",
    "prediction_drift": "Prediction drift (score distance)",
    "performance": "Performance (ROC AUC of labelled day)",
    "slice_performance": "Slices (worst ROC AUC)",
    "attribution_drift": "Attribution drift (share shift)",
    "fairness": "Fairness (worst gap widening)",
    "volume": "Volume (flights vs reference)",
    "freshness": "Online-store freshness (lag, h)",
}
DECISION_COLOURS = {
    "deploy": STATUS_COLOURS["ok"],
    "promote": STATUS_COLOURS["ok"],
    "reject": STATUS_COLOURS["BREACHED"],
    "retire": STATUS_COLOURS["BREACHED"],
}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px 20px;color:#1c2833}
h1{font-size:1.35em;margin:0 0 2px}
h2{font-size:1.08em;margin:22px 0 8px;border-bottom:1px solid #e5e8e8;padding-bottom:3px}
.muted{color:#707b7c;font-size:.88em}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:12px}
.card{border:1px solid #d5dbdb;border-radius:8px;padding:10px 14px;min-width:220px;flex:1}
.card h3{margin:0 0 6px;font-size:.85em;text-transform:uppercase;letter-spacing:.04em;color:#566573}
.big{font-size:1.9em;font-weight:700}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;color:#fff;font-size:.85em}
table{border-collapse:collapse;font-size:.88em;width:100%}
th,td{border-bottom:1px solid #eaeded;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f6f6}
.dot{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:2px}
.errors{background:#fdedec;border:1px solid #f5b7b1;padding:8px 12px;border-radius:6px}
a{color:#1f618d}
.reasons{max-width:520px}
"""


def _status_badge(status: str | None) -> str:
    return badge(status or "unknown", STATUS_COLOURS.get(status or "", "#7f8c8d"))


def _decision_badge(decision: str | None) -> str:
    return badge(decision or "not yet gated", DECISION_COLOURS.get(decision or "", "#7f8c8d"))


def sparkline(
    values: list[float | None], threshold: float | None = None, width: int = 140, height: int = 30
) -> str:
    """An inline SVG line of `values` (None = a gap), with the threshold dashed."""
    points = [v for v in values if v is not None and math.isfinite(v)]
    if not points:
        return '<span class="muted">no values</span>'
    lo, hi = min(points), max(points)
    if threshold is not None and math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    span = (hi - lo) or 1.0
    step = width / max(len(values) - 1, 1)
    offset = width / 2 if len(values) == 1 else 0.0  # a single night sits in the middle

    def y(v: float) -> float:
        return round(height - 3 - (v - lo) / span * (height - 6), 1)

    segments: list[list[str]] = []
    current: list[str] = []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{round(offset + i * step, 1)},{y(v)}")
    if current:
        segments.append(current)
    lines = "".join(
        f'<polyline fill="none" stroke="#1f618d" stroke-width="1.5" points="{" ".join(s)}"/>'
        if len(s) > 1
        else f'<circle cx="{s[0].split(",")[0]}" cy="{s[0].split(",")[1]}" r="3" fill="#1f618d"/>'
        for s in segments
    )
    rule = ""
    if threshold is not None and math.isfinite(threshold):
        rule = (
            f'<line x1="0" x2="{width}" y1="{y(threshold)}" y2="{y(threshold)}" '
            'stroke="#c0392b" stroke-dasharray="3,2" stroke-width="1"/>'
        )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="trend">{rule}{lines}</svg>'
    )


def _champion_card(champion: VersionEntry | None) -> str:
    if not champion:
        return (
            '<div class="card"><h3>Champion</h3><div class="big" id="champion-version">none</div>'
            '<p class="muted">No version has the alias champion yet: train_model deploys the first '
            "one whose gate passes.</p></div>"
        )
    card = link(champion.get("model_card"), "model card") or '<span class="muted">no model card yet</span>'
    return f"""<div class="card"><h3>Champion</h3>
<div><span class="big">v<span id="champion-version">{escape(champion["version"])}</span></span>
 {_decision_badge(champion.get("gate_decision"))}</div>
<div>since {escape(champion.get("champion_since") or "–")}</div>
<div class="muted">deployed by {escape(champion.get("deployed_by") or "–")} · approval:
 {escape(champion.get("approved_by") or "not recorded")} · {escape(champion.get("reason") or "")}</div>
<div class="muted">previous champion: {escape(champion.get("previous") or "none")}
 · candidate {escape(champion.get("candidate"))}</div>
<div class="reasons">gate: {escape(champion.get("gate_reasons") or "–")}</div>
<div>{card} {link(champion.get("lineage"), "lineage")} {link(champion.get("version_url"), "MLflow version")}
 {link(champion.get("run_url"), "MLflow run")}</div>
</div>"""


def _shadow_card(shadow: VersionEntry | None, champion: VersionEntry | None) -> str:
    """The version in `shadow` beside the champion: since when, the promotion check's last word."""
    if not shadow:
        return (
            '<div class="card"><h3>Shadow</h3><div class="big" id="shadow-version">none</div>'
            '<p class="muted">No version in shadow. train_model with <code>promotion=shadow</code> (or a '
            "person's Shadow choice) puts a challenger there: scored beside the champion each night, "
            "never served, until promote_shadow decides.</p></div>"
        )
    against = escape(champion["version"]) if champion else "none"
    decision = shadow.get("shadow_decision")
    return f"""<div class="card"><h3>Shadow</h3>
<div><span class="big">v<span id="shadow-version">{escape(shadow["version"])}</span></span>
 {_decision_badge(decision) if decision else '<span class="muted">not checked yet</span>'}</div>
<div>since {escape(shadow.get("shadow_since") or "–")} · beside champion v{against}</div>
<div class="muted">labelled nights compared: {escape(shadow.get("shadow_nights") or "0")}</div>
<div class="reasons">promotion check: {escape(shadow.get("shadow_reasons") or "–")}</div>
<div>{link(shadow.get("model_card"), "model card")} {link(shadow.get("lineage"), "lineage")}
 {link("/dags/promote_shadow", "promote_shadow runs", new_tab=False)}</div>
</div>"""


def _serving_card(serving: ServingSection, champion: VersionEntry | None) -> str:
    if not serving.get("reachable"):
        return f"""<div class="card"><h3>Online service</h3>{_status_badge("BREACHED")} unreachable
<div class="muted">{escape(serving.get("url"))}: {escape(serving.get("error"))}</div></div>"""
    ok = serving.get("status") == "ok" and (champion is None or serving.get("matches_champion"))
    note = "serves the champion" if serving.get("matches_champion") else "does NOT serve the champion"
    logged = escape(serving.get("predictions_logged"))
    return f"""<div class="card"><h3>Online service</h3>{_status_badge("ok" if ok else "BREACHED")}
 <span id="serving-version">v{escape(serving.get("version") or "–")}</span> · {escape(note)}
<div class="muted">{escape(serving.get("url"))} · /health {escape(serving.get("status"))}
 in {escape(serving.get("latency_ms"))} ms · {logged} online predictions logged,
 {escape(serving.get("prediction_log_errors"))} log errors {escape(serving.get("error") or "")}</div></div>"""


def _freshness_card(freshness: Freshness | None) -> str:
    if not freshness:
        return (
            '<div class="card"><h3>Online-store freshness</h3>'
            '<span class="muted">not checked yet</span></div>'
        )
    lag = freshness.get("lag_hours")
    checked = escape(freshness.get("checked_at"))
    return f"""<div class="card"><h3>Online-store freshness</h3>{_status_badge(freshness.get("status"))}
 lag {fmt(lag)} h (max {fmt(freshness.get("max_hours"))} h)
<div class="muted">{escape(freshness.get("detail"))}</div>
<div class="muted">checked {checked} for {escape(freshness.get("day"))}</div></div>"""


def _quarantine_card(quarantine: QuarantineSection) -> str:
    waiting = len(quarantine.get("waiting", []))
    status = "BREACHED" if waiting else "ok"
    return f"""<div class="card"><h3>Quarantine</h3>{_status_badge(status)}
 <span id="quarantine-waiting">{waiting}</span> interval(s) waiting for action
<div class="muted">{escape(quarantine.get("total", 0))} quarantine record(s) in the lake ·
 {link(quarantine.get("data_docs_index"), "Data Docs") or "no Data Docs yet"}</div></div>"""


def _nights(mon: MonitoringSection) -> str:
    checks = mon.get("checks") or {}
    if not checks:
        note = mon.get("note") or "no nightly checks recorded for this version yet"
        return f'<p class="muted">{escape(note)}</p>'
    days = sorted(mon.get("days", []))
    rows = []
    for name, series in checks.items():
        by_day = {s["day"]: s for s in series}
        latest = series[-1]
        values = [by_day[d]["value"] if d in by_day else None for d in days]
        dots = "".join(
            f'<span class="dot" title="{escape(d)}: {escape(by_day[d]["status"])} – '
            f'{escape(by_day[d]["detail"])}" '
            f'style="background:{STATUS_COLOURS.get(by_day[d]["status"], "#d5dbdb")}"></span>'
            if d in by_day
            else f'<span class="dot" title="{escape(d)}: no record" style="background:#eaeded"></span>'
            for d in days
        )
        rows.append(
            f"<td>{escape(CHECK_LABELS.get(name, name))}</td>"
            f"<td>{sparkline(values, latest.get('threshold'))}</td>"
            f"<td>{dots}</td><td>{_status_badge(latest['status'])}</td>"
            f"<td>{fmt(latest.get('value'))} / {fmt(latest.get('threshold'))}</td>"
            f'<td class="reasons">{escape(latest["day"])}: {escape(latest.get("detail"))}</td>'
        )
    reports = mon.get("reports") or {}
    report_links = " · ".join(link(href, day) for day, href in sorted(reports.items(), reverse=True)[:7])
    columns = ("check", "trend", "nights", "latest", "value / threshold", "latest detail")
    return f"""<p class="muted">Version {escape(mon.get("version"))}, departure days {escape(days[0])}
 to {escape(days[-1])} (oldest left). Dashed red line: threshold.
 {link(mon.get("mlflow_run_url"), "Metrics on MLflow")}</p>
{table(columns, rows)}
<p>Drift reports: {report_links or '<span class="muted">none yet</span>'}</p>"""


def _system(mon: MonitoringSection) -> str:
    """The system's nightly numbers as trends: the service, the stores, the DAGs' run times."""
    series = mon.get("system") or {}
    if not series:
        return '<p class="muted">no system numbers recorded yet (monitor_model records them nightly)</p>'
    days = sorted(mon.get("days", []))
    rows = []
    for label, values in series.items():
        latest = next((v for v in reversed(values) if v is not None), None)
        rows.append(
            f"<td>{escape(label)}</td><td>{sparkline(values)}</td><td>{fmt(latest)}</td>"
            f"<td>{fmt(min((v for v in values if v is not None), default=None))} – "
            f"{fmt(max((v for v in values if v is not None), default=None))}</td>"
        )
    note = f"departure days {escape(days[0])} to {escape(days[-1])}" if days else ""
    return f"""<p class="muted">{note} (oldest left); checks and thresholds in the table above
 (service health, storage, task durations).</p>
{table(("number", "trend", "latest", "range"), rows)}"""


def _request_cells(q: RequestEntry) -> str:
    return (
        f"<td>#{escape(q['id'])}</td><td>{escape(q['created_at'])}</td><td>v{escape(q['version'])}</td>"
        f'<td>{escape(q["day"])}</td><td class="reasons">{escape("; ".join(q["reasons"]))}</td>'
        f"<td>{escape(q['status'])}</td><td>{escape(q.get('consumed_by') or '')}</td>"
    )


def _candidate_cells(c: VersionEntry) -> str:
    return (
        f"<td>v{escape(c['version'])}</td><td>{escape(c['created'])}</td><td>{escape(c.get('candidate'))}</td>"
        f"<td>{_decision_badge(c.get('gate_decision'))}</td>"
        f'<td class="reasons">{escape(c.get("gate_reasons") or "")}</td>'
        f"<td>{escape(', '.join(c.get('aliases') or []))}</td>"
        f"<td>{link(c.get('model_card'), 'card')} {link(c.get('lineage'), 'lineage')}"
        f" {link(c.get('run_url'), 'run')}"
        f" {link(c.get('version_url'), 'version')}</td>"
    )


def _quarantine_state(q: QuarantineEntry) -> str:
    if q.get("waiting"):
        return "<b>waiting for action</b>"
    if q.get("forced_reason"):
        return escape(f"published by override: {q['forced_reason']}")
    return "rows set aside, the rest published"


def _quarantine_cells(q: QuarantineEntry) -> str:
    return (
        f"<td>{escape(q['table'])}</td><td>{escape(q['interval'])}</td><td>{escape(q.get('decision'))}</td>"
        f"<td>{escape(q.get('quarantined_rows'))} of {escape(q.get('rows'))}</td>"
        f"<td>{escape(', '.join(q.get('failed') or []))}</td><td>{_quarantine_state(q)}</td>"
        f"<td>{link(q.get('data_docs'), 'Data Docs')}</td>"
    )


def _requests(mon: MonitoringSection) -> str:
    head = ("request", "created", "version", "day", "reasons", "status", "taken by train_model run")
    return rows_table(mon.get("requests") or [], "No retraining request so far.", head, _request_cells)


def _alert_cells(a: AlertEntry) -> str:
    return (
        f"<td>{escape(a.get('sent_at') or '')}</td><td>{escape(a.get('subject'))}</td>"
        f"<td>{escape(', '.join(a.get('channels') or []) or 'none configured (logged and kept)')}</td>"
    )


def _alerts(mon: MonitoringSection) -> str:
    head = ("raised", "alert", "sent through")
    return rows_table(mon.get("alerts") or [], "No alert raised so far.", head, _alert_cells)


def _candidates(candidates: list[VersionEntry]) -> str:
    head = ("version", "registered", "candidate", "gate", "reasons", "aliases", "links")
    return rows_table(candidates, "No registered version yet.", head, _candidate_cells)


def _quarantine_table(quarantine: QuarantineSection) -> str:
    recent = quarantine.get("recent") or []
    head = ("table", "interval", "decision", "rows quarantined", "failed checks", "state", "validation")
    listing = rows_table(recent, "Nothing quarantined.", head, _quarantine_cells)
    if not recent:
        return listing
    return (
        listing + '<p class="muted">Waiting for action: fix the source and clear the validate task, or '
        "publish with a reason (Params of ingest_flights); README, On call, PartitionQuarantinedError.</p>"
    )


def render(snap: Snapshot) -> str:
    """The whole page."""
    champion = snap.get("champion")
    errors = snap.get("errors") or []
    error_box = ""
    if errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in errors)
        error_box = f'<div class="errors"><b>Could not read:</b><ul>{items}</ul></div>'
    mon = snap.get("monitoring") or {}
    mlflow = (
        link(snap.get("model_url"), "MLflow registry") or '<span class="muted">MLflow: local database</span>'
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Model health · {escape(snap.get("model_name"))}</title><style>{CSS}</style></head><body>
<h1>Model health · {escape(snap.get("model_name"))}</h1>
<div class="muted">Recorded state as of {escape(snap.get("generated_at"))}
 (read in {escape(snap.get("elapsed_ms"))} ms) ·
 {link("/", "Airflow", new_tab=False)} · {mlflow} ·
 {link("/dags/monitor_model", "monitor_model runs", new_tab=False)} ·
 {link("/dags/train_model", "train_model runs", new_tab=False)} · runbook: README, On call</div>
{error_box}
<div class="cards">{_champion_card(champion)}{_shadow_card(snap.get("shadow"), champion)}
{_serving_card(snap.get("serving") or {}, champion)}
{_freshness_card(mon.get("freshness"))}{_quarantine_card(snap.get("quarantine") or {})}</div>
<h2>Last nights (the champion)</h2>{_nights(mon)}
<h2>System health</h2>{_system(mon)}
<h2>Retraining requests</h2>{_requests(mon)}
<h2>Alerts raised</h2>{_alerts(mon)}
<h2>Recent candidates</h2>{_candidates(snap.get("candidates") or [])}
<h2>Quarantined intervals</h2>{_quarantine_table(snap.get("quarantine") or {})}
</body></html>"""
