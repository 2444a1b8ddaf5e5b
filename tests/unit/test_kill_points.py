"""Kills: a task SIGKILLed in the middle of a write leaves the previous state, its retry a clean one.

Each write (the Feast registry, the quarantine files, the monitoring-reference cache, the training
set, the drift report, the model card, the prediction log's batch replace) runs the project's
function in a real child process on a tmp folder holding the previous state. A hook installed in
the child only kills it (SIGKILL, from itself) at a chosen call on a file under that folder:

- fsync:N: the Nth fsync cuts the temporary file to half its bytes, then kills: the state of a
  process killed half way through writing them;
- replace:N / remove:N: before the Nth rename / delete;
- copy:N: half way through the Nth shutil.copyfileobj (MLflow's artifact copy; the reference's
  download, stubbed: the cache's own protocol is what is tested);
- sql:insert / sql:commit: before the INSERT (the DELETE done) / the COMMIT (both done).

The parent asserts the child died by SIGKILL (the proof the hook was hit: an unhit hook exits 0),
that every file is whole, the previous bytes or the new ones, and that the file the write changes
last (the record) is still the previous one; then it retries the write (in the parent: a killed
process leaves nothing but files) and asserts the state equals, byte for byte, a never-killed
child's in another folder (the control, one per write). A kill leaves temporary files behind, under
hidden names (`.<name>.<random>.tmp`, `.artifact.uploading.*`, `.<version>-*/`) that every reader
skips: no file of the state, so the comparison skips them too.

Children fork from a server that imported Feast and MLflow once (multiprocessing's forkserver):
a fresh interpreter per kill would spend 10 s importing Feast.
"""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from multiprocessing import forkserver
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest

from include.core.settings import get_settings
from include.lake import sql
from include.lake.partitions import write_frame_atomic, write_text_atomic
from include.monitoring import reads
from include.monitoring.records import report_path
from include.quality import release
from include.registry import model_card as card
from include.registry.card.record import quiet_client
from include.serving.prediction_log import METADATA, read, replace_batch
from include.source.extract import write_rejected
from include.training.candidates import Split
from include.training.data import write_split
from include.training.reference import REFERENCE_FILE, REFERENCE_META

VERSION, DAY, KEY = "3", date(2013, 12, 1), "20131201T0000Z_20131202T0000Z"
PRELOAD = ["include.features.registry_store", __name__, "mlflow", "mlflow.store.tracking.sqlalchemy_store"]


def _env(root: Path) -> dict[str, str]:
    return {"MLOPS_DATA_DIR": str(root), "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow/mlflow.db"}


def _frame(v: int, n: int = 3000) -> pd.DataFrame:
    i = pd.RangeIndex(n)
    return pd.DataFrame({"flight_id": i + 10_000 * v, "carrier": [f"C{k % (11 + v)}" for k in i],
                         "score": (i * 7919 * v % 1000) / 1000})  # fmt: skip


def _record(v: int) -> dict[str, Any]:
    return {"decision": "split", "version": v, "failures": [{"check": "unknown_airport", "rows": v}]}


def _files(folder: Path, run_id: str = "\0") -> dict[str, bytes]:
    """Every file under `folder`, path -> bytes, hidden names (temporary files) left out; a random
    MLflow run id (in the card and its artifact path) read as RUN."""
    found = sorted(folder.rglob("*")) if folder.exists() else []
    files = [p for p in found if p.is_file() and not any(s[0] == "." for s in p.relative_to(folder).parts)]
    return {str(p.relative_to(folder)).replace(run_id, "RUN"):
            p.read_bytes().replace(run_id.encode(), b"RUN") for p in files}  # fmt: skip


# --- the writes: version 1 is the previous state, `new` the version the child is killed writing ---


def feast_registry(root: Path, v: int) -> None:
    from feast.protos.feast.core.Registry_pb2 import Registry
    from feast.repo_config import RegistryConfig

    from include.features.registry_store import AtomicFileRegistryStore

    proto = Registry(registry_schema_version="1")
    for i in range(300):
        proto.project_metadata.add(project=f"flights_v{v}_{i}")
    config = RegistryConfig(registry_type="file", path=str(root / "feast" / "registry.db"))
    AtomicFileRegistryStore(config, root).update_registry_proto(proto)


