#!/usr/bin/env bash
# `make stop`: stop every process of one Airflow home (AIRFLOW_HOME, default .airflow), of
# either profile: the embedded one (standalone, MLflow, the prediction service) or the server
# one (Airflow's components, Celery workers, log servers, MLflow, the S3 server, Redis,
# PostgreSQL). Clients stop before the servers they use; the S3 server saves its objects on
# SIGTERM, Redis its data, PostgreSQL shuts down through pg_ctl.
# standalone's children survive a plain SIGTERM to the parent, so each whole process group is
# signalled, then any straggler whose environment names our AIRFLOW_HOME is killed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
AF_HOME=${AIRFLOW_HOME:-$PWD/.airflow}
unset AIRFLOW_HOME  # our own helper processes must not match the sweep below

# This script and its ancestors (make, the user's shell) are never killed.
keep=" "
p=$$
while [ -n "$p" ] && [ "$p" -gt 1 ]; do
  keep="$keep$p "
  p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
done

project_command() {  # project_command <pid>: its command line is one of the project's programs
  { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null \
    | grep -Eq '^airflow |/bin/airflow( |$)|mlflow|uvicorn|gunicorn|include.serving|celery|redis-server|scripts.server.s3_server|postgres'
}

ours() {
  # PIDs of the project's processes (by command line) whose environment has AIRFLOW_HOME=<ours>.
  # Other programs of a shell that sourced <home>/env.sh are spared.
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}; pid=${pid%/environ}
    case "$keep" in *" $pid "*) continue ;; esac
    [ "$pid" = "$BASHPID" ] && continue  # the subshell running this function
    project_command "$pid" || continue
    if { tr '\0' '\n' < "$env"; } 2>/dev/null | grep -qx "AIRFLOW_HOME=$AF_HOME"; then
      echo "$pid"
    fi
  done
}

members() {
  # The processes of the home's services and everything they started, even what left their
  # process group (a task process runs in a session of its own): the trees of every process in
  # a group of <home>/*.pgid and of the home's PostgreSQL server. Read before anything is stopped.
  local roots
  roots=$({ cat "$AF_HOME"/*.pgid; head -n 1 "$AF_HOME/postgres/data/postmaster.pid"; } 2>/dev/null \
    | awk 'NF == 1 && $1 ~ /^[0-9]+$/' | tr '\n' ' ')
  [ -n "$roots" ] || return 0
  ps -e -o pid= -o ppid= -o pgid= | awk -v roots="$roots" '
    BEGIN { n = split(roots, queue, " "); for (i = 1; i <= n; i++) root[queue[i]] = 1 }
    { kids[$2] = kids[$2] " " $1; if ($3 in root) queue[++n] = $1 }
    END {
      for (i = 1; i <= n; i++) {
        p = queue[i]; if (p == "" || seen[p]++) continue
        print p; m = split(kids[p], k, " "); for (j = 1; j <= m; j++) queue[++n] = k[j]
      }
    }'
}
tree=$(members)

stop_groups() {  # stop_groups <seconds> <name>...: SIGTERM to each group of <home>/<name>.pgid, then wait
  local seconds=$1 name pgid alive
  shift
  local groups=()
  for name in "$@"; do
    [ -s "$AF_HOME/$name.pgid" ] || continue
    pgid=$(cat "$AF_HOME/$name.pgid")
    if kill -0 -- "-$pgid" 2>/dev/null; then
      echo "stopping $name (process group $pgid)"
      kill -TERM -- "-$pgid" 2>/dev/null
      groups+=("$pgid")
    fi
    rm -f "$AF_HOME/$name.pgid"
  done
  for _ in $(seq 1 "$seconds"); do
    alive=0
    for pgid in "${groups[@]}"; do
      kill -0 -- "-$pgid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && return 0
    sleep 1
  done
  for pgid in "${groups[@]}"; do
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
}

names() {  # the services of <home> matching a glob, by their pgid files
  local f
  for f in "$AF_HOME"/$1.pgid; do
    [ -e "$f" ] && basename "$f" .pgid
  done
}

# Clients first, then what they talk to: the prediction service, Airflow (standalone, or every
# component with the Celery workers and their log servers), MLflow, then the servers.
stop_groups 30 serving
# shellcheck disable=SC2046  # one word per service name
stop_groups 30 airflow api-server scheduler dag-processor triggerer $(names 'worker*') $(names '*-logs')
stop_groups 30 mlflow
stop_groups 120 s3  # saves its objects before it exits
stop_groups 30 redis
if [ -d "$AF_HOME/postgres" ]; then
  # shellcheck source=scripts/server/postgres.sh
  AIRFLOW_HOME=$AF_HOME . scripts/server/postgres.sh
  AIRFLOW_HOME=$AF_HOME pg_stop || echo "pg_ctl stop failed" >&2
fi

alive() {  # our processes still running: by environment, or from the trees read at the start
  local pid
  {
    ours
    for pid in $tree; do
      case "$keep" in *" $pid "*) continue ;; esac
      project_command "$pid" || continue  # gone, or its number reused by another program
      case "$(ps -o stat= -p "$pid")" in "" | Z*) ;; *) echo "$pid" ;; esac
    done
  } | sort -un
}

mapfile -t left < <(alive)
if [ "${#left[@]}" -gt 0 ]; then
  echo "killing leftover processes: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null || true
  sleep 1
fi
mapfile -t left < <(alive)
if [ "${#left[@]}" -gt 0 ]; then
  echo "still running: ${left[*]}" >&2
  exit 1
fi
echo "stopped: no process of $AF_HOME is running"
