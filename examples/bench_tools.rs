//! Tools for `scripts/bench.sh` (not part of pikachu):
//!
//! - `receive --port-file F`: a minimal HTTP/1.1 webhook receiver on 127.0.0.1 (a port
//!   of its own, written to F). Thread per connection, keep-alive, no JSON parsing: it
//!   counts envelopes by their `"task_id":` key and, where a row carries a `"sent_us":`
//!   column (the client's unix time in µs), records its receipt time. `GET /stats`
//!   answers the counts and receipt − send percentiles as JSON, `GET /pairs` the
//!   "sent_us receipt_us" lines; `POST /reset` zeroes them.
//! - `ureq --url U --threads N --requests M`: the bare ureq client, configured as
//!   pikachu's workers are, POSTing a typical envelope: the batch-1 ceiling.
//! - `bulk --url mysql://… --rows N --per-txn K`: N rows in K-row INSERT transactions.
//! - `paced --url mysql://… --rows N --rate R`: N single-row autocommit INSERTs at R
//!   rows/s, each carrying its send time in `sent_us`; writes "sent_us ack_us" lines
//!   (ack: the INSERT's OK arrived, so the commit happened in between) to --pairs-file.
//!
//! The bench table: `bench.events (id BIGINT PRIMARY KEY, name VARCHAR(64), email
//! VARCHAR(128), age INT, balance DECIMAL(10,2), created_at DATETIME, sent_us BIGINT)`.
// A test or benchmark that cannot set itself up should stop loudly, not carry on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        usage();
    };
    let opt = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let num = |name: &str, default: u64| -> u64 {
        opt(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| fail(&format!("{name}: {v} is not a number")))
        })
    };
    match cmd.as_str() {
        "receive" => receive(&opt("--port-file").unwrap_or_else(|| usage())),
        "ureq" => ureq_client(
            &opt("--url").unwrap_or_else(|| usage()),
            num("--threads", 4) as usize,
            num("--requests", 20_000),
        ),
        "bulk" => bulk(
            &opt("--url").unwrap_or_else(|| usage()),
            num("--rows", 200_000),
            num("--per-txn", 1000),
            num("--first-id", 1),
        ),
        "paced" => paced(
            &opt("--url").unwrap_or_else(|| usage()),
            num("--rows", 10_000),
            num("--rate", 500),
            num("--first-id", 1_000_000_000),
            &opt("--pairs-file").unwrap_or_else(|| usage()),
        ),
        "select" => select(
            &opt("--url").unwrap_or_else(|| usage()),
            &opt("--table").unwrap_or_else(|| usage()),
        ),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_tools receive --port-file F | ureq --url U [--threads N] [--requests M] \
         | bulk --url mysql://… [--rows N] [--per-txn K] | paced --url mysql://… --pairs-file F [--rows N] [--rate R] \
         | select --url mysql://… --table T"
    );
    std::process::exit(2)
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_tools: {msg}");
    std::process::exit(1)
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

// ---------------------------------------------------------------------------------
// receiver

#[derive(Default)]
struct Counts {
    requests: u64,
    events: u64,
    first_us: u64,
    last_us: u64,
    /// (sent_us, receipt_us) of every row that carried a send time.
    received: Vec<(u64, u64)>,
}

