"""A small client of Airflow's REST API (stdlib only), for `make run` and the tests.

Kept out of include/ because it is operations glue, not pipeline logic; it never imports
Airflow, so it starts instantly.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any


class AirflowAPI:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True, attempts: int = 6) -> Any:
        """One API call. Server errors are retried: on SQLite, Airflow answers 500/503 when
        the metadata database is momentarily locked by the scheduler."""
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(1, attempts + 1):
            req = urllib.request.Request(self.base_url + path, data=data, method=method)
            req.add_header("Content-Type", "application/json")
            if auth:
                req.add_header("Authorization", f"Bearer {self.token()}")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    text = resp.read().decode()
                return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == attempts:
                    raise
            time.sleep(attempt)
        raise AssertionError("unreachable")

    def token(self) -> str:
        if self._token is None:
            out = self._request(
                "POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False
            )
            self._token = out["access_token"]
        return self._token

    def healthy(self) -> bool:
        try:
            health = self._request("GET", "/api/v2/monitor/health", auth=False)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False
        return health.get("metadatabase", {}).get("status") == "healthy" and (
            health.get("scheduler", {}).get("status") == "healthy"
        )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Airflow at {self.base_url} not healthy after {timeout:.0f} s")
            time.sleep(2)

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._request("PATCH", path, body)

    def dag_exists(self, dag_id: str) -> bool:
        try:
            self.get(f"/api/v2/dags/{dag_id}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    def dag_runs(self, dag_id: str, limit: int = 100) -> list[dict]:
        out = self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit={limit}&order_by=-logical_date")
        return out["dag_runs"]

    def import_errors(self) -> list[dict]:
        return self.get("/api/v2/importErrors")["import_errors"]
