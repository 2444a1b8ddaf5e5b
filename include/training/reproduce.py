"""`make reproduce VERSION=n` (`python -m include.training.reproduce n`): rebuild a registered
version from its lineage record and show that it is the same model.

1. Every recorded input still exists with the same sha256: the raw, validated and feature
   partitions the training set stood on, and the feature definitions (the FeatureService's hash).
   Any difference is named (which file, which table and interval, recorded vs now) and stops here.
2. The training set is rebuilt through Feast for the recorded window and lead, split at the
   recorded holdout start; its canonical sha256 must equal the recorded one.
3. The recorded candidate is fitted again with its recorded parameters and seed (one thread, as
   train_candidate fits), in a new MLflow run tagged `reproduction_of`.
4. Its holdout metrics and predictions are compared with the registered model's on the same
   holdout: identical (max |Δp| = 0), or the exit status says what differs.

Exit status: 0 identical; 1 the rebuilt set or model differs; 2 an input changed or the version
is unknown or has no recorded training set. No Airflow here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from include.core.settings import Settings, get_settings
from include.registry.lineage import FileRef, LineageRecord

EXIT_SAME, EXIT_DIFFERS, EXIT_INPUTS = 0, 1, 2
NOT_SPEC = {"seed", "threshold", "shuffle_labels"}  # candidate params that are not the model's


@dataclass
class Reproduction:
    version: str
    problems: list[str] = field(default_factory=list)  # inputs that changed (exit 2)
    differences: list[str] = field(default_factory=list)  # what the rebuild changed (exit 1)
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (recorded, now)
    max_abs_diff: float | None = None
    run_id: str | None = None
    checked: dict[str, int] = field(default_factory=dict)  # zone -> files whose hash was checked
    rebuilt_set: tuple[int, str] | None = None  # rows, sha256 of the rebuilt training set

    @property
    def exit_code(self) -> int:
        return EXIT_INPUTS if self.problems else EXIT_DIFFERS if self.differences else EXIT_SAME


def changed_inputs(record: LineageRecord, definitions_now: str) -> list[str]:
    """Every recorded input that is gone or whose bytes changed, named for a person."""
    from include.lake import storage
    from include.lake.partitions import file_sha256

    problems = []
    files: list[tuple[str, FileRef]] = [
        *(("raw", f) for f in record["raw_partitions"]),
        *(("validated", f) for f in record["validated_partitions"]),
        *(("features", f) for f in record["features"].get("partitions") or []),
    ]
    for zone, f in files:
        where = f"{zone} partition {f['table']} {f['interval']} ({f['path']})"
        if not storage.exists(f["path"]):
            problems.append(f"{where} is gone")
        elif (now := file_sha256(f["path"])) != f["sha256"]:
            problems.append(f"{where} changed: sha256 recorded {f['sha256'][:12]}, now {now[:12]}")
    recorded = record["features"].get("definitions_sha256")
    if recorded and recorded != definitions_now:
        service = record["features"].get("feature_service")
        problems.append(
            f"FeatureService {service}: its feature definitions changed since training "
            f"(sha256 recorded {recorded[:12]}, now {definitions_now[:12]})"
        )
    return problems


def candidate_spec(params: dict[str, str]) -> dict[str, Any]:
    """The candidate spec from its logged params (MLflow keeps them as strings)."""

    def value(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    return {k: value(v) if k != "model" else v for k, v in params.items() if k not in NOT_SPEC}


def reproduce(settings: Settings, version: str) -> Reproduction:
    from include.features.store import definitions_sha256, open_store
    from include.registry.lineage import collect

    out = Reproduction(version)
    record, meta = collect(settings, version)
    if not record["training_set"].get("sha256"):
        out.problems.append(
            f"version {version} has no recorded training set hash (trained before lineage records)"
        )
        return out
    out.problems = changed_inputs(record, definitions_sha256())
    out.checked = {
        "raw": len(record["raw_partitions"]),
        "validated": len(record["validated_partitions"]),
        "feature": len(record["features"].get("partitions") or []),
    }
    if out.problems:
        return out
    store = open_store(settings)
    _rebuild_and_compare(settings, store, record, meta, out)
    return out


def _rebuild_and_compare(
    settings: Settings, store: Any, record: LineageRecord, meta: dict[str, Any], out: Reproduction
) -> None:
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_limits

    from include.features.training_set import build_training_set
    from include.lake.partitions import frame_sha256
    from include.registry import tracking
    from include.training import candidates as training

    ts = record["training_set"]
    start, end = datetime.fromisoformat(ts["window_start"]), datetime.fromisoformat(ts["window_end"])
    rebuilt = build_training_set(
        store,
        settings.lake_root,
        start,
        end,
        str(record["features"]["feature_service"]),
        timedelta(hours=float(ts["prediction_lead_hours"])),
    )
    now = frame_sha256(rebuilt.frame, "flight_id")
    out.rebuilt_set = (len(rebuilt.frame), now)
    if now != ts["sha256"]:
        out.differences.append(
            f"the rebuilt training set differs: sha256 recorded {ts['sha256'][:12]}, now {now[:12]}"
        )
    holdout_days = (end - pd.Timestamp(ts["holdout_start"]).to_pydatetime()).days
    split = training.time_split(rebuilt.frame, "scheduled_departure", holdout_days)
    features = list(meta["feature_columns"])
    columns = training.input_columns(features)
    spec = candidate_spec(record["training"]["params"])
    with threadpool_limits(limits=1):
        model, _ = training.fit(spec, split.train, features)
    y = split.holdout["late"].to_numpy()
    p_now = training.scores(model, split.holdout, columns)
    registered = tracking.load_model(settings, out.version, candidate=True)
    p_then = training.scores(registered, split.holdout, columns)
    out.max_abs_diff = float(np.abs(p_now - p_then).max(initial=0.0))
    if out.max_abs_diff != 0.0:
        out.differences.append(f"holdout predictions differ: max |Δp| {out.max_abs_diff:.3g}")
    now_metrics = training.metrics(y, p_now, settings.decision_threshold)
    for name, recorded in sorted(record["training"]["metrics"].items()):
        if name in now_metrics:
            out.metrics[name] = (float(recorded), float(now_metrics[name]))
            if float(recorded) != float(now_metrics[name]):
                out.differences.append(f"{name}: recorded {recorded!r}, now {now_metrics[name]!r}")
    out.run_id = _log_run(settings, out, spec)


def _log_run(settings: Settings, out: Reproduction, spec: dict[str, Any]) -> str:
    import mlflow

    from include.registry import tracking

    with tracking.registry_call(f"log the reproduction of version {out.version}"):
        tracking.client(settings)
        with mlflow.start_run(
            experiment_id=tracking.experiment_id(settings), run_name=f"reproduce v{out.version}"
        ) as run:
            mlflow.set_tags(
                {
                    "reproduction_of": out.version,
                    **tracking.code_tags(),
                    "identical": str(not out.differences).lower(),
                }
            )
            mlflow.log_params(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in spec.items()}
            )
            mlflow.log_metrics({name: now for name, (_, now) in out.metrics.items()})
            mlflow.log_dict(
                {"differences": out.differences, "max_abs_diff": out.max_abs_diff}, "reproduction.json"
            )
            return run.info.run_id


def report(out: Reproduction) -> str:
    lines = [f"reproduction of version {out.version}"]
    if out.problems:
        lines += [
            "  recorded inputs that changed (nothing was rebuilt):",
            *(f"    {p}" for p in out.problems),
        ]
        return "\n".join(lines)
    files = ", ".join(f"{n} {zone}" for zone, n in out.checked.items())
    lines.append(f"  inputs unchanged: {files} partitions and the feature definitions (sha256 each)")
    if out.rebuilt_set:
        rows, sha = out.rebuilt_set
        lines.append(f"  training set rebuilt through Feast: {rows} rows, sha256 {sha[:12]}")
    lines.append(f"  {'metric':<26}{'recorded':>14}{'rebuilt':>14}")
    lines += [f"  {name:<26}{a:>14.6f}{b:>14.6f}" for name, (a, b) in out.metrics.items()]
    lines.append(f"  holdout predictions: max |Δp| {out.max_abs_diff}")
    lines.append(f"  MLflow run of the reproduction: {out.run_id}")
    lines += [f"  DIFFERS: {d}" for d in out.differences] or [
        "  identical: same training set, metrics and predictions"
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.training.reproduce", description=__doc__.splitlines()[0]
    )
    parser.add_argument("version", help="registered model version number")
    args = parser.parse_args(argv)
    try:
        out = reproduce(get_settings(), args.version)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUTS
    print(report(out))
    return out.exit_code


if __name__ == "__main__":
    sys.exit(main())