fn receive(port_file: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail(&format!("bind: {e}")));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::fs::write(port_file, format!("{port}\n"))
        .unwrap_or_else(|e| fail(&format!("{port_file}: {e}")));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let connections = Arc::new(AtomicU64::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let counts = counts.clone();
        connections.fetch_add(1, Ordering::Relaxed);
        let connections = connections.clone();
        std::thread::spawn(move || {
            let _ = serve(stream, &counts, &connections);
        });
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(
    mut stream: TcpStream,
    counts: &Mutex<Counts>,
    connections: &AtomicU64,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut length = 0usize;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    // pikachu and ureq send Content-Length for in-memory bodies.
                    let _ = stream.write_all(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    return Ok(());
                }
            }
        }
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let now = unix_micros();
        let body = &buf[head_end..head_end + length];
        if request_line.starts_with("GET /pairs") {
            let text: String = {
                let c = counts.lock().unwrap_or_else(|p| p.into_inner());
                c.received
                    .iter()
                    .map(|(s, r)| format!("{s} {r}\n"))
                    .collect()
            };
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            stream.write_all(reply.as_bytes())?;
        } else if request_line.starts_with("GET /stats") {
            let json = stats_json(counts, connections);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            );
            stream.write_all(reply.as_bytes())?;
        } else if request_line.starts_with("POST /reset") {
            *counts.lock().unwrap_or_else(|p| p.into_inner()) = Counts::default();
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
        } else {
            // One pass over the quotes: both keys start with one, and this receiver must
            // stay far cheaper than the pikachu it measures.
            let mut events = 0u64;
            let mut sent = Vec::new();
            let mut i = 0;
            while i < body.len() {
                if body[i] == b'"' {
                    let rest = &body[i..];
                    if rest.starts_with(b"\"task_id\":") {
                        events += 1;
                    } else if rest.starts_with(b"\"sent_us\":") {
                        let digits = &rest[10..];
                        let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                        if let Some(v) = std::str::from_utf8(&digits[..n])
                            .ok()
                            .and_then(|s| s.parse::<u64>().ok())
                        {
                            sent.push((v, now));
                        }
                    }
                }
                i += 1;
            }
            {
                let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                if c.requests == 0 {
                    c.first_us = now;
                }
                c.requests += 1;
                c.events += events;
                c.last_us = now;
                c.received.extend(sent);
            }
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
        }
        buf.drain(..head_end + length);
    }
}

fn stats_json(counts: &Mutex<Counts>, connections: &AtomicU64) -> String {
    let c = counts.lock().unwrap_or_else(|p| p.into_inner());
    let mut lat: Vec<u64> = c
        .received
        .iter()
        .map(|(s, r)| r.saturating_sub(*s))
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    format!(
        "{{\"requests\":{},\"events\":{},\"first_us\":{},\"last_us\":{},\"connections\":{},\
         \"latency_n\":{},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        c.requests,
        c.events,
        c.first_us,
        c.last_us,
        connections.load(Ordering::Relaxed),
        lat.len(),
        pct(0.50),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    )
}

// ---------------------------------------------------------------------------------
// bare ureq client

/// A webhook envelope of the bench table's shape (about the size pikachu sends).
const ENVELOPE: &str = r#"{"id":"binlog.000001:18825:0","task_id":"bench","event":"insert","database":"bench","table":"events","primary_id":42,"data":{"id":42,"name":"name-42","email":"user42@example.com","age":42,"balance":"1234.50","created_at":"2024-02-29 13:45:01","sent_us":null},"timestamp":"2026-11-23T10:15:00Z","position":{"file":"binlog.000001","pos":18825}}"#;

fn ureq_client(url: &str, threads: usize, requests: u64) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        // No timeout: with one, ureq resolves the host on a new thread before every
        // request, which would make this ceiling slower than pikachu (whose resolver
        // avoids that). Without, it resolves inline: the fastest a bare client gets.
        .max_redirects(0)
        .max_idle_connections_per_host(threads)
        .max_idle_connections(threads)
        .build()
        .new_agent();
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (agent, next, url) = (agent.clone(), next.clone(), url.to_owned());
            std::thread::spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < requests {
                    let mut response = agent
                        .post(&url)
                        .header("Content-Type", "application/json")
                        .header("X-Pikachu-Event-Id", "binlog.000001:18825:0")
                        .header("X-Pikachu-Task-Id", "bench")
                        .send(ENVELOPE.as_bytes())
                        .unwrap_or_else(|e| fail(&format!("POST {url}: {e}")));
                    let _ = response.body_mut().read_to_vec();
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let secs = start.elapsed().as_secs_f64();
    // The rate, and this process's CPU seconds per 100k requests (the batch-1 CPU
    // ceiling): utime + stime are fields 14 and 15 of /proc/self/stat, in clock ticks
    // (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    println!(
        "{:.0} {:.2}",
        requests as f64 / secs,
        ticks / 100.0 / requests as f64 * 100_000.0
    );
}

