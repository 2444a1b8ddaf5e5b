# shellcheck shell=bash
# PostgreSQL of the server profile (sourced by scripts/run_server.sh and scripts/stop.sh): one
# cluster in $AIRFLOW_HOME/postgres, on 127.0.0.1 only. Logins over TCP need a password
# (scram-sha-256); the superuser has none and connects only through the cluster's own socket as
# the cluster's system user (peer). PostgreSQL refuses to run as root: as root the cluster
# belongs to the `postgres` system user (as tests/e2e/postgres.py does).

pg_bindir() {  # Debian's server binaries (/usr/lib/postgresql/<version>/bin), or initdb's folder
  local initdb dir
  initdb=$(command -v initdb || true)
  if [ -n "$initdb" ]; then
    dirname "$(readlink -f "$initdb")"
    return
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && echo "$dir"
  done | sort -V | tail -n 1
}

pg_owner() {
  if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

as_pg() {  # as_pg <command...>: as the cluster's owner, in an environment holding no secret
  local clean=(env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "AIRFLOW_HOME=$AIRFLOW_HOME")
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "${clean[@]}" "$@"
  else
    "${clean[@]}" "$@"
  fi
}

pg_start() {  # initdb at first start, then start the cluster unless it runs
  local bindir root=$AIRFLOW_HOME/postgres
  bindir=$(pg_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "PostgreSQL's server binaries (initdb, pg_ctl) are missing: run \`make system\`" >&2
    return 1
  fi
  mkdir -p "$root/run"
  chmod 0755 "$AIRFLOW_HOME"  # the cluster's owner walks into its folder; secrets stay 0600
  if [ "$(id -u)" = 0 ]; then chown postgres: "$root" "$root/run"; fi
  if [ ! -s "$root/data/PG_VERSION" ]; then
    echo "    initdb $root/data"
    as_pg "$bindir/initdb" -D "$root/data" -U "$(pg_owner)" -E UTF8 --auth-local=peer \
      --auth-host=scram-sha-256 > "$root/initdb.log" 2>&1 \
      || { tail -n 20 "$root/initdb.log" >&2; return 1; }
  fi
  if as_pg "$bindir/pg_ctl" -D "$root/data" status > /dev/null 2>&1; then
    echo "    PostgreSQL already running"
    return
  fi
  as_pg "$bindir/pg_ctl" -D "$root/data" -l "$root/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $MLOPS_SERVER_PG_PORT -k $root/run" start > /dev/null \
    || { tail -n 20 "$root/postgres.log" >&2; return 1; }
}

pg_ensure_databases() {  # one login role and one database of the same name each, idempotent
  local db password sql
  # A failing statement would be logged with its text, passwords included: log none.
  sql="SET log_min_error_statement = panic;"
  for db in $MLOPS_SERVER_PG_DATABASES; do
    password=$(cat "$AIRFLOW_HOME/secrets/pg-$db")
    sql+="
SELECT 'CREATE ROLE $db LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$db') \\gexec
ALTER ROLE $db LOGIN PASSWORD '$password';
SELECT 'CREATE DATABASE $db OWNER $db' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db') \\gexec
REVOKE ALL ON DATABASE $db FROM PUBLIC;"
  done
  printf '%s\n' "$sql" | as_pg "$(pg_bindir)/psql" -X -q -v ON_ERROR_STOP=1 -h "$AIRFLOW_HOME/postgres/run" \
    -p "$MLOPS_SERVER_PG_PORT" -U "$(pg_owner)" -d postgres > /dev/null
}

pg_stop() {  # stop the cluster of $AIRFLOW_HOME if it runs (fast: open sessions are closed)
  local data=$AIRFLOW_HOME/postgres/data
  [ -s "$data/postmaster.pid" ] || return 0
  echo "stopping PostgreSQL ($data)"
  as_pg "$(pg_bindir)/pg_ctl" -D "$data" -m fast -w -t 60 stop > /dev/null
}
