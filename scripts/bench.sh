#!/usr/bin/env bash
# End-to-end benchmark of the release binary against a private MariaDB on this machine.
#
#   scripts/bench.sh [--rows N] [--latency-rows N] [--rate R] [--workers W] [--out FILE]
#
# Defaults: 200,000 rows, 10,000 latency rows at 500 rows/s, 4 workers. It starts its own
# MariaDB (scripts/mariadb.sh on a free port with a temporary data directory) and its own
# receiver (examples/bench_tools.rs), and removes both at the end. Nothing else is touched.
#
# Throughput: the rows are inserted first (1,000-row INSERT transactions), with the binlog
# position recorded before; pikachu then starts from that position, so only pikachu is
# measured: events/s from the first to the last webhook received, for batch_size 1 and 100.
# Ceilings measured in the same run: `mariadb-binlog --read-from-remote-server --verbose`
# decoding the same binlog range, and a bare ureq client against the same receiver.
# Latency: single-row inserts at a fixed rate, each carrying the client's send time in µs;
# the receiver records receipt times. The commit lies between the client's send and the
# INSERT's OK, so receipt − send bounds commit-to-receipt from above and receipt − OK from
# below; the server runs with innodb_flush_log_at_trx_commit=2 to keep that gap small. Memory: VmRSS when idle, VmHWM per run; CPU:
# utime+stime from /proc/<pid>/stat per 100k events.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

rows=200000
lat_rows=10000
rate=500
workers=4
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows=$2; shift 2 ;;
    --latency-rows) lat_rows=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

