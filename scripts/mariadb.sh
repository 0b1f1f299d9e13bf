#!/usr/bin/env bash
# The project's own MariaDB with the binlog on, for development and tests.
#
#   scripts/mariadb.sh start [--port P] [--datadir D] [-- extra mariadbd options]
#   scripts/mariadb.sh stop|status [--datadir D]
#   scripts/mariadb.sh sql [--port P] [-- client arguments, e.g. -e 'select 1']
#   scripts/mariadb.sh env [--port P]
#
# Defaults: port 3307, data directory <repo>/.local/mariadb. It runs its own mariadbd
# on its own port, socket and data directory, and never touches a system MariaDB/MySQL
# (its service, socket, data or port 3306). Root has an empty password: local use only.
# Installs mariadb-server and mariadb-client with apt-get when they are missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=${1:-}
[ $# -gt 0 ] && shift
port=3307
datadir="$repo/.local/mariadb"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --datadir) datadir=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "mariadb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$datadir"
datadir=$(cd "$datadir" && pwd)
pidfile="$datadir/mysqld.pid"
socket="$datadir/mysqld.sock"

say() { echo "mariadb.sh: $*" >&2; }

client() {
  mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$port" -uroot --default-character-set=utf8mb4 "$@"
}

install_if_missing() {
  if command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 \
     && command -v mariadb >/dev/null 2>&1; then
    return
  fi
  # shellcheck source=prereqs.sh
  . "$repo/scripts/prereqs.sh"
  apt_install mariadb-server mariadb-client
}

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

start() {
  install_if_missing
  if running; then
    say "already running on port $port (data $datadir)"
    return
  fi
  if [ ! -d "$datadir/data/mysql" ]; then
    say "initialising $datadir/data"
    # A private tmpdir: bootstraps running side by side in the shared /tmp fail now
    # and then ("Unknown table 'mysql.tmp_user_sys'").
    mkdir -p "$datadir/tmp"
    mariadb-install-db --no-defaults --user=root --datadir="$datadir/data" --tmpdir="$datadir/tmp" \
      --auth-root-authentication-method=normal --skip-test-db >"$datadir/install.log" 2>&1 \
      || { cat "$datadir/install.log" >&2; exit 1; }
  fi
  mkdir -p "$datadir/tmp"
  say "starting mariadbd on 127.0.0.1:$port (data $datadir)"
  nohup mariadbd --no-defaults --user=root --datadir="$datadir/data" --port="$port" \
    --bind-address=127.0.0.1 --socket="$socket" --pid-file="$pidfile" \
    --log-bin="$datadir/data/binlog" --binlog-format=ROW --binlog-row-image=FULL \
    --binlog-row-metadata=FULL --server-id=1 --tmpdir="$datadir/tmp" \
    --log-error="$datadir/error.log" --skip-name-resolve --character-set-server=utf8mb4 \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=200 \
    ${extra[@]+"${extra[@]}"} >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    if client -e 'select 1' >/dev/null 2>&1; then
      say "ready on 127.0.0.1:$port"
      return
    fi
    sleep 0.1
  done
  say "mariadbd did not answer within 30 s; the end of $datadir/error.log:"
  tail -n 30 "$datadir/error.log" >&2 || true
  exit 1
}

stop() {
  if ! running; then
    say "not running (data $datadir)"
    return
  fi
  pid=$(cat "$pidfile")
  say "stopping mariadbd (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { say "stopped"; return; }
    sleep 0.1
  done
  say "still running after 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    if running; then echo "running (pid $(cat "$pidfile"), data $datadir)"; else echo "stopped (data $datadir)"; exit 1; fi ;;
  sql) client ${extra[@]+"${extra[@]}"} ;;
  env)
    echo "export PIKACHU_DATABASE_HOST=127.0.0.1"
    echo "export PIKACHU_DATABASE_PORT=$port"
    echo "export PIKACHU_DATABASE_USER=root" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
