# shellcheck shell=bash
# Helpers of scripts/run_server.sh (sourced). Each server runs in its own session and process
# group, its group id in $AIRFLOW_HOME/<name>.pgid: scripts/stop.sh signals the whole group.

running() {  # running <name>: its process group is alive (or its leader, not yet in its session)
  local pgid_file=$AIRFLOW_HOME/$1.pgid pgid
  [ -s "$pgid_file" ] || return 1
  pgid=$(cat "$pgid_file")
  kill -0 -- "-$pgid" 2>/dev/null || kill -0 "$pgid" 2>/dev/null
}

start_service() {  # start_service <name> <log> <command...>
  local name=$1 log=$2
  shift 2
  if running "$name"; then
    echo "    $name already running (process group $(cat "$AIRFLOW_HOME/$name.pgid"))"
    return
  fi
  setsid "$@" > "$log" 2>&1 < /dev/null &
  echo $! > "$AIRFLOW_HOME/$name.pgid"
}

wait_port() {  # wait_port <name> <host> <port> <log> [seconds]: until something listens there
  local name=$1 host=$2 port=$3 log=$4 deadline=$((SECONDS + ${5:-120}))
  until (: > "/dev/tcp/$host/$port") 2>/dev/null; do
    if ! running "$name"; then
      echo "$name exited; the end of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name does not listen on $host:$port; the end of $log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    sleep 0.5
  done
}

start_redis() {  # Redis with its data (AOF + RDB) in $AIRFLOW_HOME/redis; the password comes on stdin
  local dir=$AIRFLOW_HOME/redis
  if running redis; then
    echo "    redis already running (process group $(cat "$AIRFLOW_HOME/redis.pgid"))"
    return
  fi
  mkdir -p "$dir"
  {
    cat <<CONF
bind 127.0.0.1
port $MLOPS_SERVER_REDIS_PORT
protected-mode yes
daemonize no
dir $dir
appendonly yes
appendfsync everysec
save 300 1
logfile ""
CONF
    printf 'requirepass %s\n' "$(cat "$AIRFLOW_HOME/secrets/redis")"
  } | setsid redis-server - > "$AIRFLOW_HOME/logs/redis.log" 2>&1 &
  echo $! > "$AIRFLOW_HOME/redis.pgid"
}

start_log_server() {  # start_log_server <name> <address> <port> <log>
  # Airflow's log server app, on one loopback address: Airflow's own binds every interface.
  start_service "$1" "$4" "$PY" -m uvicorn airflow.utils.serve_logs.log_server:get_app --factory \
    --host "$2" --port "$3" --log-level warning --no-access-log
}

start_worker() {  # start_worker <name>: a Celery worker in its own folder, and its log server
  local name=$1 dir=$AIRFLOW_HOME/workers/$1
  mkdir -p "$dir"
  "$PY" -m include.core.runtime_env --profile server --worker "$name" "$AIRFLOW_HOME" > "$dir/env.sh"
  (
    # Its working directory, TMPDIR, data folder and task logs: as if the workers shared no disk.
    # shellcheck disable=SC1091
    . "$dir/env.sh"
    cd "$dir" || exit 1
    start_service "$name" "$dir/worker.log" airflow celery worker --celery-hostname "$name@%h" \
      --concurrency "$AIRFLOW__CELERY__WORKER_CONCURRENCY" --skip-serve-logs --pid "$dir/worker.pid"
    start_log_server "$name-logs" "$MLOPS_AIRFLOW_HOSTNAME" "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" \
      "$dir/log-server.log"
  )
}
