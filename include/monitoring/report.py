"""The nightly monitoring report: one self-contained HTML page (tables + plots as inline PNG).

Written for a person: what was checked, what breached and since when, which features moved and
how their distributions differ from the training reference, how the score distribution and the
labelled days' performance evolve. No network is needed to open it (no CDN, no scripts).
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import TYPE_CHECKING, Any

from include.core.html import STATUS_COLOURS, fmt, table
from include.monitoring.policy import ATTRIBUTION, FAIRNESS

if TYPE_CHECKING:
    import pandas as pd


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _cell(column: str, value: Any) -> str:
    """One cell of a report table; a check's status in its colour."""
    style = ""
    if column == "status":
        style = f' style="color:{STATUS_COLOURS.get(str(value), "#000")};font-weight:bold"'
    return f"<td{style}>{fmt(value)}</td>"


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Rows (dicts) as a table of the given columns (a missing key shows as an en dash)."""
    return table(columns, ("".join(_cell(c, row.get(c)) for c in columns) for row in rows))


def drift_bar_figure(features: list[dict[str, Any]]) -> Any:
    """Each feature's drift statistic against its threshold (drifted ones in red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((f for f in features if not math.isnan(f["value"])), key=lambda f: f["value"])
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.25 * len(rows))))
    ax.barh(
        [f"{f['feature']} ({f['statistic']})" for f in rows],
        [f["value"] for f in rows],
        color=["#c0392b" if f["drifted"] else "#5d6d7e" for f in rows],
    )
    ax.scatter([f["threshold"] for f in rows], range(len(rows)), marker="|", s=200, color="#c0392b")
    ax.set_xlabel(
        "distance: Wasserstein in reference std (numbers) / Jensen-Shannon (categories); | threshold"
    )
    ax.set_title("Feature drift against the training reference")
    return fig


def distributions_figure(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[dict[str, Any]]
) -> Any:
    """Reference vs tonight for the most drifted features (histograms / category shares)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    top = sorted(
        (f for f in features if not math.isnan(f["value"])),
        key=lambda f: -f["value"] / max(f["threshold"], 1e-9),
    )[:6]
    if not top:
        return None
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    for ax, f in zip(axes.flat, top, strict=False):
        name = f["feature"]
        if f["kind"] == "categorical":
            r = reference[name].astype(str).value_counts(normalize=True)
            c = current[name].astype(str).value_counts(normalize=True)
            cats = list((r + c.reindex(r.index, fill_value=0)).sort_values(ascending=False).index[:10])
            x = np.arange(len(cats))
            ax.bar(x - 0.2, r.reindex(cats, fill_value=0), width=0.4, label="reference")
            ax.bar(x + 0.2, c.reindex(cats, fill_value=0), width=0.4, label="tonight")
            ax.set_xticks(x, cats, rotation=45, fontsize=7)
        else:
            r = pd.to_numeric(reference[name], errors="coerce").dropna()
            c = pd.to_numeric(current[name], errors="coerce").dropna()
            both = pd.concat([r, c])
            lo, hi = (both.quantile(0.005), both.quantile(0.995)) if len(both) else (0, 1)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(r.clip(lo, hi), bins=bins, density=True, alpha=0.5, label="reference")
            ax.hist(c.clip(lo, hi), bins=bins, density=True, alpha=0.5, label="tonight")
        ax.set_title(
            f"{name}: {f['statistic']} {f['value']:.2f} (threshold {f['threshold']:.2f})", fontsize=9
        )
    for ax in list(axes.flat)[len(top) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Most drifted features: training reference vs tonight's served values")
    fig.tight_layout()
    return fig


def scores_figure(reference_scores: Any, scores: Any) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 26).tolist()
    ax.hist(reference_scores, bins=bins, density=True, alpha=0.5, label="champion's holdout")
    ax.hist(scores, bins=bins, density=True, alpha=0.5, label="tonight")
    ax.set_xlabel("P(late)")
    ax.set_title("Prediction drift: score distribution")
    ax.legend(fontsize=8)
    return fig


def trends_figure(metrics: pd.DataFrame) -> Any:
    """The time series that matter, one panel each, by day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("feature_drift", "value", "share of drifted features"),
        ("prediction_drift", "wasserstein", "score distance (std)"),
        ("performance", "roc_auc", "ROC AUC (labelled days)"),
        ("performance", "late_share_gap", "late share - mean score"),
        ("volume", "rows", "flights scored"),
        ("freshness", "lag_hours", "online store lag (h)"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(12, 5.5))
    for ax, (check, name, title) in zip(axes.flat, panels, strict=True):
        series = metrics[(metrics["check"] == check) & (metrics["name"] == name)].sort_values("day")
        if len(series):
            ax.plot(series["day"], series["value"], marker="o")
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=30)
    fig.suptitle("Trends of this model version, by departure day")
    fig.tight_layout()
    return fig