// ---------------------------------------------------------------------------------
// inserts

fn connect(url: &str) -> mysql::Conn {
    let opts = mysql::Opts::from_url(url).unwrap_or_else(|e| fail(&format!("{url}: {e}")));
    mysql::Conn::new(opts).unwrap_or_else(|e| fail(&format!("connect: {e}")))
}

fn values(id: u64, sent_us: Option<u64>) -> String {
    let sent = sent_us.map_or("NULL".to_owned(), |v| v.to_string());
    format!(
        "({id},'name-{id}','user{id}@example.com',{},{}.{:02},'2024-02-29 13:45:01',{sent})",
        id % 100,
        id % 100_000,
        id % 100
    )
}

const INSERT: &str = "INSERT INTO events (id,name,email,age,balance,created_at,sent_us) VALUES ";

/// The ceiling of a backfill: one plain `SELECT *` of the table with the same client
/// (prepared, binary protocol, as the backfill reads). Prints "rows rows_per_second"
/// of the best of three.
fn select(url: &str, table: &str) {
    let mut conn = connect(url);
    let mut best: Option<(u64, f64)> = None;
    for _ in 0..3 {
        let start = Instant::now();
        let result = conn
            .exec_iter(format!("SELECT * FROM {table}"), ())
            .unwrap_or_else(|e| fail(&format!("select: {e}")));
        let mut rows = 0u64;
        for row in result {
            let row = row.unwrap_or_else(|e| fail(&format!("select: {e}")));
            std::hint::black_box(row.unwrap());
            rows += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        if best.is_none_or(|(_, s)| secs < s) {
            best = Some((rows, secs));
        }
    }
    let (rows, secs) = best.unwrap_or((0, 1.0));
    println!("{rows} {}", (rows as f64 / secs.max(1e-6)).round());
}

fn bulk(url: &str, rows: u64, per_txn: u64, first_id: u64) {
    let mut conn = connect(url);
    let start = Instant::now();
    let mut id = first_id;
    let end = first_id + rows;
    while id < end {
        let n = per_txn.min(end - id);
        let mut sql = String::with_capacity(INSERT.len() + 100 * n as usize);
        sql.push_str(INSERT);
        for k in 0..n {
            if k > 0 {
                sql.push(',');
            }
            sql.push_str(&values(id + k, None));
        }
        conn.query_drop(&sql)
            .unwrap_or_else(|e| fail(&format!("insert: {e}")));
        id += n;
    }
    eprintln!(
        "bulk: {rows} rows in {}-row transactions in {:.1} s",
        per_txn,
        start.elapsed().as_secs_f64()
    );
}

fn paced(url: &str, rows: u64, rate: u64, first_id: u64, pairs_file: &str) {
    let mut conn = connect(url);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    // The INSERT's round trip (execute + commit), to tell the server's share of the
    // send-to-receipt latency from pikachu's.
    let mut round_trips = Vec::with_capacity(rows as usize);
    let mut pairs = String::new();
    for i in 0..rows {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent_us = unix_micros();
        let sql = format!("{INSERT}{}", values(first_id + i, Some(sent_us)));
        let sent = Instant::now();
        conn.query_drop(&sql)
            .unwrap_or_else(|e| fail(&format!("insert: {e}")));
        round_trips.push(sent.elapsed().as_micros() as u64);
        pairs.push_str(&format!("{sent_us} {}\n", unix_micros()));
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "paced: {rows} rows in {secs:.1} s ({:.0} rows/s)",
        rows as f64 / secs
    );
    std::fs::write(pairs_file, pairs).unwrap_or_else(|e| fail(&format!("{pairs_file}: {e}")));
    round_trips.sort_unstable();
    let pct = |p: f64| round_trips[((round_trips.len() as f64 - 1.0) * p).round() as usize];
    // stdout: INSERT round trip p50 and p99 in µs.
    if !round_trips.is_empty() {
        println!("{} {}", pct(0.5), pct(0.99));
    }
}
