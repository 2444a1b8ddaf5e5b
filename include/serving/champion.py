"""The champion model: loaded from MLflow (batch and online), swapped when the alias moves (online).

`ChampionHolder.refresh` re-reads the `champion` alias (at start, on POST /reload, and every
MLOPS_SERVING_POLL_SECONDS from `ChampionPoller`'s thread); a failed load keeps serving the
model already loaded and says why in `error`. A version the loader refuses (not skops, untrusted
types, no passed gate or smoke test: tracking.UntrustedModelError) is never served; `refused`
names it and why (GET /health shows it) until `champion` points at a version that loads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from include.core.settings import Settings

log = logging.getLogger("airflow_mlops.serving")


@dataclass
class LoadedModel:
    version: str
    model: Any
    columns: list[str]
    run_id: str | None
    loaded_at: str

    @property
    def path(self) -> str:
        """What scores: `treelite`, `linear` (compiled) or `sklearn` (the pipeline)."""
        from include.registry.fast_model import path_of

        return path_of(self.model)


def load_version(settings: Settings, version: str, run_id: str | None) -> LoadedModel:
    """A registered version's model and input columns, from MLflow, through the one loader
    (tracking.load_model: skops only, our trusted types, a passed gate and smoke test), in the
    form its smoke test chose to serve: compiled (fast_model) when it proved parity, else the
    scikit-learn pipeline."""
    from include.registry import tracking

    model = tracking.load_model(settings, version, serving=True)
    columns = tracking.model_input_columns(settings, version)
    return LoadedModel(version, model, columns, run_id, datetime.now(UTC).isoformat(timespec="seconds"))


def load_champion(settings: Settings) -> LoadedModel | None:
    """The version behind the `champion` alias, loaded; None when no version has the alias."""
    from include.registry import tracking

    aliased = tracking.champion(settings)
    return None if aliased is None else load_version(settings, aliased.version, aliased.run_id)


def load_shadow(settings: Settings, log: logging.Logger) -> LoadedModel | None:
    """The version behind the `shadow` alias, loaded like a champion (same trusted loader), or None
    when there is none. A shadow that cannot be loaded is logged and skipped, never an error: the
    champion's predictions must not depend on it (promote_shadow then sees a night fewer)."""
    from include.core.settings import SHADOW
    from include.registry import tracking

    aliased = tracking.get_alias(settings, SHADOW)
    if aliased is None:
        return None
    try:
        return load_version(settings, aliased.version, aliased.run_id)
    except Exception as exc:
        log.warning(
            "shadow version %s not scored: %s: %s. The champion's predictions are not affected; "
            "promote_shadow counts only nights the shadow scored.",
            aliased.version,
            type(exc).__name__,
            str(exc)[:500],
        )
        return None


class Refusal(TypedDict):
    """A champion version the service would not load, and why (GET /health `refused`)."""

    version: str
    reason: str
    at: str


class ChampionHolder:
    """The champion's model in memory; swapped atomically when the alias moves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: LoadedModel | None = None
        self.shadow: LoadedModel | None = None
        """The version in `shadow`, scored after each answer (never served); None without one."""
        self.error: str | None = None
        self.refused: Refusal | None = None
        self._lock = threading.Lock()

    def refresh(self) -> LoadedModel | None:
        current = self._refresh_champion()
        self._refresh_shadow()
        return current

    def _refresh_shadow(self) -> None:
        """Follow the `shadow` alias; a shadow that cannot be read or loaded is dropped with a
        warning: the champion's answers never depend on it."""
        from include.core.settings import SHADOW
        from include.registry import tracking

        if not self.settings.serving_shadow:
            self.shadow = None
            return
        try:
            aliased = tracking.get_alias(self.settings, SHADOW)
            if aliased is None:
                self.shadow = None
            elif self.shadow is None or self.shadow.version != aliased.version:
                self.shadow = load_version(self.settings, aliased.version, aliased.run_id)
                log.info("scoring shadow version %s beside the champion (never served)", aliased.version)
        except Exception as exc:
            self.shadow = None
            log.warning("shadow not scored online: %s: %s", type(exc).__name__, str(exc)[:300])

    def _refresh_champion(self) -> LoadedModel | None:
        from include.registry import tracking

        try:
            aliased = tracking.champion(self.settings)
            if aliased is None:
                self.error = f"no version of {self.settings.model_name} has the alias 'champion' yet"
                return self.current
            if self.current is not None and self.current.version == aliased.version:
                self.error = None
                self.refused = None
                return self.current
            try:
                loaded = load_version(self.settings, aliased.version, aliased.run_id)
            except tracking.UntrustedModelError as exc:  # never served; the previous model stays
                self._refuse(aliased.version, exc)
                return self.current
            with self._lock:
                self.current = loaded
            self.error = None
            self.refused = None
            log.info("serving %s version %s", self.settings.model_name, aliased.version)
        except Exception as exc:  # keep serving the model already loaded
            self.error = f"could not load the champion: {exc}"
            log.exception("could not load the champion")
        return self.current

    def _refuse(self, version: str, exc: Exception) -> None:
        serving = self.current.version if self.current else "nothing"
        if self.refused is None or self.refused["version"] != version:
            log.error("%s; still serving %s", exc, serving)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.refused = Refusal(version=version, reason=str(exc), at=stamp)
        self.error = f"champion version {version} refused (still serving {serving}): {exc}"


class ChampionPoller:
    """Refreshes a holder every `seconds` from a daemon thread, from `start` until `stop`."""

    def __init__(self, holder: ChampionHolder, seconds: float) -> None:
        self.holder = holder
        self.seconds = seconds
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.wait(self.seconds):
            self.holder.refresh()

    def start(self) -> None:
        threading.Thread(target=self._poll, name="champion-poller", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
