"""Read `airflow_settings.yaml` (the Astro CLI format) into plain records.

The Astro CLI applies this file in its containers; this project runs without it, so
scripts/apply_airflow_settings.py applies the records parsed here. String values may name
environment variables as ${NAME} (an extension of ours: connection paths then follow
MLOPS_DATA_DIR instead of holding one machine's path).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SettingsFileError(ValueError):
    """airflow_settings.yaml is malformed or names an unset environment variable."""


@dataclass(frozen=True)
class ConnectionSpec:
    conn_id: str
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    slots: int
    description: str = ""


@dataclass(frozen=True)
class VariableSpec:
    key: str
    value: str


@dataclass(frozen=True)
class AirflowSettings:
    connections: tuple[ConnectionSpec, ...]
    pools: tuple[PoolSpec, ...]
    variables: tuple[VariableSpec, ...]


def expand(value: Any, env: dict[str, str]) -> Any:
    """Replace ${NAME} in strings (recursively in dicts and lists)."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise SettingsFileError(f"environment variable {name} is not set (used as ${{{name}}})")
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env) for v in value]
    return value


def _blank_to_none(value: Any) -> Any:
    return None if value in ("", None) else value


def parse_settings(text: str, env: dict[str, str] | None = None) -> AirflowSettings:
    """Parse the YAML text; env (default os.environ) resolves ${NAME} references."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsFileError(f"airflow_settings.yaml is not valid YAML: {exc}") from exc
    section = doc.get("airflow") or {}
    if not isinstance(section, dict):
        raise SettingsFileError("top-level key 'airflow' must be a mapping")
    section = expand(section, dict(os.environ) if env is None else env)

    connections = []
    for item in section.get("connections") or []:
        if not item.get("conn_id") or not item.get("conn_type"):
            raise SettingsFileError(f"connection needs conn_id and conn_type: {item!r}")
        extra = _blank_to_none(item.get("conn_extra")) or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        port = _blank_to_none(item.get("conn_port"))
        connections.append(
            ConnectionSpec(
                conn_id=item["conn_id"],
                conn_type=item["conn_type"],
                host=_blank_to_none(item.get("conn_host")),
                schema=_blank_to_none(item.get("conn_schema")),
                login=_blank_to_none(item.get("conn_login")),
                password=_blank_to_none(item.get("conn_password")),
                port=int(port) if port is not None else None,
                uri=_blank_to_none(item.get("conn_uri")),
                extra=extra,
            )
        )
    pools = []
    for item in section.get("pools") or []:
        if not item.get("pool_name") or item.get("pool_slot") is None:
            raise SettingsFileError(f"pool needs pool_name and pool_slot: {item!r}")
        pools.append(PoolSpec(item["pool_name"], int(item["pool_slot"]), item.get("pool_description") or ""))
    variables = []
    for item in section.get("variables") or []:
        if not item.get("variable_name"):
            raise SettingsFileError(f"variable needs variable_name: {item!r}")
        value = item.get("variable_value")
        variables.append(VariableSpec(item["variable_name"], "" if value is None else str(value)))
    return AirflowSettings(tuple(connections), tuple(pools), tuple(variables))


def load_settings_file(path: Path, env: dict[str, str] | None = None) -> AirflowSettings:
    return parse_settings(path.read_text(encoding="utf-8"), env)
