"""`make lineage VERSION=n` (`python -m include.oncall.lineage n`): where a model came from.

Prints the version's lineage record (include/registry/lineage.py) as a tree, with the prediction
batches it has scored read from the prediction log, and writes a page with the chain as a graph
(`<data>/lineage/<model>_v<n>.html`, self-contained: no script, no CDN). An unknown version is an
error that names the versions that exist.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path
from typing import Any

from include.core.settings import Settings, get_settings
from include.registry.lineage import BatchRef, LineageRecord, collect


def batches(settings: Settings, version: str) -> list[BatchRef]:
    """The batch predictions the version made, by interval, from the prediction log."""
    import sqlalchemy as sa

    from include.serving import prediction_log

    eng = prediction_log.engine(settings.prediction_log_url)
    log = prediction_log.PREDICTION_LOG
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.batch_key, sa.func.count(), sa.func.max(log.c.predicted_at))
                .where(
                    log.c.source == "batch",
                    log.c.model_name == settings.model_name,
                    log.c.model_version == str(version),
                )
                .group_by(log.c.batch_key)
                .order_by(log.c.batch_key)
            ).all()
    finally:
        eng.dispose()
    return [
        BatchRef(batch_key=str(key), flights=int(n), predicted_at=None if at is None else str(at))
        for key, n, at in rows
    ]


def record(settings: Settings, version: str) -> LineageRecord:
    """The version's lineage as of now (LookupError naming the versions that exist, if none)."""
    return collect(settings, version, batches(settings, version))[0]


def _short(sha: str | None) -> str:
    return (sha or "not recorded")[:12]


def _files(title: str, files: list[Any]) -> list[str]:
    lines = [f"{title}: {len(files)} files"]
    for f in files:
        rows = "" if f.get("rows") is None else f", {f['rows']} rows"
        lines.append(f"    {f['table']} {f['interval']}  sha256 {_short(f['sha256'])}{rows}")
    return lines


def tree(r: LineageRecord) -> str:
    """The record as text, in the order data flowed."""
    ts, feat, code, tr, gate = r["training_set"], r["features"], r["code"], r["training"], r["gate"]
    failed = [c for c in r["validation"] if c.get("success") is False]
    lines = [
        f"{r['model_name']} version {r['version']}",
        f"  source intervals: {len(r['source_intervals'])} ({', '.join(r['source_intervals'][:1])} … "
        f"{', '.join(r['source_intervals'][-1:])})",
        *("  " + line for line in _files("raw partitions", r["raw_partitions"])),
        f"  validation: {len(r['validation'])} results, {len(failed)} failed "
        f"(suites {', '.join(sorted({str(c.get('suite')) for c in r['validation']})) or 'none'})",
        *(
            f"    {c['table']} {c['interval']}: {'passed' if c.get('success') else 'FAILED'}"
            f" ({c.get('decision') or 'no record'}; quarantined {c.get('quarantined_rows') or 0})"
            f"  {c.get('data_docs_page') or ''}"
            for c in r["validation"]
        ),
        *("  " + line for line in _files("validated partitions", r["validated_partitions"])),
        f"  features: FeatureService {feat.get('feature_service')}, definitions sha256 "
        f"{_short(feat.get('definitions_sha256'))}, {len(feat.get('partitions') or [])} feature partitions",
        f"  training set: {ts.get('window_start')} → {ts.get('window_end')}, {ts.get('rows')} rows "
        f"({ts.get('train_rows')} train / {ts.get('holdout_rows')} holdout from {ts.get('holdout_start')}), "
        f"sha256 {_short(ts.get('sha256'))}",
        f"  code: commit {code['git_commit'][:12]} (dirty: {code['git_dirty']}), lock sha256 "
        f"{_short(code['lock_sha256'])}, DAG {code['dag_id']} run {code['dag_run_id']} "
        f"version {code['dag_version_id'] or 'not recorded'}",
        f"  training: {tr.get('candidate')} seed {tr.get('seed')} params {tr.get('params')}",
        f"    metrics: {', '.join(f'{k} {v:.4g}' for k, v in sorted((tr.get('metrics') or {}).items()))}",
        f"  gate: {gate.get('decision') or 'not evaluated'} ({'; '.join(gate.get('reasons') or []) or '-'}); "
        f"approver {gate.get('approver') or '-'}",
        f"  deployments: {len(r['deployments'])}",
        *(
            f"    {d.get('event')} at {d.get('at')} by {d.get('by') or '-'}: {d.get('reason') or ''}"
            f" (previous {d.get('previous') or d.get('next') or '-'})"
            + (
                f" [{d['state']}; promotion check: {d.get('decision') or 'not yet'}]"
                if d.get("state")
                else ""
            )
            for d in r["deployments"]
        ),
        f"  prediction batches: {len(r['prediction_batches'])}",
        *(f"    {b['batch_key']}: {b['flights']} flights" for b in r["prediction_batches"]),
    ]
    if r["missing"]:
        lines.append("  missing: " + "; ".join(f"{k}: {v}" for k, v in r["missing"].items()))
    return "\n".join(lines)


