#!/usr/bin/env bash
# Quick start: builds pikachu, starts the project's MariaDB (unless
# PIKACHU_DATABASE_HOST points at another server), creates a demo table, runs the
# webhook listener and pikachu, then changes demo rows every two seconds so that the
# webhooks scroll by. Ctrl-C stops everything it started (the MariaDB stays up; stop it
# with `scripts/mariadb.sh stop`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

. scripts/prereqs.sh
need_build_tools

# A debug build: it compiles in about a minute where the size-optimised release build
# (cargo build --release) takes several, and a demo does not need the speed.
echo "demo: building pikachu (the first build takes about a minute)" >&2
cargo build --quiet --bin pikachu
bin=target/debug/pikachu

if [ -z "${PIKACHU_DATABASE_HOST:-}" ]; then
  scripts/mariadb.sh start
  sql() { scripts/mariadb.sh sql -- -e "$1"; }
else
  command -v mariadb >/dev/null 2>&1 || apt_install mariadb-client
  sql() {
    mariadb --no-defaults --protocol=TCP -h"$PIKACHU_DATABASE_HOST" -P"${PIKACHU_DATABASE_PORT:-3306}" \
      -u"${PIKACHU_DATABASE_USER:-root}" ${PIKACHU_DATABASE_PASSWORD:+-p"$PIKACHU_DATABASE_PASSWORD"} \
      --default-character-set=utf8mb4 -e "$1"
  }
fi

sql "CREATE DATABASE IF NOT EXISTS pikachu_demo;
     CREATE TABLE IF NOT EXISTS pikachu_demo.users (
       id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), email VARCHAR(128),
       created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3));
     CREATE TABLE IF NOT EXISTS pikachu_demo.orders (
       id INT PRIMARY KEY AUTO_INCREMENT, user_id INT, amount DECIMAL(10,2), status ENUM('new','paid','shipped'));"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: stopped (MariaDB still runs: scripts/mariadb.sh stop)" >&2
}
trap cleanup EXIT INT TERM

"$bin" listen --port 3000 &
pids+=($!)
"$bin" -config conf/dev/config.yaml &
pids+=($!)

for _ in $(seq 1 100); do
  # bash's /dev/tcp: a fresh Debian machine need not have curl.
  (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  sleep 0.2
done
echo "demo: pikachu is up (health: http://127.0.0.1:8080/health, metrics: http://127.0.0.1:8080/metrics); changing rows every 2 s, Ctrl-C to stop" >&2

i=0
while true; do
  i=$((i + 1))
  sql "INSERT INTO pikachu_demo.users (name, email) VALUES ('user $i', 'user$i@example.com');
       SET @u = LAST_INSERT_ID();
       UPDATE pikachu_demo.users SET name = CONCAT(name, ' (renamed)') WHERE id = @u;
       INSERT INTO pikachu_demo.orders (user_id, amount, status) VALUES (@u, $i.50, 'new');
       DELETE FROM pikachu_demo.users WHERE id + 3 <= @u;" >/dev/null
  sleep 2
done
