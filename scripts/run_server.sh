#!/usr/bin/env bash
# `make run PROFILE=server`: the server profile on 127.0.0.1. PostgreSQL, Redis, an S3 server
# (moto's, objects kept on disk), MLflow on PostgreSQL + S3, and Airflow as separate components
# with two Celery workers; then the demo flow of scripts/run.sh. Same DAGs and code as `make run`:
# only the environment and the connections differ (include/core/runtime_env.py, server_env).
# All state lives in one home (AIRFLOW_HOME, default .airflow-server). Safe to run again: what
# runs is kept, what exists is reused. MLOPS_SERVER_SKIP_DEMO=1 stops after the bring-up (no demo
# source, no backfill, no demo).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT_DIR=$PWD
export AIRFLOW_HOME=${AIRFLOW_HOME:-$PROJECT_DIR/.airflow-server}
DEMO_DAYS=${DEMO_DAYS:-14}
SKIP_DEMO=${MLOPS_SERVER_SKIP_DEMO:-0}
PY=$PROJECT_DIR/.venv/bin/python
LOGS=$AIRFLOW_HOME/logs
started=$(date +%s)
step() { echo "==> [$((SECONDS))s] $*"; }

if [ -e "$AIRFLOW_HOME/airflow.db" ]; then
  echo "$AIRFLOW_HOME holds an embedded profile (airflow.db): point AIRFLOW_HOME elsewhere" >&2
  exit 2
fi
mkdir -p "$LOGS"
# shellcheck source=scripts/server/lib.sh
. scripts/server/lib.sh
# shellcheck source=scripts/server/postgres.sh
. scripts/server/postgres.sh

# Secrets are generated at first start, each in a 0600 file of the home; env.sh (0600 too) reads
# them from there when sourced and holds none.
passwords=$AIRFLOW_HOME/passwords.json
first_login=no
[ -s "$passwords" ] || first_login=yes
(umask 077 && PYTHONPATH=$PROJECT_DIR "$PY" -m include.core.runtime_env --profile server "$AIRFLOW_HOME" \
  > "$AIRFLOW_HOME/env.sh.new") && mv "$AIRFLOW_HOME/env.sh.new" "$AIRFLOW_HOME/env.sh"
# shellcheck disable=SC1091
. "$AIRFLOW_HOME/env.sh"
mkdir -p "$AIRFLOW_HOME/config"
cp scripts/airflow_local_settings.py "$AIRFLOW_HOME/config/airflow_local_settings.py"

step "PostgreSQL on 127.0.0.1:$MLOPS_SERVER_PG_PORT (a role and a database each: $MLOPS_SERVER_PG_DATABASES)"
pg_start
pg_ensure_databases

step "Redis on 127.0.0.1:$MLOPS_SERVER_REDIS_PORT (db 0 Celery broker, db 1 Feast online store)"
start_redis
wait_port redis 127.0.0.1 "$MLOPS_SERVER_REDIS_PORT" "$LOGS/redis.log"

step "S3 (moto) on $AWS_ENDPOINT_URL_S3, buckets $MLOPS_SERVER_BUCKETS (objects kept in $AIRFLOW_HOME/s3)"
mkdir -p "$AIRFLOW_HOME/s3/tmp"
start_service s3 "$LOGS/s3.log" env TMPDIR="$AIRFLOW_HOME/s3/tmp" \
  "$PY" -m scripts.server.s3_server --port "$MLOPS_SERVER_S3_PORT" --state "$AIRFLOW_HOME/s3" \
  --buckets "$MLOPS_SERVER_BUCKETS"
wait_port s3 127.0.0.1 "$MLOPS_SERVER_S3_PORT" "$LOGS/s3.log"

step "MLflow on $MLFLOW_TRACKING_URI (PostgreSQL database mlflow, artifacts $MLOPS_MLFLOW_ARTIFACTS)"
# The backend store's URL comes from MLFLOW_BACKEND_STORE_URI (env.sh): no password in argv.
start_service mlflow "$LOGS/mlflow.log" mlflow server --artifacts-destination "$MLOPS_MLFLOW_ARTIFACTS" \
  --host 127.0.0.1 --port "$MLOPS_MLFLOW_PORT" --workers 1

