#!/usr/bin/env bash
# `make run`: start Airflow (standalone, in the background) and bring the demo to a state
# worth looking at. Safe to run again: it reuses what is already there and running.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT_DIR=$PWD
AIRFLOW_HOME=${AIRFLOW_HOME:-$PROJECT_DIR/.airflow}
DEMO_DAYS=${DEMO_DAYS:-14}
PY=$PROJECT_DIR/.venv/bin/python
started=$(date +%s)

mkdir -p "$AIRFLOW_HOME/logs"
# The admin password and the service's /reload token are generated at first start (runtime_env),
# each in a 0600 file of $AIRFLOW_HOME; env.sh reads the token from its file, holds no secret.
passwords=$AIRFLOW_HOME/passwords.json
first_login=no
if [ ! -s "$passwords" ] || grep -q '"admin": "admin"' "$passwords"; then first_login=yes; fi
PYTHONPATH=$PROJECT_DIR "$PY" -m include.core.runtime_env "$AIRFLOW_HOME" > "$AIRFLOW_HOME/env.sh"
# shellcheck disable=SC1091
. "$AIRFLOW_HOME/env.sh"
mkdir -p "$AIRFLOW_HOME/config"
cp scripts/airflow_local_settings.py "$AIRFLOW_HOME/config/airflow_local_settings.py"
if [ "$first_login" = yes ]; then
  login="login: admin / $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$passwords") (shown once; kept in $passwords)"
else
  login="login: admin, password in $passwords"
fi

echo "==> demo source database"
"$PY" -m include.source.demo ensure

# start_service <name> <log> <command...>: in its own session (make stop signals the group).
start_service() {
  local name=$1 log=$2; shift 2
  local pgid_file=$AIRFLOW_HOME/$name.pgid
  if [ -s "$pgid_file" ] && kill -0 -- "-$(cat "$pgid_file")" 2>/dev/null; then
    echo "==> $name already running (process group $(cat "$pgid_file"))"
    return
  fi
  setsid "$@" > "$log" 2>&1 < /dev/null &
  echo $! > "$pgid_file"
}

echo "==> MLflow server on $MLFLOW_TRACKING_URI (SQLite + local artifacts under $MLOPS_DATA_DIR/mlflow)"
mkdir -p "$MLOPS_DATA_DIR/mlflow/artifacts"
start_service mlflow "$AIRFLOW_HOME/logs/mlflow.log" \
  mlflow server --backend-store-uri "sqlite:///$MLOPS_DATA_DIR/mlflow/mlflow.db" \
  --artifacts-destination "$MLOPS_DATA_DIR/mlflow/artifacts" \
  --host 127.0.0.1 --port "$MLOPS_MLFLOW_PORT" --workers 1

pidfile=$AIRFLOW_HOME/airflow.pgid
if [ -s "$pidfile" ] && kill -0 -- "-$(cat "$pidfile")" 2>/dev/null; then
  echo "==> Airflow already running (process group $(cat "$pidfile"))"
  echo "==> applying airflow_settings.yaml"
  "$PY" scripts/apply_airflow_settings.py
else
  echo "==> Airflow metadata database"
  airflow db migrate > "$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 \
    || { tail -n 30 "$AIRFLOW_HOME/logs/db-migrate.log"; exit 1; }
  echo "==> applying airflow_settings.yaml"
  "$PY" scripts/apply_airflow_settings.py
  # Runs are created before the scheduler starts, never while it runs: on SQLite, creating a
  # backfill while the scheduler runs can fail with 'database is locked' and take it down.
  echo "==> registering DAGs and queueing a backfill of the last $DEMO_DAYS days"
  airflow dags reserialize > "$AIRFLOW_HOME/logs/reserialize.log" 2>&1 \
    || { tail -n 30 "$AIRFLOW_HOME/logs/reserialize.log"; exit 1; }
  # The scheduler itself runs the latest interval (yesterday); the backfill covers the rest.
  from=$(date -u -d "-$DEMO_DAYS days" +%F)
  to=$(date -u -d "-2 days" +%F)
  airflow backfill create --dag-id ingest_flights --from-date "$from" --to-date "$to" \
    --max-active-runs 4 --reprocess-behavior failed > "$AIRFLOW_HOME/logs/backfill.log" 2>&1 \
    || echo "    (no new backfill runs: $(tail -n 1 "$AIRFLOW_HOME/logs/backfill.log"))"
  echo "==> starting Airflow (log: $AIRFLOW_HOME/logs/standalone.log)"
  # Own session and process group: `make stop` signals the whole group, children included.
  setsid airflow standalone > "$AIRFLOW_HOME/logs/standalone.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
