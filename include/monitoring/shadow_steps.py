"""The promote_shadow steps: the shadow and the champion on the same labelled flights, the
decision (include/monitoring/shadow.py), and what it does (promote, retire, keep waiting). I/O.

A night counts when score_flights logged both versions for its flights and its labels are
complete by the monitoring rule (`labels_complete`: the outcomes of the day and the next
`label_wait_days` validated, enough of the flights labelled). Only flights both versions scored
are compared.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
import sqlalchemy as sa

from include.core.settings import Settings
from include.lake import sql
from include.lake.partitions import parse_interval_key
from include.monitoring.contracts import ShadowCheck
from include.monitoring.policy import MonitoringPolicy
from include.monitoring.reads import labelled_frame, night_day, outcome_days
from include.monitoring.shadow import Night, ShadowThresholds, decide
from include.monitoring.statistics import labels_complete
from include.registry import shadow as shadow_stage
from include.registry import tracking
from include.serving import prediction_log

log = logging.getLogger("airflow.task")


def thresholds(settings: Settings) -> ShadowThresholds:
    return ShadowThresholds(nights=settings.shadow_nights, max_nights=max(7, 2 * settings.shadow_nights))


def _rows(settings: Settings, shadow_version: str) -> pd.DataFrame:
    """Every batch and shadow row of the intervals the shadow scored."""
    log_table = prediction_log.PREDICTION_LOG
    with sql.connected(settings.prediction_log_url, prediction_log.METADATA) as eng, eng.connect() as conn:
        keys = sa.select(log_table.c.batch_key).where(
            log_table.c.source == "shadow", log_table.c.model_version == str(shadow_version)
        )
        query = sa.select(
            log_table.c.source,
            log_table.c.batch_key,
            log_table.c.flight_id,
            log_table.c.model_version,
            log_table.c.score,
            log_table.c.features,
        ).where(log_table.c.source.in_(prediction_log.BATCH_SOURCES), log_table.c.batch_key.in_(keys))
        return pd.read_sql(query, conn)


def paired_nights(
    settings: Settings, shadow_version: str, champion_version: str, policy: MonitoringPolicy
) -> list[Night]:
    """The nights both versions scored whose labels are complete, each with the flights both
    scored: flight_id, carrier, late, champion (score), shadow (score)."""
    rows = _rows(settings, shadow_version)
    have = outcome_days(settings.lake_root)
    nights = []
    for key, part in sorted(rows.groupby("batch_key"), key=lambda kv: str(kv[0])):
        champ = part[(part["source"] == "batch") & (part["model_version"] == str(champion_version))]
        shad = part[(part["source"] == "shadow") & (part["model_version"] == str(shadow_version))]
        if champ.empty or shad.empty:
            continue  # the champion changed since, or the shadow did not score this night
        carriers = [json.loads(f).get("carrier") for f in champ["features"]]
        pair = pd.DataFrame(
            {"flight_id": champ["flight_id"].astype("int64"), "carrier": carriers, "champion": champ["score"]}
        ).merge(
            pd.DataFrame({"flight_id": shad["flight_id"].astype("int64"), "shadow": shad["score"]}),
            on="flight_id",
        )
        day = night_day(*parse_interval_key(str(key)))
        labelled = labelled_frame(settings, pair, day, policy)
        if not labels_complete(day, have, len(pair), len(labelled), policy).complete:
            continue
        nights.append(Night(day.isoformat(), len(labelled), labelled))
    return nights


def check_shadow(settings: Settings, policy: MonitoringPolicy) -> ShadowCheck:
    """Compare the shadow with the champion on their labelled nights and record the decision on
    the shadow version (`shadow.decision`, reasons, nights), like the gate's."""
    shadow = shadow_stage.current(settings)
    champion = tracking.champion(settings)
    if shadow is None or champion is None:
        why = "no version is in shadow" if shadow is None else "no champion to compare the shadow with"
        log.info("nothing to check: %s", why)
        return ShadowCheck(
            shadow_version=shadow.version if shadow else None,
            champion_version=champion.version if champion else None,
            nights=[],
            decision=None,
        )
    nights = paired_nights(settings, shadow.version, champion.version, policy)
    decision = decide(nights, thresholds(settings))
    shadow_stage.record_decision(settings, shadow.version, dict(decision))
    log.info(
        "shadow version %s vs champion %s over %d labelled nights (%s): %s\n  %s"
        "\n  champion %s\n  shadow   %s",
        shadow.version,
        champion.version,
        len(nights),
        ", ".join(n.day for n in nights) or "none yet",
        decision["decision"].upper(),
        "\n  ".join(decision["reasons"]),
        decision["champion"],
        decision["shadow"],
    )
    return ShadowCheck(
        shadow_version=shadow.version,
        champion_version=champion.version,
        nights=[n.day for n in nights],
        decision=decision,
    )


def _reasons(check: ShadowCheck) -> list[str]:
    decision = check["decision"]
    return list(decision["reasons"]) if decision else []


def promote(settings: Settings, check: ShadowCheck, record: dict[str, str]) -> dict[str, Any]:
    """Deploy the shadow the check promoted (its own holdout for the smoke test)."""
    from include.training.reference import own_smoke_sample

    version = str(check["shadow_version"])
    reasons = "; ".join(_reasons(check))
    result = shadow_stage.promote(settings, version, own_smoke_sample(settings, version), record, reasons)
    log.warning(
        "PROMOTED: shadow version %s is the champion (was %s): %s", version, result["previous"], reasons
    )
    return dict(result)


def retire(settings: Settings, check: ShadowCheck) -> str:
    version = str(check["shadow_version"])
    shadow_stage.retire(settings, version, "; ".join(_reasons(check)))
    return version
