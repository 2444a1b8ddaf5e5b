#!/usr/bin/env bash
# `make stop`: stop Airflow, MLflow, the prediction service and every process of this project's
# Airflow home.
# standalone's children survive a plain SIGTERM to the parent, so the whole process group
# is signalled, then any straggler whose environment names our AIRFLOW_HOME is killed.
set -uo pipefail
cd "$(dirname "$0")/.."
AF_HOME=${AIRFLOW_HOME:-$PWD/.airflow}
unset AIRFLOW_HOME  # our own helper processes must not match the sweep below
pidfile=$AF_HOME/airflow.pgid

# This script and its ancestors (make, the user's shell) are never killed.
keep=" "
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  keep="$keep$p "
  p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
done

ours() {
  # PIDs of Airflow processes (command line names airflow) whose environment has
  # AIRFLOW_HOME=<ours>. Other programs of a shell that sourced .airflow/env.sh are spared.
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    case "$keep" in *" $pid "*) continue ;; esac
    [ "$pid" = "$BASHPID" ] && continue  # the subshell running this function
    { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null \
      | grep -Eq '^airflow |/bin/airflow( |$)|mlflow|uvicorn|gunicorn|include.serving' || continue
    if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -qx "AIRFLOW_HOME=$AF_HOME"; then
      echo "$pid"
    fi
  done
}

stop_group() {  # stop_group <name> <pgid file>
  local pgid
  [ -s "$2" ] || return 0
  pgid=$(cat "$2")
  if kill -0 -- "-$pgid" 2>/dev/null; then
    echo "stopping $1 (process group $pgid)"
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 1 30); do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
  rm -f "$2"
}

stop_group "the prediction service" "$AF_HOME/serving.pgid"
stop_group Airflow "$pidfile"
stop_group MLflow "$AF_HOME/mlflow.pgid"

left=$(ours)
if [ -n "$left" ]; then
  echo "killing leftover processes: $(echo $left)"
  kill -KILL $left 2>/dev/null || true
  sleep 1
fi
left=$(ours)
if [ -n "$left" ]; then
  echo "still running: $(echo $left)" >&2
  exit 1
fi
echo "stopped: no Airflow, MLflow or serving process of this project is running"
