"""Figures of a running profile, from its own records: what the scheduler and the executor cost
around a task, how long train_model takes, and the memory all of the profile's processes hold idle.

- Task overhead: for the few-line tasks of the demo (TRIVIAL: they read an XCom and return a
  decision), the median of queued -> running (the executor picking the task up: a LocalExecutor
  fork, or Redis and a Celery worker) and of running -> done (the task process: its start, the DAG
  file parse, the body, the XCom and state calls), from the task instances' own timestamps.
- train_model: wall clock of each successful run that trained (its dag run's start to end).
- Idle memory: PSS (shared pages split between the processes that map them) and RSS of every
  process of the profile (`profile_processes`): Airflow's components and workers, MLflow, the
  online service, and in the server profile PostgreSQL, Redis and S3.

Needs the profile running (`make run`, or `make run PROFILE=server`); run it when nothing is
queued for the idle figure. Prints the figures and writes benchmarks/results/profile_<name>.json.
Usage: PYTHONPATH=. python benchmarks/bench_profile.py [--home .airflow] [--name embedded]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.core.runtime_env import ADMIN_USER, admin_password
from include.core.settings import PROJECT_DIR
from scripts.airflow_api import AirflowAPI

RESULTS = PROJECT_DIR / "benchmarks" / "results"
TRIVIAL = {
    "materialize_features": ("plan_intervals",),
    "train_model": ("choose_path",),
    "monitor_model": ("apply_policy",),
}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = _time(start), _time(end)
    return (b - a).total_seconds() if a and b else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def task_overhead(api: AirflowAPI) -> dict[str, Any]:
    """Median queued -> running and running -> done of the TRIVIAL tasks' successful instances."""
    pickup: list[float] = []
    run: list[float] = []
    for dag_id, task_ids in TRIVIAL.items():
        for dag_run in api.dag_runs(dag_id):
            path = f"/api/v2/dags/{dag_id}/dagRuns/{dag_run['dag_run_id']}/taskInstances?limit=200"
            for ti in api.get(path)["task_instances"]:
                if ti["task_id"] not in task_ids or ti["state"] != "success":
                    continue
                queued = _seconds(ti.get("queued_when"), ti.get("start_date"))
                ran = _seconds(ti.get("start_date"), ti.get("end_date"))
                if queued is not None and ran is not None:
                    pickup.append(queued)
                    run.append(ran)
    return {
        "tasks": {dag: list(ids) for dag, ids in TRIVIAL.items()},
        "instances": len(run),
        "queued_to_running_s": _median(pickup),
        "running_to_done_s": _median(run),
        "queued_to_done_s": _median([a + b for a, b in zip(pickup, run, strict=True)]),
    }


def train_model_walls(api: AirflowAPI) -> list[dict[str, Any]]:
    """Every successful train_model run whose candidates ran (not a skipped one): its wall clock,
    and task by task its queued -> running (the executor) and running -> done (the task process)."""
    walls = []
    for dag_run in api.dag_runs("train_model"):
        if dag_run["state"] != "success":
            continue
        path = f"/api/v2/dags/train_model/dagRuns/{dag_run['dag_run_id']}/taskInstances?limit=200"
        instances = api.get(path)["task_instances"]
        trained = [t for t in instances if t["task_id"] == "train_candidate" and t["state"] == "success"]
        wall = _seconds(dag_run.get("start_date"), dag_run.get("end_date"))
        if not trained or wall is None:
            continue
        tasks = []
        for t in sorted(instances, key=lambda t: t.get("start_date") or "~"):
            if t.get("start_date") is None:
                continue  # skipped
            name = t["task_id"] + (f"[{t['map_index']}]" if t.get("map_index", -1) >= 0 else "")
            tasks.append(
                {
                    "task": name,
                    "queued_s": _seconds(t.get("queued_when"), t.get("start_date")),
                    "running_s": _seconds(t.get("start_date"), t.get("end_date")),
                }
            )
        walls.append(
            {
                "run_id": dag_run["dag_run_id"],
                "candidates": len(trained),
                "wall_s": round(wall, 1),
                "tasks": tasks,
            }
        )
    return walls


