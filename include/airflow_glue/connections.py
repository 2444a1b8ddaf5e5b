"""Servers the tasks talk to, opened from Airflow connections (secrets never live in code).

Every DAG and the serving app open the Feast store the same way: `feature_store()` here reads
the `feast_online_store` connection when the online store is a server (redis, postgres).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.core.settings import FEAST_ONLINE_CONN_ID, FLIGHTS_SOURCE_CONN_ID, Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from include.features.store import OnlineStoreConnection


def online_store_connection(settings: Settings) -> OnlineStoreConnection | None:
    """Host, port and credentials of the online store's server; None for the embedded SQLite."""
    if settings.feast_online_store == "sqlite":
        return None
    from airflow.sdk import BaseHook

    c = BaseHook.get_connection(FEAST_ONLINE_CONN_ID)
    return {"host": c.host, "port": c.port, "login": c.login, "password": c.password, "schema": c.schema}


def feature_store(settings: Settings | None = None) -> Any:
    """The project's Feast store, its online store configured from the connection when needed."""
    from include.features.store import open_store

    settings = settings or get_settings()
    return open_store(settings, online_store_connection(settings))


def source_engine() -> Engine:
    """SQLAlchemy engine of the flights source (connection `flights_source`: SQLite or PostgreSQL).
    The caller disposes of it."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(FLIGHTS_SOURCE_CONN_ID).get_hook().get_sqlalchemy_engine()