def feast_registry_state(root: Path) -> dict[str, bytes]:
    """The registry parsed, its version_id (a uuid) and last_updated (the time) cleared: the two
    fields whose bytes differ between two runs writing the same definitions."""
    from feast.protos.feast.core.Registry_pb2 import Registry

    out = _files(root / "feast")
    if "registry.db" in out:
        proto = Registry.FromString(out["registry.db"])
        proto.ClearField("version_id")
        proto.ClearField("last_updated")
        out["registry.db"] = proto.SerializeToString(deterministic=True)
    return out


def _qdir(root: Path) -> str:
    return str(root / "quarantine" / "flights" / f"interval={KEY}")


def _quarantine(root: Path) -> dict[str, bytes]:
    return _files(Path(_qdir(root)))


def extract_rejected(root: Path, v: int) -> None:
    """write_rejected; version 0 has no rejected rows: it clears the folder."""
    write_rejected(_qdir(root), _frame(v) if v else _frame(1).iloc[0:0], _record(v))


def _fetch(v: int, settings: Any, version: str, folder: Path) -> None:
    """MLflow's download, stubbed: the reference's meta then its frame, copied in."""
    meta, frame = io.BytesIO(json.dumps({"rows": v}).encode()), io.BytesIO()
    _frame(v).to_parquet(frame, index=False)
    for name, data in ((REFERENCE_META, meta), (REFERENCE_FILE, frame)):
        data.seek(0)
        with open(folder / name, "wb") as out:
            shutil.copyfileobj(data, out)


def reference_cache(root: Path, v: int) -> None:
    with mock.patch.object(reads, "fetch_reference", lambda *a: _fetch(v, *a)):
        reads.load_reference(get_settings(), VERSION)


def training_set(root: Path, v: int) -> None:
    split = Split(_frame(v), _frame(v + 10, 800), pd.Timestamp(DAY, tz="UTC"))
    write_split(str(root / "training_sets" / "run"), split, {"version": v, "rows": 3800})


def drift_report(root: Path, v: int) -> None:
    """The page build_report stores, written as it does (rendering one needs MLflow and the log)."""
    page = "<html><body>" + "".join(f"<p>night {v} check {i}</p>" for i in range(3000)) + "</body></html>"
    write_text_atomic(report_path(get_settings(), VERSION, DAY), page)


def card_inputs(root: Path) -> None:
    """A registered version and its run (MLflow on SQLite in the folder), for the card. The empty
    database is made once and copied: MLflow takes 4 s to create its tables."""
    from mlflow import MlflowClient

    settings, schema = get_settings(), root.parent / "mlflow-schema.db"
    if not schema.exists():
        MlflowClient(f"sqlite:///{schema}").search_experiments()
    (root / "mlflow").mkdir()
    shutil.copy(schema, root / "mlflow" / "mlflow.db")
    client = quiet_client(settings)
    experiment = client.create_experiment("cards", artifact_location=settings.mlflow_artifacts_uri)
    run = client.create_run(experiment).info
    client.create_registered_model(settings.model_name)
    mv = client.create_model_version(settings.model_name, run.artifact_uri, run_id=run.run_id)
    (root / "card.json").write_text(json.dumps({"run_id": run.run_id, "version": mv.version}))


def model_card(root: Path, v: int) -> None:
    """model_card.publish (card, page, lineage record), its records (`collect`) stubbed by fixed facts."""
    ids = json.loads((root / "card.json").read_text())
    facts = {"model_name": "flight_delay", "version": ids["version"], "run_id": ids["run_id"],
             "generated_at": f"2026-11-2{v}T12:00:00+00:00", "status": {"state": f"v{v}"}}  # fmt: skip
    with mock.patch.object(card, "collect", lambda *a: dict(facts)):
        card.publish(get_settings(), ids["version"], f"event-{v}")


def model_card_state(root: Path) -> dict[str, bytes]:
    return _files(root / "mlflow" / "artifacts", json.loads((root / "card.json").read_text())["run_id"])


def prediction_log(root: Path, v: int, key: str = KEY) -> None:
    t = datetime(2026, 11, 23, tzinfo=UTC)
    rows = [{"source": "batch", "batch_key": key, "request_id": f"run-{v}", "flight_id": i, "model_name": "m",
             "scheduled_departure": t, "model_version": str(v), "score": i / 500, "threshold": 0.4,
             "predicted_late": int(i >= 200), "features": json.dumps({"v": v, "i": i}),
             "features_as_of": None, "predicted_at": t} for i in range(500)]  # fmt: skip
    with sql.connected(f"sqlite:///{root}/predictions/log.db", METADATA) as eng:
        replace_batch(eng, key, rows)