FEATURE_COLUMNS = [
    "feature",
    "kind",
    "statistic",
    "value",
    "threshold",
    "drifted",
    "reference_day_max",
    "psi",
    "ks",
    "reference_mean",
    "current_mean",
    "current_missing_share",
]
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
    "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}"
    "th{background:#f2f3f4}img{max-width:100%}"
)


def _all_checks(
    night: dict[str, Any],
    performance: list[dict[str, Any]],
    freshness: dict[str, Any] | None,
    health: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Tonight's checks, freshness, the system's health, and the labelled checks of each judged day."""
    checks = list(night["checks"]) + ([freshness] if freshness else []) + list(health or [])
    for p in performance:
        checks += [{**c, "check": f"{c['check']} ({p['day']})"} for c in p["checks"]]
    return checks


def _reasons_sections(performance: list[dict[str, Any]]) -> list[str]:
    """Attribution and fairness of each judged day: the model's reasons and its slice gaps."""
    sections: list[str] = []
    for p in performance:
        for c in p["checks"]:
            metrics = c.get("metrics") or {}
            if c["check"] == ATTRIBUTION and metrics:
                rows = [
                    {"feature": k.removeprefix("share."), "share tonight": f"{v:.1%}"}
                    for k, v in sorted(metrics.items(), key=lambda kv: -kv[1])
                    if k.startswith("share.")
                ]
                sections += [
                    f"<h2>Attribution, {html.escape(p['day'])}</h2>",
                    f"<p>{html.escape(c['status'])}: {html.escape(c['detail'])}</p>",
                    _table(rows, ["feature", "share tonight"]),
                ]
            elif c["check"] == FAIRNESS and metrics:
                rows = [
                    {
                        "gap": k.removeprefix("gap."),
                        "tonight": f"{v:.3f}",
                        "widening vs reference": f"{metrics.get('widening.' + k[4:], 0.0):+.3f}",
                    }
                    for k, v in sorted(metrics.items())
                    if k.startswith("gap.")
                ]
                sections += [
                    f"<h2>Fairness across slices, {html.escape(p['day'])}</h2>",
                    f"<p>{html.escape(c['status'])}: {html.escape(c['detail'])}</p>",
                    _table(rows, ["gap", "tonight", "widening vs reference"]),
                ]
    return sections


def _drift_ratio(feature: dict[str, Any]) -> float:
    """How far past its threshold a feature is (most drifted first when sorted descending)."""
    if math.isnan(feature["value"]):
        return -1.0
    return float(feature["value"] / max(feature["threshold"], 1e-9))


def _feature_sections(
    features: list[dict[str, Any]], reference: pd.DataFrame, served: pd.DataFrame
) -> list[str]:
    if not features:
        return []
    sections = ["<h2>Feature drift</h2>", _png(drift_bar_figure(features))]
    fig = distributions_figure(reference, served, features)
    if fig is not None:
        sections.append(_png(fig))
    sections.append(_table(sorted(features, key=lambda f: -_drift_ratio(f)), FEATURE_COLUMNS))
    return sections


def render(
    *,
    model_name: str,
    night: dict[str, Any],
    performance: list[dict[str, Any]],
    freshness: dict[str, Any] | None,
    streaks: dict[str, int],
    policy: dict[str, Any],
    reference: pd.DataFrame,
    served: pd.DataFrame,
    metrics: pd.DataFrame,
    links: dict[str, str],
    health: list[dict[str, Any]] | None = None,
) -> str:
    """The whole page as a string."""
    sections = [
        f"<h1>Monitoring: {html.escape(model_name)} version {html.escape(night['model_version'])}, "
        f"flights departing {html.escape(night['day'])}</h1>",
        f"<p>Scored interval {html.escape(night['interval'])}: {night['rows']} flights. "
        + " ".join(f'<a href="{html.escape(u)}">{html.escape(k)}</a>' for k, u in links.items())
        + "</p>",
        "<h2>Checks</h2>",
        _table(
            _all_checks(night, performance, freshness, health),
            ["check", "status", "value", "threshold", "detail"],
        ),
        f"<h2>Nights in a row breached (policy: alert at {policy.get('consecutive_nights')})</h2>",
        _table([{"check": k, "nights": v} for k, v in streaks.items()], ["check", "nights"]),
        "<h2>Trends</h2>",
        _png(trends_figure(metrics)) if len(metrics) else "<p>No history yet.</p>",
        *_feature_sections(night["features"], reference, served),
        *_reasons_sections(performance),
    ]
    if len(served) and "score" in reference:
        sections += [
            "<h2>Prediction drift</h2>",
            _png(scores_figure(reference["score"].dropna(), served["score"])),
        ]
    sections += [
        "<h2>Policy</h2>",
        _table([{"setting": k, "value": v} for k, v in policy.items()], ["setting", "value"]),
    ]
    title = f"{model_name} v{night['model_version']} {night['day']}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>"
    )
