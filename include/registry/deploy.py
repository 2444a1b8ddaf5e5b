"""Deployment and rollback of the `champion` alias, verified on the serving surface.

deploy(): smoke-test the registered version (load it from the registry, score a fixed sample,
check the range and the single-flight latency) -> record the move on the new version's tags
(what it replaces, who, why) -> move `champion` -> the online service reloads -> it must report
the new version and answer a prediction with it. Any failure of the move, the reload or the
check puts `champion` back where it was (or removes it if there was none), reloads the service
and raises DeploymentError saying so (and saying so if the restore failed too). A retry finds
the version already champion and only verifies. rollback() moves `champion` to an earlier
version that passed the gate and its smoke test (or one overridden with a reason), after
smoke-testing it again. train_model's deploy_champion and rollback_model's task share one
one-slot pool (`champion_alias`): they never run at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

import pandas as pd

from include.core.settings import CHAMPION, Settings
from include.registry import model_card, tracking
from include.registry.smoke import DeploymentError, SmokeResult, run_smoke_test

log = logging.getLogger("airflow.task")


class Probe(TypedDict):
    """The flight the serving check asks the service about."""

    flight_id: int
    tailnum: str | None
    carrier: str
    origin: str
    dest: str
    scheduled_departure: str


class ChampionMove(TypedDict):
    """Where `champion` went (the `champion_model` asset event carries version and previous)."""

    version: str
    previous: str
    probe: dict[str, Any] | None


class DeployResult(ChampionMove):
    smoke: SmokeResult


def serving_reload(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    """Ask the online service to re-read `champion`; returns what it now serves."""
    import httpx

    auth = {"Authorization": f"Bearer {settings.serving_token}"}  # the service answers 401 without it
    response = httpx.post(f"{settings.serving_url}/reload", headers=auth, timeout=timeout)
    response.raise_for_status()
    return response.json()


def serving_check(settings: Settings, version: str, probe: Probe) -> dict[str, Any]:
    """The service reports `version` and scores a probe request with it."""
    import httpx

    served = httpx.get(f"{settings.serving_url}/version", timeout=10).json().get("version")
    if str(served) != str(version):
        raise DeploymentError(f"the online service serves version {served}, expected {version}")
    answer = httpx.post(f"{settings.serving_url}/predict", json=probe, timeout=10)
    if answer.status_code != 200:
        raise DeploymentError(
            f"the online service answered {answer.status_code} to a probe: {answer.text[:300]}"
        )
    body = answer.json()
    if str(body.get("model_version")) != str(version) or not 0.0 <= float(body.get("score", -1)) <= 1.0:
        raise DeploymentError(f"the online service's probe answer is wrong: {body}")
    return body


def _restore(settings: Settings, previous: tracking.AliasedVersion | None, failed: str) -> str:
    """Put `champion` back on `previous` (or remove it when there was none); says what it is now."""
    client = tracking.client(settings)
    if previous is None:
        try:
            client.delete_registered_model_alias(settings.model_name, CHAMPION)
        except Exception as exc:
            if not tracking.is_missing(exc):  # already absent: the move itself never happened
                raise
        state = "no version has the alias champion (as before)"
    else:
        tracking.set_alias(settings, CHAMPION, previous.version, restored_after_failed_deploy_of=failed)
        state = f"champion is version {previous.version} again"
    try:
        serving_reload(settings)
    except Exception as exc:  # the service polls the alias too; say so
        state += f"; the online service could not be reloaded now ({exc}) and will follow within its poll"
    return state


def responder_name(response: dict[str, Any] | None) -> str | None:
    """The name (else the id) of who answered a Human-in-the-loop request, None when nobody did."""
    user = (response or {}).get("responded_by_user") or {}
    name = user.get("name") or user.get("id") if isinstance(user, dict) else user
    return str(name) if name else None


def approver(require_approval: bool, approval: dict[str, Any] | None) -> str:
    """Who approved a deployment, for the champion's tags and its model card.

    `approval` is what approve_deployment returned (its responder), None when it did not run or
    was marked success by hand."""
    if not require_approval:
        return "not required (require_approval off)"
    return responder_name(approval) or "approved (responder not recorded)"


def _previous_of_retry(
    settings: Settings, current: tracking.AliasedVersion, record: dict[str, str]
) -> tuple[tracking.AliasedVersion | None, str, bool]:
    """`version` already is the champion: what it replaced (from its first attempt's tags, never
    the version itself) and whether this is a retry of the same run (then a failed verification
    restores that previous version; otherwise `champion` is left alone and only verified)."""
    previous_version = current.tags.get("champion.previous", "none")
    retry = bool(record.get("dag_run")) and current.tags.get("champion.dag_run") == record.get("dag_run")
    if previous_version in ("none", current.version):
        return None, previous_version, retry
    mv = tracking.client(settings).get_model_version(settings.model_name, previous_version)
    return tracking.AliasedVersion(str(mv.version), mv.run_id, dict(mv.tags)), previous_version, retry


def move_champion(
    settings: Settings,
    version: str,
    probe: Probe,
    record: dict[str, str],
    event: str = "deployed",
) -> ChampionMove:
    """Point `champion` at `version`, make serving load it and verify, as one transaction.

    The version's tags (what it replaces, who, why) are written first; the alias move, the reload
    and the check run in one guarded block, and any failure there puts `champion` back (or
    removes it when there was none); if that restore fails too, the error says both. Idempotent:
    when `version` already is the champion (a retry) only the verification runs and `previous`
    stays what the first attempt recorded. Once verified, the model cards of the new champion
    (`event`: deployed or rollback) and of the one it replaced are rebuilt; a card that fails to
    build is logged, never undoes the move."""
    current = tracking.champion(settings)
    already = current is not None and current.version == str(version)
    if current is not None and already:
        previous, previous_version, restore_on_failure = _previous_of_retry(settings, current, record)
    else:
        previous, previous_version, restore_on_failure = current, current.version if current else "none", True
        tracking.record_alias_move(settings, CHAMPION, version, previous=previous_version, **record)
    reloaded: dict[str, Any] = {}
    try:
        if not already:
            tracking.client(settings).set_registered_model_alias(settings.model_name, CHAMPION, str(version))
        reloaded = serving_reload(settings)
        answer = serving_check(settings, version, probe)
    except Exception as exc:
        said = f" (the service says: {reloaded['error']})" if reloaded.get("error") else ""
        where = (
            f"moving champion to {settings.model_name} version {version} failed on the serving surface "
            f"({settings.serving_url}): {exc}{said}."
        )
        if not restore_on_failure:
            raise DeploymentError(
                f"{where} Version {version} already was the champion before this run; it was left "
                "as it is. Check the service (make run starts it; README 'On call' > DeploymentError), "
                "then clear the task."
            ) from exc
        try:
            state = _restore(settings, previous, version)
        except Exception as restore_exc:
            raise DeploymentError(
                f"{where} Restoring champion to {previous.version if previous else 'no version'} "
                f"FAILED too: {type(restore_exc).__name__}: {restore_exc}. champion may point at version "
                f"{version}, which is not verified. Set it by hand in MLflow (Models > "
                f"{settings.model_name} > aliases) or trigger rollback_model once MLflow answers. "
                "README 'On call' > DeploymentError (restore failed)."
            ) from exc
        raise DeploymentError(
            f"{where} {state}. Check the service (make run starts it; "
            "README 'On call' > DeploymentError), then clear the task."
        ) from exc
    log.info(
        "champion: version %s -> %s%s; the online service serves %s (probe score %.3f)",
        previous_version,
        version,
        " (already moved by an earlier attempt: verified only)" if already else "",
        reloaded.get("version"),
        answer["score"],
    )
    model_card.publish_or_warn(settings, version, event)
    if previous is not None and previous.version != version and not already:
        model_card.publish_or_warn(settings, previous.version, "replaced")
    return {"version": version, "previous": previous_version, "probe": answer}


def deploy(settings: Settings, version: str, sample: pd.DataFrame, record: dict[str, str]) -> DeployResult:
    """Smoke-test `version` from the registry, then move `champion` to it (verified, or restored)."""
    smoke = run_smoke_test(settings, version, sample)
    first = sample.iloc[0]
    probe: Probe = {
        "flight_id": int(first["flight_id"]),
        "tailnum": str(first["tailnum"]),
        "carrier": str(first["carrier"]),
        "origin": str(first["origin"]),
        "dest": str(first["dest"]),
        "scheduled_departure": pd.Timestamp(first["scheduled_departure"]).isoformat(),
    }
    return {"smoke": smoke, **move_champion(settings, version, probe, record)}


def probe_from_lake(settings: Settings) -> Probe:
    """A probe request for the serving check: the first flight of the latest validated schedules."""
    from include.lake.partitions import every_partition_url, read_partition
    from include.source.dataset import FLIGHT_SCHEDULES

    files = every_partition_url(settings.lake_root, "validated", FLIGHT_SCHEDULES.name)
    for path in reversed(files):
        frame = read_partition(path)
        if len(frame):
            first = frame.sort_values("flight_id").iloc[0]
            return {
                "flight_id": int(first["flight_id"]),
                "tailnum": None if pd.isna(first["tailnum"]) else str(first["tailnum"]),
                "carrier": str(first["carrier"]),
                "origin": str(first["origin"]),
                "dest": str(first["dest"]),
                "scheduled_departure": pd.Timestamp(first["scheduled_departure"]).isoformat(),
            }
    raise DeploymentError(
        f"no validated flight_schedules under {settings.lake_root} to probe the service with"
    )


class RollbackRefusedError(RuntimeError):
    """A rollback target that did not pass the gate or its smoke test, without an override."""


def rollback(
    settings: Settings,
    version: str,
    record: dict[str, str],
    sample: Callable[[], pd.DataFrame],
    override: bool = False,
) -> ChampionMove:
    """Move `champion` to an earlier registered `version`: smoke-tested, verified on the serving
    surface, restored on failure.

    Only to a version whose tags show a passed gate and a passed smoke test, unless `override`
    (with the record's `reason`, kept as its `gate.override_reason` tag, which the loader then
    accepts in place of the gate). `sample()` reads the version's own holdout (its monitoring
    reference) for the smoke test, which runs again whatever its tag says; it is called only
    once the version is known to exist and may serve."""
    client = tracking.client(settings)
    try:
        mv = client.get_model_version(settings.model_name, version)
    except Exception as exc:
        if not tracking.is_missing(exc):
            what = f"read version {version} of {settings.model_name}"
            tracking.registry_unavailable(what, exc)
        raise ValueError(
            f"no version {version} of {settings.model_name} in the MLflow registry; "
            "choose one from MLflow's Models page"
        ) from exc
    problems = tracking.not_deployable(dict(mv.tags))
    current = tracking.champion(settings)
    if problems and not override:
        raise RollbackRefusedError(
            f"rollback to {settings.model_name} version {version} refused: {'; '.join(problems)}. "
            f"champion unchanged ({current.version if current else 'none'}). Pick a version whose "
            "gate.decision is deploy and smoke_test passed (MLflow's Models page), or trigger again with "
            "Params override=true and a reason. README 'On call' > RollbackRefusedError."
        )
    if problems:
        reason = record.get("reason", "").strip()
        if len(reason) < 3:
            raise ValueError("override=true needs a reason (Params reason, at least 3 characters)")
        by = record.get("rolled_back_by", "unknown")
        client.set_model_version_tag(settings.model_name, version, tracking.GATE_OVERRIDE_TAG, reason)
        client.set_model_version_tag(settings.model_name, version, "gate.override_by", by)
        log.warning("OVERRIDE by %s: rollback to version %s although %s", by, version, "; ".join(problems))
    run_smoke_test(settings, version, sample())
    probe = probe_from_lake(settings)
    result = move_champion(settings, version, probe, record, event="rollback")
    log.warning(
        "ROLLBACK: champion %s -> %s by %s: %s",
        result["previous"],
        version,
        record.get("rolled_back_by"),
        record.get("reason"),
    )
    return result