fi

echo "==> waiting for the scheduler to ingest the last $DEMO_DAYS days and materialize their features"
if ! "$PY" scripts/demo_state.py --days "$DEMO_DAYS"; then
  echo "make run: the demo state was not reached; Airflow keeps running (make stop to stop it)." >&2
  tail -n 20 "$AIRFLOW_HOME/logs/standalone.log" >&2 || true
  exit 1
fi

echo "==> online prediction service on $MLOPS_SERVING_URL"
# include/serving/__main__.py: one process, one event loop, one OpenMP thread, no access log.
start_service serving "$AIRFLOW_HOME/logs/serving.log" \
  "$PY" -m include.serving --host 127.0.0.1 --port "$MLOPS_SERVING_PORT"
# make demo-drift sets DEMO_SCRIPT=scripts/demo_drift.py (the closed loop on December 2013).
if ! "$PY" "${DEMO_SCRIPT:-scripts/demo_model.py}" --days "$DEMO_DAYS"; then
  echo "make run: no champion was deployed; Airflow keeps running (make stop to stop it)." >&2
  tail -n 20 "$AIRFLOW_HOME/logs/serving.log" >&2 || true
  exit 1
fi

cat <<MSG

airflow-mlops is running ($(( $(date +%s) - started )) s).
  Airflow UI   http://127.0.0.1:${MLOPS_API_PORT}   ${login}
  On call      Browse > Model health (http://127.0.0.1:${MLOPS_API_PORT}/model-health/): champion, checks, model cards
  Look at      DAG ingest_flights: $DEMO_DAYS daily runs (extract_<table>, validate_<table>)
               Assets:    raw_<table>, validated_flight_schedules, validated_flight_outcomes, ...
               Lake:      ${MLOPS_DATA_DIR}/lake/{raw,validated,quarantine}/<table>/interval=<start>_<end>/
               Data Docs: ${MLOPS_ARTIFACTS_ROOT:-$MLOPS_DATA_DIR}/data_docs/index.html (each validate_<table> log names its page)
               DAG materialize_features: one run per batch of validated days; asset flight_features
               Feast:     make feast ARGS="feature-views list"   (online store ${MLOPS_DATA_DIR}/feast/online_store.db)
               DAG train_model: candidates, gate (evaluate_gate log), deploy_champion; score_flights; rollback_model
               DAG monitor_model: drift, performance once labels arrive, freshness; reports in ${MLOPS_ARTIFACTS_ROOT:-$MLOPS_DATA_DIR}/monitoring/reports/
               The closed loop on December 2013: make demo-drift (README, Monitoring)
  MLflow UI    ${MLFLOW_TRACKING_URI}   experiments flight_delay, flight_delay-monitoring; Models > flight_delay
  Serving      curl -s -X POST ${MLOPS_SERVING_URL}/predict -H 'content-type: application/json' -d '{"flight_id": <id>}'
               ${MLOPS_SERVING_URL}/health   ${MLOPS_SERVING_URL}/version   ${MLOPS_SERVING_URL}/docs
               POST /reload needs "Authorization: Bearer \$(cat $AIRFLOW_HOME/serving_token)" (deployments send it)
  Logs         $AIRFLOW_HOME/logs/standalone.log
  Stop         make stop
MSG