say() { echo "bench: $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

work=$(mktemp -d /tmp/pikachu-bench.XXXXXX)
db_port=$(free_port)
pids=()
cleanup() {
  for pid in ${pids[@]+"${pids[@]}"}; do kill "$pid" 2>/dev/null || true; done
  scripts/mariadb.sh stop --port "$db_port" --datadir "$work/db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "building the release binary and the bench tools"
cargo build --release --quiet --bin pikachu --example bench_tools
bin=target/release/pikachu
tools=target/release/examples/bench_tools

# The commit's own disk flush is the server's cost, not pikachu's: without it the client's
# send time lies closer to the commit, so send-to-receipt bounds commit-to-receipt tighter.
scripts/mariadb.sh start --port "$db_port" --datadir "$work/db" -- \
  --innodb-flush-log-at-trx-commit=2 --sync-binlog=0
sql() { scripts/mariadb.sh sql --port "$db_port" -- -N -B "$@"; }
sql -e "CREATE DATABASE bench; CREATE TABLE bench.events (id BIGINT PRIMARY KEY,
  name VARCHAR(64), email VARCHAR(128), age INT, balance DECIMAL(10,2),
  created_at DATETIME, sent_us BIGINT) ENGINE=InnoDB"
db_url="mysql://root@127.0.0.1:$db_port/bench"

# The receiver.
"$tools" receive --port-file "$work/receiver.port" & pids+=($!)
for _ in $(seq 1 100); do [ -s "$work/receiver.port" ] && break; sleep 0.05; done
hook_port=$(cat "$work/receiver.port")
hook="http://127.0.0.1:$hook_port"
stat_field() { curl -s "$hook/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
reset() { curl -s -X POST "$hook/reset" >/dev/null; }

master_pos() { sql -e "SHOW MASTER STATUS" | awk '{print $1, $2}'; }

# pikachu's configuration; $1 batch size, $2 start_from YAML, $3 data dir, $4 more task
# keys (optional).
write_config() {
  mkdir -p "$3"
  cat > "$3/config.yaml" <<EOF
database:
  host: 127.0.0.1
  port: $db_port
  user: root
  database: bench
  server_id: 4242
log:
  level: warn
server:
  enabled: false
dispatcher:
  worker_count: $workers
  queue_size: 1000
  batch_size: $1
  batch_timeout: 100ms
monitor:
  flush_interval: 1s
data_dir: $3
start_from: $2
tasks:
  - task_id: bench
    name: bench
    table_name: events
    events: [insert, update, delete]
    callback_url: $hook/hook
${4:-}
EOF
}

# /proc figures of a running process: "rss_kb hwm_kb cpu_seconds".
proc_figures() {
  local pid=$1 tck
  tck=$(getconf CLK_TCK)
  awk '/^VmRSS/{r=$2} /^VmHWM/{h=$2} END{printf "%s %s ", r, h}' "/proc/$pid/status"
  # utime and stime are fields 14 and 15; the command name (field 2) has no spaces here.
  awk -v t="$tck" '{printf "%.2f\n", ($14+$15)/t}' "/proc/$pid/stat"
}

# Waits until the receiver has $1 events (at most $2 seconds); fails otherwise.
wait_events() {
  local want=$1 deadline=$((SECONDS + $2)) got
  while :; do
    got=$(stat_field events)
    [ "$got" -ge "$want" ] && return 0
    if [ $SECONDS -ge $deadline ]; then say "only $got of $want events arrived"; return 1; fi
    sleep 0.2
  done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- ceilings -------------------------------------------------------------------------
say "bare ureq client against the receiver ($workers threads)"
ureq_rate=0
ureq_cpu=0
for t in "$workers"; do
  for _ in 1 2; do
    read -r r c < <("$tools" ureq --url "$hook/hook" --threads "$t" --requests 30000)
    if [ "$r" -gt "$ureq_rate" ]; then ureq_rate=$r; ureq_cpu=$c; fi
  done
done
reset

# ---- throughput -----------------------------------------------------------------------
read -r start_file start_pos < <(master_pos)
say "inserting $rows rows in 1,000-row transactions (from $start_file:$start_pos)"
"$tools" bulk --url "$db_url" --rows "$rows" --per-txn 1000
read -r end_file end_pos < <(master_pos)

say "mariadb-binlog --read-from-remote-server --verbose over the same range"
# Best of three: wall seconds and CPU seconds (user + system) of mariadb-binlog itself.
read -r binlog_secs binlog_cpu < <(python3 - "$work/binlog.txt" mariadb-binlog --no-defaults \
  --read-from-remote-server --verbose --host=127.0.0.1 --port="$db_port" --user=root \
  --start-position="$start_pos" --stop-position="$end_pos" "$start_file" <<'EOF'
import resource, subprocess, sys, time
best = None
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(sys.argv[1], "wb") as out:
        subprocess.run(sys.argv[2:], stdout=out, check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if best is None or wall < best[0]:
        best = (wall, cpu)
print(f"{best[0]:.4f} {best[1]:.4f}")
EOF
)
binlog_rows=$(grep -c '^### INSERT' "$work/binlog.txt" || true)
[ "$binlog_rows" -eq "$rows" ] || say "warning: mariadb-binlog showed $binlog_rows rows, not $rows"
rm -f "$work/binlog.txt"
binlog_rate=$(python3 -c "print(round($binlog_rows / $binlog_secs))")
binlog_per_cpu=$(python3 -c "print(round($binlog_rows / max($binlog_cpu, 0.001)))")
say "mariadb-binlog: $binlog_rate rows/s, $binlog_per_cpu rows per CPU second (load $(loadavg))"

declare -A rate_of hwm_of cpu_of load_of
for batch in 1 100; do
  reset
  dir="$work/run-$batch"
  write_config "$batch" "{file: $start_file, pos: $start_pos}" "$dir"
  load_of[$batch]=$(loadavg)
  say "pikachu, batch_size $batch, $rows events (load ${load_of[$batch]})"
  "$bin" -config "$dir/config.yaml" 2> "$dir/stderr.log" & pid=$!; pids+=($pid)
  if ! wait_events "$rows" 600; then tail -n 20 "$dir/stderr.log" >&2; exit 1; fi
  read -r _ hwm cpu < <(proc_figures "$pid")
  kill -TERM "$pid"; wait "$pid" || true
  stats=$(curl -s "$hook/stats")
  rate_of[$batch]=$(python3 -c "import json; s=json.loads('$stats'); print(round((s['events']) / max(1e-6, (s['last_us'] - s['first_us']) / 1e6)))")
  hwm_of[$batch]=$hwm
  cpu_of[$batch]=$(python3 -c "print(round($cpu / $rows * 100000, 2))")
  [ "$batch" = 100 ] && cpu100_raw=$cpu
  say "batch $batch: ${rate_of[$batch]} events/s, VmHWM $hwm kB, ${cpu_of[$batch]} CPU s per 100k"
done

# ---- backfill ------------------------------------------------------------------------
# The same table, now holding $rows rows: a plain SELECT * with the same client (best of
# three), then pikachu's `backfill: initial` of it at batch_size 100, events/s from the
# first to the last webhook; VmRSS when half the rows arrived and at the end shows
# whether memory grows with the table.
say "plain SELECT * of bench.events with the mysql crate"
read -r select_rows select_rate < <("$tools" select --url "$db_url" --table events)
reset
dir="$work/run-backfill"
write_config 100 latest "$dir" "    backfill: initial"
backfill_load=$(loadavg)
say "pikachu backfill of $select_rows rows, batch_size 100 (load $backfill_load)"
"$bin" -config "$dir/config.yaml" 2> "$dir/stderr.log" & pid=$!; pids+=($pid)
if ! wait_events $((select_rows / 2)) 600; then tail -n 20 "$dir/stderr.log" >&2; exit 1; fi
read -r backfill_rss_half _ _ < <(proc_figures "$pid")
if ! wait_events "$select_rows" 600; then tail -n 20 "$dir/stderr.log" >&2; exit 1; fi
read -r backfill_rss_end backfill_hwm _ < <(proc_figures "$pid")
kill -TERM "$pid"; wait "$pid" || true
stats=$(curl -s "$hook/stats")
backfill_rate=$(python3 -c "import json; s=json.loads('$stats'); print(round((s['events']) / max(1e-6, (s['last_us'] - s['first_us']) / 1e6)))")
say "backfill: $backfill_rate rows/s (SELECT: $select_rate rows/s); VmRSS $backfill_rss_half kB at half, $backfill_rss_end kB at the end"

# ---- latency and idle memory ---------------------------------------------------------
reset
dir="$work/run-latency"
write_config 1 latest "$dir"
"$bin" -config "$dir/config.yaml" 2> "$dir/stderr.log" & pid=$!; pids+=($pid)
sleep 3
read -r idle_rss _ cpu0 < <(proc_figures "$pid")
lat_load=$(loadavg)
say "idle: VmRSS $idle_rss kB; $lat_rows single-row inserts at $rate rows/s (load $lat_load)"
read -r rtt50 rtt99 < <("$tools" paced --url "$db_url" --rows "$lat_rows" --rate "$rate" \
  --first-id 1000000000 --pairs-file "$work/acks.txt")
wait_events "$lat_rows" 120
read -r _ lat_hwm cpu1 < <(proc_figures "$pid")
kill -TERM "$pid"; wait "$pid" || true
curl -s "$hook/pairs" > "$work/receipts.txt"
# The commit happens between the client's send and the INSERT's OK (ack): receipt − send
# bounds commit-to-receipt from above (and is what the targets are judged on), receipt −
# ack from below (negative when the webhook arrived before the client saw its OK).
read -r p50 p99 pmax a50 a99 amax < <(python3 - "$work/acks.txt" "$work/receipts.txt" <<'EOF'
import sys
ack = dict(map(int, l.split()) for l in open(sys.argv[1]) if l.strip())
rec = [tuple(map(int, l.split())) for l in open(sys.argv[2]) if l.strip()]
up = sorted(r - s for s, r in rec)
low = sorted(r - ack[s] for s, r in rec if s in ack)
pct = lambda v, p: v[round((len(v) - 1) * p)]
print(pct(up, .5), pct(up, .99), up[-1], pct(low, .5), pct(low, .99), low[-1])
EOF
)
lat_cpu=$(python3 -c "print(round(($cpu1 - $cpu0) / $lat_rows * 100000, 2))")

size=$(stat -c %s "$bin")
peak=$(printf '%s\n' "${hwm_of[1]}" "${hwm_of[100]}" "$lat_hwm" | sort -n | tail -1)

# ---- report ---------------------------------------------------------------------------
report() {
  python3 - "$@" <<EOF
rows = $rows
r1, r100, ureq, binlog = ${rate_of[1]}, ${rate_of[100]}, $ureq_rate, $binlog_rate
p50, p99, pmax = $p50, $p99, $pmax
idle, peak, size = $idle_rss, $peak, $size
def line(what, value, target, ok, ratio=""):
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    print(f"| {what} | {value} | {target} | {ratio} | {verdict} |")
print("| figure | measured | target | ratio | |")
print("|---|---|---|---|---|")
line("batch 100 throughput", f"{r100:,} events/s", ">= 40% of mariadb-binlog", r100 >= 0.4 * binlog, f"{r100 / binlog:.0%} of {binlog:,} rows/s")
line("batch 100 events per CPU second", f"{rows / ($cpu100_raw):,.0f}", "(ceiling: mariadb-binlog per CPU s)", None, f"{rows / ($cpu100_raw) / $binlog_per_cpu:.0%} of {$binlog_per_cpu:,}")
line("batch 1 throughput", f"{r1:,} events/s", ">= 70% of bare ureq", r1 >= 0.7 * ureq, f"{r1 / ureq:.0%} of {ureq:,} req/s")
line("latency p50 (send to receipt)", f"{p50 / 1000:.2f} ms", "< 0.5 ms", p50 < 500)
line("latency p99 (send to receipt)", f"{p99 / 1000:.2f} ms", "< 1 ms", p99 < 1000)
line("latency max (send to receipt)", f"{pmax / 1000:.2f} ms", "-", None)
line("latency p50 / p99 / max (INSERT OK to receipt)", f"{$a50 / 1000:.2f} / {$a99 / 1000:.2f} / {$amax / 1000:.2f} ms", "-", None)
line("INSERT round trip p50 / p99 (the server's share)", f"{$rtt50 / 1000:.2f} / {$rtt99 / 1000:.2f} ms", "-", None)
line("idle RSS", f"{idle / 1024:.1f} MB", "< 8 MB", idle < 8 * 1024)
line("peak RSS (VmHWM)", f"{peak / 1024:.1f} MB", "< 32 MB", peak < 32 * 1024)
line("CPU per 100k events, batch 1", "${cpu_of[1]} s", "<= 1.5x bare ureq", ${cpu_of[1]} <= 1.5 * $ureq_cpu, f"{${cpu_of[1]} / max($ureq_cpu, 0.01):.2f}x of $ureq_cpu s")
line("CPU per 100k events, batch 100", "${cpu_of[100]} s", "< 1 s", ${cpu_of[100]} < 1.0)
line("CPU per 100k events, 500/s singles", "$lat_cpu s", "-", None)
line("release binary", f"{size / 1048576:.1f} MB", "< 8 MB", size < 8 * 1048576)
line("backfill, batch 100", f"{$backfill_rate:,} rows/s", ">= 50% of a plain SELECT *", $backfill_rate >= 0.5 * $select_rate, f"{$backfill_rate / $select_rate:.0%} of {$select_rate:,} rows/s")
line("backfill VmRSS at half / at the end / VmHWM", f"{$backfill_rss_half / 1024:.1f} / {$backfill_rss_end / 1024:.1f} / {$backfill_hwm / 1024:.1f} MB", "flat", None)
EOF
}
{
  echo "pikachu end-to-end benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load at end $(loadavg)"
  echo "rows: $rows (1,000-row transactions), workers: $workers; latency: $lat_rows rows at $rate rows/s"
  echo "peak RSS by run: batch 1 ${hwm_of[1]} kB, batch 100 ${hwm_of[100]} kB, latency $lat_hwm kB"
  echo "load average (1/5/15 min) at the start of each run: batch 1 ${load_of[1]}; batch 100 ${load_of[100]}; backfill $backfill_load; latency $lat_load"
  echo
  report
} | tee ${out:+"$out"}