def train_model_compute(data_dir: Path) -> dict[str, Any]:
    """The compute of train_model's steps in this one process, on the profile's own lake and Feast
    store, with a temporary MLflow (so nothing of the profile changes): the functions the tasks
    call, in the tasks' order, for make run's window; the scheduler's wall / this is the overhead."""
    import logging
    import shutil
    import tempfile
    import time
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    os.environ.update(MLOPS_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    os.environ.pop("MLOPS_LAKE_ROOT", None)
    from include.core.settings import get_settings
    from include.features.store import open_store
    from include.registry.smoke import run_smoke_test
    from include.training import candidates, steps
    from include.training.data import run_folder, smoke_sample, window_end
    from include.training.gate_steps import evaluate_gate

    settings = get_settings()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        store = open_store(settings)
        end = window_end(None, settings.lake_root)
        prepared = steps.prepare_training_data(settings, store, end, 28, 3, "bench_profile_compute")
        run = steps.open_parent_run(settings, prepared, {}, {}, [])
        seconds["prepare_training_data"] = time.perf_counter() - t0
        results = []
        for spec in candidates.DEFAULT_GRID:
            t1 = time.perf_counter()
            results.append(steps.train_candidate(settings, run, spec, run["parent_run_id"], {}))
            seconds[f"train_candidate[{candidates.candidate_name(spec)}]"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        registered = steps.register_best(settings, results, run["parent_run_id"])
        seconds["register_best"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        evaluate_gate(settings, store, run, registered)
        seconds["evaluate_gate"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        run_smoke_test(settings, registered["version"], smoke_sample(run))
        seconds["deploy_smoke_test"] = time.perf_counter() - t1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(run_folder(settings, "bench_profile_compute"), ignore_errors=True)
    return {
        "steps_s": {k: round(v, 2) for k, v in seconds.items()},
        "total_s": round(time.perf_counter() - t0, 1),
        "note": "one process, libraries already imported, candidates one after the other",
    }


def _home_of(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"AIRFLOW_HOME="):
            return os.path.realpath(item.split(b"=", 1)[1].decode())
    return None


def _memory_kb(pid: int) -> tuple[int, int]:
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def profile_processes(home: Path) -> list[int]:
    """Every process of the profile: started with AIRFLOW_HOME=home, or naming the home on its
    command line (PostgreSQL runs as its own user with a clean environment: `-D <home>/...`),
    and all their descendants (PostgreSQL's backends, the workers' pool processes)."""
    wanted = os.path.realpath(home)
    pids = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and int(e.name) != os.getpid()]
    parent = {pid: _parent(pid) for pid in pids}
    found = {pid for pid in pids if _home_of(pid) == wanted or f"{wanted}/" in _cmdline(pid)}
    grew = True
    while grew:
        more = {pid for pid in pids if parent[pid] in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def idle_memory(home: Path) -> dict[str, Any]:
    """PSS and RSS summed over the profile's processes."""
    pss = rss = 0
    found = profile_processes(home)
    for pid in found:
        p, r = _memory_kb(pid)
        pss, rss = pss + p, rss + r
    return {"processes": len(found), "pss_gb": round(pss / 1024**2, 2), "rss_gb": round(rss / 1024**2, 2)}


def measure(api: AirflowAPI, home: Path) -> dict[str, Any]:
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "task_overhead": task_overhead(api),
        "train_model": train_model_walls(api),
        "idle_memory": idle_memory(home),
    }


def api_of(home: Path) -> AirflowAPI:
    """The API of the profile whose home is `home`, from the port its env.sh exports."""
    port = next(
        line.split("=", 1)[1].strip("'\"")
        for line in (home / "env.sh").read_text().splitlines()
        if line.startswith("export MLOPS_API_PORT=")
    )
    return AirflowAPI(f"http://127.0.0.1:{port}", ADMIN_USER, admin_password(home))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=PROJECT_DIR / ".airflow")
    parser.add_argument("--name", default=None, help="results file suffix (default: embedded or server)")
    args = parser.parse_args(argv)
    name = args.name or ("server" if (args.home / "secrets").is_dir() else "embedded")
    figures = {"profile": name, **measure(api_of(args.home), args.home)}
    if name == "embedded" and figures["train_model"]:
        figures["train_model_compute"] = train_model_compute(PROJECT_DIR / "data")
        wall = figures["train_model"][-1]["wall_s"]
        figures["train_model_wall_over_compute"] = round(wall / figures["train_model_compute"]["total_s"], 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile_{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