def prediction_log_state(root: Path) -> dict[str, bytes]:
    """The table's rows: a SQLite file's bytes (its pages, the WAL) are no state of their own."""
    with sql.connected(f"sqlite:///{root}/predictions/log.db", METADATA) as eng:
        return {"rows": read(eng).sort_values("id").to_csv(index=False).encode()}


@dataclass(frozen=True)
class Write:
    write: Callable[[Path, int], object]
    state: Callable[[Path], dict[str, bytes]]
    last: str  # the file it changes last: still the previous one at every kill point
    new: int = 2
    inputs: Callable[[Path], object] | None = None  # what it reads, in place before the previous state
    previous: bool = True  # False: a cache filled when missing, there is no previous state


WRITES = {
    "feast_registry": Write(feast_registry, feast_registry_state, "registry.db"),
    "quarantine_raw_file": Write(
        lambda r, v: release.quarantine_raw_file(_qdir(r), str(r / f"raw-{v}.parquet"), _record(v)),
        _quarantine, "reason.json",
        inputs=lambda r: [write_frame_atomic(str(r / f"raw-{v}.parquet"), _frame(v)) for v in (1, 2)]),
    "quarantine_rows": Write(
        lambda r, v: release.quarantine_rows(_qdir(r), _frame(v).assign(quarantine_reason="x"), _record(v)),
        _quarantine, "reason.json"),
    "extract_rejected": Write(extract_rejected, _quarantine, "extract.json"),
    "extract_rejected_cleared": Write(extract_rejected, _quarantine, "extract_rows.parquet", new=0),
    "reference_cache": Write(reference_cache, lambda r: _files(r / "monitoring"),
                             f"reference/flight_delay/{VERSION}/monitoring_reference.json", previous=False),
    "training_set": Write(training_set, lambda r: _files(r / "training_sets"), "run/meta.json"),
    "drift_report": Write(drift_report, lambda r: _files(r / "monitoring"),
                          f"reports/flight_delay_v{VERSION}_{DAY}.html"),
    "model_card": Write(model_card, model_card_state, "RUN/artifacts/lineage/record.json",
                        inputs=card_inputs),
    "prediction_log": Write(prediction_log, prediction_log_state, "rows",
                            inputs=lambda r: prediction_log(r, 9, key="another interval")),
}  # fmt: skip
MULTI = ("fsync:1", "fsync:2", "replace:2")  # mid data file, mid record, before the record's rename
KILL_POINTS = [
    *[("feast_registry", h) for h in ("fsync:1", "replace:1")],
    *[(w, h) for w in ("quarantine_raw_file", "quarantine_rows", "extract_rejected") for h in MULTI],
    ("extract_rejected_cleared", "remove:2"),
    *[("reference_cache", h) for h in ("copy:2", "replace:1", "replace:2")],
    *[("training_set", h) for h in ("fsync:1", "fsync:2", "fsync:3", "replace:3")],
    *[("drift_report", h) for h in ("fsync:1", "replace:1")],
    *[("model_card", h) for h in ("copy:1", "replace:2", "replace:3")],
    *[("prediction_log", h) for h in ("sql:insert", "sql:commit")],
]