if [ "$SKIP_DEMO" != 1 ]; then
  step "demo source in PostgreSQL (database flights)"
  "$PY" -m include.source.demo ensure --url-env AIRFLOW_CONN_FLIGHTS_SOURCE \
    > "$LOGS/source.log" 2>&1 || { tail -n 30 "$LOGS/source.log"; exit 1; }
  head -n 1 "$LOGS/source.log"
fi

if running scheduler; then
  step "Airflow already running; applying airflow_settings.yaml"
  "$PY" scripts/apply_airflow_settings.py
else
  step "Airflow metadata database (PostgreSQL database airflow)"
  airflow db migrate > "$LOGS/db-migrate.log" 2>&1 || { tail -n 30 "$LOGS/db-migrate.log"; exit 1; }
  step "applying airflow_settings.yaml (connections in AIRFLOW_CONN_* win)"
  "$PY" scripts/apply_airflow_settings.py
  if [ "$SKIP_DEMO" != 1 ]; then
    step "registering DAGs and queueing a backfill of the last $DEMO_DAYS days"
    airflow dags reserialize > "$LOGS/reserialize.log" 2>&1 || { tail -n 30 "$LOGS/reserialize.log"; exit 1; }
    airflow backfill create --dag-id ingest_flights --from-date "$(date -u -d "-$DEMO_DAYS days" +%F)" \
      --to-date "$(date -u -d "-2 days" +%F)" --max-active-runs 4 --reprocess-behavior failed \
      > "$LOGS/backfill.log" 2>&1 || echo "    (no new backfill runs: $(tail -n 1 "$LOGS/backfill.log"))"
  fi
fi

step "Airflow components: api-server, scheduler, dag-processor, triggerer, workers $MLOPS_SERVER_WORKERS"
for component in api-server scheduler dag-processor triggerer; do
  start_service "$component" "$LOGS/$component.log" airflow "$component"
done
# Workers once the API server answers: a task they take (one still queued in Redis from the last
# run, too) starts by calling its execution API, and fails when nothing listens.
wait_port api-server 127.0.0.1 "$MLOPS_API_PORT" "$LOGS/api-server.log" 240
for worker in $MLOPS_SERVER_WORKERS; do
  start_worker "$worker"
done

step "waiting until every server answers"
wait_port mlflow 127.0.0.1 "$MLOPS_MLFLOW_PORT" "$LOGS/mlflow.log" 180
"$PY" -m scripts.server.check --wait 240
step "servers up"

if [ "$first_login" = yes ]; then
  login="login: admin / $("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$passwords") (shown once; kept in $passwords)"
else
  login="login: admin, password in $passwords"
fi
summary() {
  cat <<MSG

airflow-mlops, server profile, is running ($(($(date +%s) - started)) s).
  Airflow UI   http://127.0.0.1:${MLOPS_API_PORT}   ${login}
  MLflow UI    ${MLFLOW_TRACKING_URI}
  S3           ${AWS_ENDPOINT_URL_S3} (moto; keys in $AIRFLOW_HOME/secrets/s3-*)   lake ${MLOPS_LAKE_ROOT}
               Data Docs, drift reports: ${MLOPS_ARTIFACTS_ROOT}
  Environment  . $AIRFLOW_HOME/env.sh   then e.g. python -m scripts.server.check
  Logs         $LOGS/ (workers: $AIRFLOW_HOME/workers/<name>/)
  Stop         make stop
MSG
}
if [ "$SKIP_DEMO" = 1 ]; then
  summary
  exit 0
fi

step "waiting for the scheduler to ingest the last $DEMO_DAYS days and materialize their features"
if ! "$PY" scripts/demo_state.py --days "$DEMO_DAYS"; then
  echo "make run PROFILE=server: the demo state was not reached; the servers keep running (make stop)." >&2
  summary
  exit 1
fi
step "online prediction service on $MLOPS_SERVING_URL"
start_service serving "$LOGS/serving.log" "$PY" -m include.serving --host 127.0.0.1 --port "$MLOPS_SERVING_PORT"
if ! "$PY" scripts/demo_model.py --days "$DEMO_DAYS"; then
  echo "make run PROFILE=server: no champion was deployed; the servers keep running (make stop)." >&2
  exit 1
fi
summary
