"""Model health: an on-call page, opened from the Airflow UI (Browse > Model health).

It shows what serves and whether it is healthy: the champion (version, since when, its gate
decision and model card), recent candidates, the last nights' checks with trends, retraining
requests, quarantined intervals, online-store freshness and the online service's health, with
links to the model cards, drift reports, Data Docs pages and MLflow. The data comes from
include/oncall/health.py (what the pipeline recorded, one reader per source); the HTML from
include/oncall/page.py; which files may be served, from include/oncall/files.py.

Security: Airflow does not protect plugin routes by itself. Every route here asks Airflow's
auth manager for the user (the UI's session cookie or a Bearer token), so an anonymous request
is refused (the page redirects to the login, everything else answers 401). Routes are GET only,
never show connections or credentials, and serve files only from the reports and Data Docs
roots, sandboxed (files.SANDBOX_CSP: their scripts get an opaque origin, not Airflow's). Those
roots may be an object store (MLOPS_ARTIFACTS_ROOT=s3://...): files are read through the
project's storage helpers and sent as bytes, never opened as a local path here.

This module is imported by every task process (Airflow loads plugins for macros), so it imports
nothing heavy at the top: Airflow's API security and the project's modules load on first request.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

URL_PREFIX = "/model-health"
# The page loads nothing from elsewhere, runs no script, and only the Airflow origin may frame it.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'",
}

_bearer = HTTPBearer(auto_error=False)
log = logging.getLogger(__name__)


async def airflow_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Any:
    """The Airflow user of this request, from a Bearer token or the UI's session cookie.

    401 without credentials, 403 for an invalid token, 401 for an expired one."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, None, credentials)


User = Annotated[Any, Depends(airflow_user)]

app = FastAPI(title="Model health", docs_url=None, redoc_url=None, openapi_url=None)


def _settings() -> Any:
    from include.core.settings import get_settings

    return get_settings()


def _page_html() -> str:
    from include.oncall import health as model_health
    from include.oncall import page as model_health_page

    return model_health_page.render(model_health.snapshot(_settings()))


@app.get("/", response_class=HTMLResponse)
async def page(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Any:
    """The page. Without a session, the browser is sent to Airflow's login (and back here)."""
    try:
        await airflow_user(request, credentials)
    except HTTPException as exc:
        if exc.status_code != 401 or credentials is not None:
            raise
        return RedirectResponse(f"/auth/login?next={URL_PREFIX}/", status_code=303)
    return HTMLResponse(await run_in_threadpool(_page_html), headers=PAGE_HEADERS)


@app.get("/api/health")
def health(user: User) -> JSONResponse:
    """The page's data as JSON (for scripts and checks)."""
    from include.oncall import health as model_health

    return JSONResponse(model_health.snapshot(_settings()), headers={"Cache-Control": "no-store"})


@app.get("/model-card/{version}", response_class=HTMLResponse)
def model_card(version: int, user: User) -> HTMLResponse:
    """A registered version's model card, as stored on its MLflow run."""
    from include.registry import model_card as cards

    text = cards.load_html(_settings(), str(version))
    if text is None:
        raise HTTPException(
            404,
            f"no model card for version {version}: regenerate it with `python -m include.registry.model_card "
            f"publish {version}`",
        )
    return HTMLResponse(text, headers=PAGE_HEADERS)


@app.get("/lineage/{version}", response_class=HTMLResponse)
def lineage(version: int, user: User) -> HTMLResponse:
    """A registered version's lineage (data, code, decisions, deployments, batches) with its graph:
    the page `make lineage VERSION=n` writes, built from the registry and the log as of now."""
    from include.oncall import lineage as lineage_page

    try:
        record = lineage_page.record(_settings(), str(version))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    return HTMLResponse(lineage_page.page(record), headers=PAGE_HEADERS)


@app.get("/reports/{name}")
def report(name: str, user: User) -> Response:
    """A nightly drift report (HTML) from the monitoring reports root."""
    from include.oncall import files

    served = files.served_report(_settings(), name)
    if served is None:
        raise HTTPException(404, f"no drift report named {name!r}")
    return Response(served.body, media_type=served.media_type, headers=served.headers)


@app.get("/data-docs/{relative:path}")
def data_docs(relative: str, user: User) -> Response:
    """A page (or asset) of the Great Expectations Data Docs site."""
    from include.oncall import files

    served = files.served_data_docs(_settings(), relative)
    if served is None:
        raise HTTPException(404, f"no Data Docs file {relative!r}")
    return Response(served.body, media_type=served.media_type, headers=served.headers)


def _warm_up() -> None:
    try:
        from include.oncall import health as model_health

        model_health.warm_up()
    except Exception:  # the page still works; its first load just pays the imports
        log.exception("Model health: warming up failed")


class WarmUpModelHealth:
    """A pass-through ASGI middleware on the API server's root app. It is built once per API
    server process (never in a task), which is the moment to import the page's libraries in the
    background: otherwise the first visit waits ~8 s for them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        threading.Thread(target=_warm_up, name="model-health-warm-up", daemon=True).start()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class ModelHealthPlugin(AirflowPlugin):
    # AirflowPlugin declares these lists as instance attributes, so they are not ClassVars here.
    name = "model_health"
    fastapi_apps: list[Any] = [  # noqa: RUF012
        {"app": app, "url_prefix": URL_PREFIX, "name": "Model health"}
    ]
    fastapi_root_middlewares: list[Any] = [  # noqa: RUF012
        {"middleware": WarmUpModelHealth, "name": "Model health warm-up"}
    ]
    external_views: list[Any] = [  # noqa: RUF012
        {
            "name": "Model health",
            # The trailing slash matters: without it the UI's catch-all answers. No `url_route`:
            # the UI would frame the page in a sandbox that blocks every link opening a new tab
            # (model cards, MLflow, which refuses to be framed anyway); its own tab has none.
            # In a menu rather than on the nav bar: Airflow 3.3 renders a top-level entry
            # without `url_route` as a button that does not open its link.
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
        }
    ]