# --- the child and its hooks ---------------------------------------------------------------------


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install(hook: str, root: str) -> None:
    """Patch the call `hook` names so that its Nth call on a file under `root` kills the process."""
    kind, _, arg = hook.partition(":")
    calls, root, real = itertools.count(1), os.path.realpath(root), getattr(os, kind, shutil.copyfileobj)

    def hit(target: Any) -> bool:  # a path, a file descriptor or an open file
        fd = target.fileno() if hasattr(target, "fileno") else target
        path = os.readlink(f"/proc/self/fd/{fd}") if isinstance(fd, int) else os.fspath(fd)
        return path.startswith(root) and next(calls) == int(arg)

    def fsync(fd: int) -> None:
        if hit(fd):
            os.ftruncate(fd, os.fstat(fd).st_size // 2)
            _kill()
        real(fd)

    def before(src: Any, *args: Any) -> Any:
        if hit(args[0] if args else src):  # replace: the target; remove: the file
            _kill()
        return real(src, *args)

    def copy(src: Any, dst: Any, length: int = 0) -> None:
        if hit(dst):
            data = src.read()
            dst.write(data[: len(data) // 2])
            dst.flush()
            _kill()
        real(src, dst, length)

    if kind == "sql":
        import sqlalchemy as sa

        inserted: list[str] = []

        def execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                inserted.append(statement)
                if arg == "insert":
                    _kill()

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", execute)
        sa.event.listen(sa.engine.Engine, "commit", lambda conn: _kill() if inserted else None)
    elif kind == "copy":
        shutil.copyfileobj = copy
    elif kind != "none":
        setattr(os, kind, fsync if kind == "fsync" else before)


def child(name: str, hook: str, root: str, env: dict[str, str]) -> None:
    """The task process: its settings, the hook, then the write; exits 0 if the hook was not hit."""
    os.environ.update(env)
    write = WRITES[name]
    install(hook, root)
    try:
        write.write(Path(root), write.new)
    except BaseException:
        Path(root, ".child-error").write_text(traceback.format_exc())
        raise


def _forkserver() -> Any:
    """The context whose processes fork from the server (started if not yet, importing PRELOAD)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    return ctx


def run_child(name: str, hook: str, root: Path) -> tuple[int | None, str]:
    """Run `child` in a process of its own; its exit code (-9: SIGKILLed) and its error if any."""
    proc = _forkserver().Process(target=child, args=(name, hook, str(root), _env(root)))
    proc.start()
    proc.join(300)
    error = root / ".child-error"
    return proc.exitcode, error.read_text() if error.exists() else ""


@contextmanager
def in_folder(root: Path) -> Iterator[None]:
    """The settings of `root` for code run in this process; afterwards the environment and
    MLflow's URIs (which MLflow's client sets) as they were."""
    import mlflow

    saved, uris = dict(os.environ), (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    os.environ.update(_env(root))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(uris[0])
        mlflow.set_registry_uri(uris[1])
        os.environ.clear()
        os.environ.update(saved)


def prepare(write: Write, root: Path) -> dict[str, bytes]:
    """The inputs and the previous state in `root`; return that state."""
    with in_folder(root):
        if write.inputs:
            write.inputs(root)
        if write.previous:
            write.write(root, 1)
        return write.state(root)


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Any, ...]]:
    """Per write, once: the child without a hook in a folder of its own; (its exit, its error,
    the previous state, the state it leaves: an unkilled run's)."""
    done: dict[str, tuple[Any, ...]] = {}
    _forkserver()  # its imports (Feast, MLflow: 12 s) run while this process makes the first folder

    def run(name: str) -> tuple[Any, ...]:
        if name not in done:
            root = tmp_path_factory.mktemp(name)
            previous = prepare(WRITES[name], root)
            code, error = run_child(name, "none", root)
            with in_folder(root):
                done[name] = (code, error, previous, WRITES[name].state(root))
        return done[name]

    return run


@pytest.mark.parametrize("name", WRITES)
def test_control_the_child_without_its_hook_exits_0_and_writes(name, control):
    code, error, previous, written = control(name)
    assert code == 0, error
    assert written != previous, "the write changed nothing"


@pytest.mark.parametrize(("name", "hook"), KILL_POINTS, ids=[f"{w}-{h}" for w, h in KILL_POINTS])
def test_a_write_killed_in_the_middle_leaves_whole_files_and_its_retry_an_unkilled_runs_bytes(
    name, hook, tmp_path, control
):
    write, unkilled = WRITES[name], control(name)[3]
    previous = prepare(write, tmp_path)
    code, error = run_child(name, hook, tmp_path)
    assert code == -signal.SIGKILL, f"the hook {hook} was not hit (exit {code}) {error}"
    with in_folder(tmp_path):
        killed = write.state(tmp_path)
        for path in previous.keys() | killed.keys() | unkilled.keys():
            assert killed.get(path) in (previous.get(path), unkilled.get(path)), f"{path} is half written"
        assert killed.get(write.last) == previous.get(write.last), f"{write.last} changed before the rest"
        write.write(tmp_path, write.new)  # the retry
        assert write.state(tmp_path) == unkilled
