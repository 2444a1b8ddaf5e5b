"""A version's status on its card, from its aliases and the deployment tags of every version.

Why from the tags of every version: the registry records an alias move on the version it moves
to, so who replaced a former champion (and when) is written on its successor, not on itself.
"""

from __future__ import annotations

from include.core.settings import CHALLENGER, CHAMPION
from include.registry.card.facts import Status


def status_of(
    version: str, tags: dict[str, str], aliases: list[str], history: dict[str, dict[str, str]]
) -> Status:
    """Champion, challenger, retired or registered, from the aliases and the deployment tags.

    A version that held `champion` was replaced by the one whose `champion.previous` names it
    (the earliest such move after its own `champion.since`); a deployment that failed on the
    serving surface left its tags but the alias went back (`restored_after_failed_deploy_of`)."""
    out = _recorded(tags, aliases)
    since = out["since"]
    if CHAMPION in aliases:
        out["state"] = "champion"
        out["detail"] = f"serves batch scoring and the online service since {since or 'unknown'}" + (
            " (made champion by a rollback)" if tags.get("champion.rolled_back_by") else ""
        )
    elif since:
        out.update(_former_champion(version, since, history))
    else:
        out.update(_never_champion(tags, aliases))
    return out


def _recorded(tags: dict[str, str], aliases: list[str]) -> Status:
    """What the version's own tags say about its deployments (a registered version by default)."""
    return {
        "state": "registered",
        "detail": "",
        "aliases": sorted(aliases),
        "since": tags.get("champion.since"),
        "deployed_by": tags.get("champion.deployed_by") or tags.get("champion.rolled_back_by"),
        "approved_by": tags.get("champion.approved_by"),
        "reason": tags.get("champion.reason"),
        "previous": tags.get("champion.previous"),
        "dag_run": tags.get("champion.dag_run"),
        "smoke_test": tags.get("smoke_test"),
        "replaced_by": None,
        "replaced_at": None,
    }


def _former_champion(version: str, since: str, history: dict[str, dict[str, str]]) -> Status:
    """A version that held `champion` and no longer does: replaced, restored away from, or neither."""
    successors = sorted(
        (t.get("champion.since", ""), v)
        for v, t in history.items()
        if v != version and t.get("champion.previous") == version and t.get("champion.since", "") >= since
    )
    restored_by = sorted(
        v for v, t in history.items() if t.get("champion.restored_after_failed_deploy_of") == version
    )
    if successors:
        at, by = successors[0]
        detail = f"was champion from {since} until {at}, replaced by version {by}"
        return {"state": "retired", "replaced_by": by, "replaced_at": at, "detail": detail}
    if restored_by:
        return {
            "state": "not deployed",
            "detail": f"its deployment at {since} failed on the serving surface; champion went back to "
            f"version {', '.join(restored_by)}",
        }
    return {"state": "retired", "detail": f"was champion from {since}; no longer holds the alias"}


def _never_champion(tags: dict[str, str], aliases: list[str]) -> Status:
    """A version never deployed: the latest challenger or merely registered, and how its gate went."""
    out: Status = {"state": "challenger", "detail": "the latest candidate to reach the gate"}
    if CHALLENGER not in aliases:
        out = {"state": "registered", "detail": "never deployed"}
    gate = tags.get("gate.decision")
    if gate == "reject":
        out["detail"] += "; rejected by the gate"
    elif gate == "deploy" and tags.get("smoke_test") == "failed":
        out["detail"] += "; passed the gate, failed the deployment smoke test"
    elif gate == "deploy":
        out["detail"] += "; passed the gate, not deployed (yet)"
    else:
        out["detail"] += "; gate not yet evaluated"
    return out
