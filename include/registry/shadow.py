"""The shadow stage in the registry: the `shadow` alias, its start, its promotion, its retirement. I/O.

A challenger that passed the gate can go to `shadow` instead of replacing the champion: it is
smoke-tested like a deployment (so it loads through the same trusted loader), then
score_flights scores each night's flights with it beside the champion (rows marked `shadow` in
the prediction log, never served), and promote_shadow compares the two on exactly the same
labelled flights (include/monitoring/shadow.py decides). Promotion is a deployment (smoke test,
`champion` moved, the service verified, or restored); retirement removes the alias. Every move
is recorded on the version (`shadow.*` tags) and its model card.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.core.settings import SHADOW, Settings
from include.registry import model_card, tracking
from include.registry.deploy import DeployResult, move_champion, probe_from_lake
from include.registry.smoke import run_smoke_test

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("airflow.task")


def current(settings: Settings) -> tracking.AliasedVersion | None:
    """The version in shadow, None when there is none (RegistryUnavailableError if MLflow is down)."""
    return tracking.get_alias(settings, SHADOW)


def _tag(settings: Settings, version: str, **tags: str) -> None:
    with tracking.registry_call(f"record the shadow stage of version {version}"):
        client = tracking.client(settings)
        for key, value in tags.items():
            client.set_model_version_tag(settings.model_name, str(version), f"{SHADOW}.{key}", str(value))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def start(settings: Settings, version: str, sample: pd.DataFrame, record: dict[str, str]) -> dict[str, Any]:
    """Smoke-test `version` (as a deployment would) and point `shadow` at it; a shadow already
    there is retired (replaced). The champion is not touched."""
    smoke = run_smoke_test(settings, version, sample)  # DeploymentError when it fails: no shadow
    previous = current(settings)
    if previous is not None and previous.version != str(version):
        retire(settings, previous.version, f"replaced by version {version}")
    with tracking.registry_call(f"move '{SHADOW}' to version {version}"):
        tracking.set_alias(settings, SHADOW, version, **record)
    _tag(settings, version, state="scoring")
    model_card.publish_or_warn(settings, str(version), "shadow")
    log.info(
        "version %s of %s is in shadow: scored beside the champion each night, never served; "
        "promote_shadow decides after its labelled nights",
        version,
        settings.model_name,
    )
    return {"version": str(version), "previous_shadow": previous.version if previous else None, **smoke}


def retire(settings: Settings, version: str, reason: str) -> None:
    """Remove `shadow` from `version` (when it still points there) and record why."""
    with tracking.registry_call(f"retire version {version} from '{SHADOW}'"):
        aliased = current(settings)
        if aliased is not None and aliased.version == str(version):
            tracking.client(settings).delete_registered_model_alias(settings.model_name, SHADOW)
    _tag(settings, version, state="retired", ended_at=_now(), end_reason=reason)
    model_card.publish_or_warn(settings, str(version), "shadow retired")
    log.warning("version %s retired from shadow: %s", version, reason)


def promote(
    settings: Settings, version: str, sample: pd.DataFrame, record: dict[str, str], reason: str
) -> DeployResult:
    """Deploy the shadow (smoke test, `champion` moved and verified, or restored), then end its
    shadow stage. A failed deployment leaves both aliases as they were."""
    # As a rollback does: the smoke test on the version's own holdout sample, the probe from the lake.
    smoke = run_smoke_test(settings, version, sample)
    result: DeployResult = {
        "smoke": smoke,
        **move_champion(settings, version, probe_from_lake(settings), record),
    }
    with tracking.registry_call(f"remove '{SHADOW}' from version {version}"):
        aliased = current(settings)
        if aliased is not None and aliased.version == str(version):
            tracking.client(settings).delete_registered_model_alias(settings.model_name, SHADOW)
    _tag(settings, version, state="promoted", ended_at=_now(), end_reason=reason)
    return result


def record_decision(settings: Settings, version: str, decision: dict[str, Any]) -> None:
    """The promotion check's decision on the version, like the gate's (`shadow.decision`, reasons)."""
    _tag(
        settings,
        version,
        decision=str(decision["decision"]),
        reasons="; ".join(decision["reasons"])[:4900],
        decided_at=_now(),
        labelled_nights=str(decision.get("labelled_nights", 0)),
    )