STAGES = (
    ("source intervals", lambda r: f"{len(r['source_intervals'])} days"),
    ("raw partitions", lambda r: f"{len(r['raw_partitions'])} files"),
    (
        "validation",
        lambda r: f"{sum(1 for c in r['validation'] if c.get('success'))}/{len(r['validation'])} passed",
    ),
    ("validated partitions", lambda r: f"{len(r['validated_partitions'])} files"),
    ("features", lambda r: str(r["features"].get("feature_service"))),
    (
        "training set",
        lambda r: f"{r['training_set'].get('rows')} rows, {_short(r['training_set'].get('sha256'))}",
    ),
    ("code", lambda r: r["code"]["git_commit"][:12]),
    ("training", lambda r: str(r["training"].get("candidate"))),
    ("gate", lambda r: str(r["gate"].get("decision"))),
    ("deployments", lambda r: f"{len(r['deployments'])} moves"),
    ("prediction batches", lambda r: f"{len(r['prediction_batches'])} batches"),
)


def page(r: LineageRecord) -> str:
    """The chain as an inline SVG graph above the text tree: one self-contained HTML file."""
    box_w, box_h, gap = 190, 54, 26
    width = len(STAGES) * (box_w + gap)
    parts = []
    for i, (name, summary) in enumerate(STAGES):
        x = i * (box_w + gap)
        parts.append(
            f'<rect x="{x}" y="10" width="{box_w}" height="{box_h}" rx="6" fill="#eef3fb" stroke="#3b6bb5"/>'
            f'<text x="{x + 10}" y="32" font-weight="bold">{html.escape(name)}</text>'
            f'<text x="{x + 10}" y="52">{html.escape(summary(r)[:26])}</text>'
        )
        if i:
            parts.append(
                f'<line x1="{x - gap}" y1="37" x2="{x}" y2="37" stroke="#3b6bb5" marker-end="url(#a)"/>'
            )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{box_h + 20}" '
        'font-family="sans-serif" font-size="12"><defs><marker id="a" markerWidth="8" markerHeight="8" '
        'refX="8" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#3b6bb5"/></marker></defs>'
        + "".join(parts)
        + "</svg>"
    )
    title = f"Lineage of {html.escape(r['model_name'])} version {html.escape(r['version'])}"
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
        f'<body style="font-family: sans-serif"><h1>{title}</h1><div style="overflow-x:auto">{svg}</div>'
        f"<pre>{html.escape(tree(r))}</pre></body></html>"
    )


def page_path(settings: Settings, version: str) -> Path:
    return Path(settings.data_dir) / "lineage" / f"{settings.model_name}_v{version}.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.oncall.lineage", description=__doc__.splitlines()[0]
    )
    parser.add_argument("version", help="registered model version number")
    parser.add_argument(
        "--html", type=Path, default=None, help="where to write the page (default: under the data folder)"
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        r = record(settings, args.version)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(tree(r))
    out = args.html or page_path(settings, args.version)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(r), encoding="utf-8")
    print(f"\npage with the graph: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
