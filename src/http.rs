//! The health and metrics endpoints, served by one tiny_http thread from a `Metrics`
//! handle.
//!
//! Read-only: it renders snapshots and never changes the pipeline; it sees no stage's
//! counters, only `Metrics::snapshot`. It owns the JSON shapes of `GET <health path>`
//! and `GET /metrics` (those of the Go tool, plus ours) and the Prometheus text
//! exposition. It must not block the pipeline: a snapshot reads atomics and a few short
//! per-stage locks, and rendering happens outside them.
//!
//! Routes: `GET|HEAD <health path>`, `GET|HEAD /metrics` (JSON, or Prometheus text by
//! `Accept` / `?format=prometheus`), and `GET|HEAD /metrics-json`, the path under which
//! the Go tool actually served its JSON metrics, kept so its dashboards keep working.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response, Server};

use crate::clock::rfc3339;
use crate::stats::{Metrics, StatsData, SystemFigures, LATENCY_BUCKETS, STATUS_CLASSES};

/// The version reported in `/health`, the JSON metrics and `pikachu_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const METRICS_PATH: &str = "/metrics";
/// The Go tool's JSON metrics path; always JSON, as there.
const METRICS_JSON_PATH: &str = "/metrics-json";

const CT_JSON: &str = "application/json";
const CT_TEXT: &str = "text/plain; charset=utf-8";
/// Prometheus text exposition format 0.0.4.
pub const CT_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Methods served on every known path. HEAD is there because `wget --spider` (the Go
/// tool's documented Docker health check) sends HEAD; tiny_http omits the body itself.
const ALLOWED_METHODS: &str = "GET, HEAD";

/// What `time.Time{}` marshals to in Go: the Go tool's `last_event_time` before the
/// first event. Kept instead of `null` so that clients parsing a time keep working.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A running metrics server; `stop` ends it (tests, orderly shutdown).
pub struct ServerHandle {
    server: Arc<Server>,
    thread: JoinHandle<()>,
    addr: SocketAddr,
}

impl ServerHandle {
    /// The address actually bound (useful when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests and waits for the serving thread to end.
    pub fn stop(self) {
        self.server.unblock();
        // The thread only renders and writes; if it panicked there is nothing to clean.
        let _ = self.thread.join();
    }

    /// Lets the server run until the process exits.
    pub fn into_thread(self) -> JoinHandle<()> {
        self.thread
    }
}

/// Serves the endpoints on `addr` (`server.bind`:`server.port`) from a new thread until
/// the process exits.
/// Fails (with the OS error, e.g. `AddrInUse`) when the port cannot be bound, and with
/// `InvalidInput` when `health_path` is not an absolute path or collides with /metrics.
pub fn spawn(
    addr: SocketAddr,
    health_path: &str,
    stats: Arc<dyn Metrics>,
) -> io::Result<JoinHandle<()>> {
    start(addr, health_path, stats).map(ServerHandle::into_thread)
}

/// Like `spawn`, on any address, returning a handle that knows the bound port and can
/// stop the server.
pub fn start(
    addr: SocketAddr,
    health_path: &str,
    stats: Arc<dyn Metrics>,
) -> io::Result<ServerHandle> {
    validate_health_path(health_path)?;
    // Binding ourselves (rather than `Server::http`) keeps the io::ErrorKind, so the
    // caller can say "port 8080 is already in use" instead of a boxed string.
    let listener = TcpListener::bind(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for the health/metrics server: {e}"),
        )
    })?;
    let addr = listener.local_addr()?;
    let server = Server::from_listener(listener, None).map_err(|e| {
        io::Error::other(format!(
            "cannot start the health/metrics server on {addr}: {e}"
        ))
    })?;
    let server = Arc::new(server);
    let routes = Routes {
        health_path: health_path.to_owned(),
    };
    let serving = Arc::clone(&server);
    let thread = std::thread::Builder::new()
        .name("http-metrics".into())
        .spawn(move || serve(&serving, &routes, &*stats))?;
    Ok(ServerHandle {
        server,
        thread,
        addr,
    })
}

fn validate_health_path(path: &str) -> io::Result<()> {
    let bad = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("server.path {path:?} {why}"),
        ))
    };
    if !path.starts_with('/') {
        return bad("must start with `/` (e.g. /health)");
    }
    if path.contains(['?', '#', ' ', '\t', '\r', '\n']) {
        return bad("must be a plain path without query, fragment or whitespace");
    }
    if path == METRICS_PATH || path == METRICS_JSON_PATH {
        return bad("is already used by the metrics endpoint; choose another (e.g. /health)");
    }
    Ok(())
}

struct Routes {
    health_path: String,
}

/// One request at a time: answers are small, and the pipeline never waits on us.
fn serve(server: &Server, routes: &Routes, stats: &dyn Metrics) {
    for request in server.incoming_requests() {
        let reply = route(
            request.method(),
            request.url(),
            header_value(&request, "Accept"),
            routes,
            stats,
        );
        if let Err(e) = respond(request, reply) {
            // The client went away; nothing to do but note it.
            log::debug!("metrics server: could not write a response: {e}");
        }
    }
}

fn header_value<'r>(request: &'r Request, name: &'static str) -> Option<&'r str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// A response before it is written: the routing logic stays a pure function.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    /// Sends `Allow` (on 405).
    allow: bool,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
            allow: false,
        }
    }
}

fn respond(request: Request, reply: Reply) -> io::Result<()> {
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    let mut headers = vec![
        ("Content-Type", reply.content_type),
        // Health and metrics are live values; a cache in between would lie.
        ("Cache-Control", "no-store"),
    ];
    if reply.allow {
        headers.push(("Allow", ALLOWED_METHODS));
    }
    for (name, value) in headers {
        // Static ASCII names and values: from_bytes cannot fail on them, and if it ever
        // did, a missing header is better than a dead server thread.
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    request.respond(response)
}

fn route(
    method: &Method,
    url: &str,
    accept: Option<&str>,
    routes: &Routes,
    stats: &dyn Metrics,
) -> Reply {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let known = path == routes.health_path || path == METRICS_PATH || path == METRICS_JSON_PATH;
    if !known {
        return Reply::new(
            404,
            CT_TEXT,
            format!(
                "404 not found: {path}\nendpoints: {} and {METRICS_PATH}\n",
                routes.health_path
            ),
        );
    }
    if !matches!(method, Method::Get | Method::Head) {
        let mut reply = Reply::new(
            405,
            CT_TEXT,
            format!("405 method not allowed: {method} {path}; use GET\n"),
        );
        reply.allow = true;
        return reply;
    }
    if path == routes.health_path {
        let data = stats.snapshot();
        let (status, body) = render_health(&data, stats.uptime(), data.is_up());
        return Reply::new(status, CT_JSON, body);
    }
    let format = if path == METRICS_JSON_PATH {
        Ok(Format::Json)
    } else {
        negotiate(query, accept)
    };
    match format {
        Ok(Format::Json) => Reply::new(
            200,
            CT_JSON,
            render_metrics_json(&stats.snapshot(), stats.uptime()),
        ),
        // OpenMetrics requests are answered in the 0.0.4 text format with its content
        // type: Prometheus lists text/plain;version=0.0.4 in its Accept and parses it.
        Ok(Format::Prometheus) => Reply::new(
            200,
            CT_PROMETHEUS,
            render_prometheus(&stats.snapshot(), stats.uptime()),
        ),
        Err(msg) => Reply::new(400, CT_TEXT, msg),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Format {
    Json,
    Prometheus,
}

/// `?format=` wins; otherwise the `Accept` header decides by quality: Prometheus text
/// when `text/plain` or OpenMetrics is preferred strictly over JSON (explicit or by a
/// `*/*` / `application/*` wildcard). A tie goes to JSON, the Go tool's answer, so that
/// `curl` (`*/*`), browsers and clients sending `application/json, text/plain, */*` keep
/// getting JSON while a Prometheus server gets text.
fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<Format, String> {
    let format_param = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "format")
        .map(|(_, v)| v);
    if let Some(v) = format_param {
        return match v.to_ascii_lowercase().as_str() {
            "prometheus" | "text" | "openmetrics" => Ok(Format::Prometheus),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "400 bad request: unknown format {other:?}; use ?format=prometheus or ?format=json\n"
            )),
        };
    }
    let Some(accept) = accept else {
        return Ok(Format::Json);
    };
    let (mut prom_q, mut json_q) = (0.0_f32, 0.0_f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/plain" | "text/*" | "application/openmetrics-text" => prom_q = prom_q.max(q),
            "application/json" | "application/*" | "*/*" => json_q = json_q.max(q),
            _ => {}
        }
    }
    if prom_q > 0.0 && prom_q > json_q {
        Ok(Format::Prometheus)
    } else {
        Ok(Format::Json)
    }
}

// ---------------------------------------------------------------------------------------
// Health

/// The health body and its status: 200 when `up`, 503 otherwise.
///
/// The Go tool's fields (`status`, `monitor_running`, `dispatcher_running`,
/// `event_queue_size`, `last_event_time`, and `uptime`/`version` from its README) plus
/// `source_connected`: we also report DOWN while the binlog connection is lost, and
/// without that field an operator would see DOWN with both components "running".
/// Keys come in the order written here (serde_json's `preserve_order` is on), not
/// sorted as Go's encoder sorts map keys; no JSON client depends on key order. The body
/// ends with a newline, as Go's `json.Encoder` writes one.
pub fn render_health(data: &StatsData, uptime: Duration, up: bool) -> (u16, String) {
    let mut body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "monitor_running": data.monitor_running,
        "dispatcher_running": data.dispatcher_running,
        "source_connected": data.source_connected,
        "event_queue_size": data.queue_depth,
        "last_event_time": last_event_time(data),
        "uptime": go_duration(truncate_to_seconds(uptime)),
        "version": VERSION,
    });
    // With `ha.group`: a standby is UP (nothing to restart) and says so, so that a
    // readiness probe or a load balancer can tell it from the active instance.
    if let (Some(role), Some(map)) = (data.ha_role, body.as_object_mut()) {
        map.insert("role".into(), json!(role));
    }
    (if up { 200 } else { 503 }, format!("{body}\n"))
}

fn last_event_time(data: &StatsData) -> String {
    match data.last_event_time {
        Some(t) => rfc3339(t, true),
        None => GO_ZERO_TIME.to_owned(),
    }
}

fn truncate_to_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

// ---------------------------------------------------------------------------------------
// JSON metrics

/// The JSON metrics: the Go tool's flat `/metrics-json` fields at the top level, its
/// README's `monitor` / `dispatcher` / `tasks` sections, and ours where the Go shapes
/// have no place (`checkpoint`, per-task breakdowns, lag, latency histogram).
///
/// The `system` section carries the Go tool's runtime field names with the nearest true
/// figures of this process (see `system_json`). Left out: `cache_size` / `workers_*` /
/// per-task `table_name` and `last_processed`, which `StatsData` does not hold.
pub fn render_metrics_json(data: &StatsData, uptime: Duration) -> String {
    let sum = |f: &dyn Fn(&crate::stats::TaskStats) -> u64| data.tasks.iter().map(f).sum::<u64>();
    let captured = sum(&|t| t.captured.iter().sum());
    let delivered = sum(&|t| t.delivered.iter().sum());
    let dead_letters = sum(&|t| t.dead_letters);
    let retries = sum(&|t| t.retries);
    let requests_ok = sum(&|t| t.requests[1]);
    let requests_all = sum(&|t| t.requests.iter().sum());
    let requests_failed = requests_all - requests_ok;
    let running = |b: bool| if b { "running" } else { "stopped" };
    let uptime_s = uptime.as_secs_f64();
    // Three decimals: the lifetime average of a quiet table is well below 0.01/s.
    let events_per_second = if uptime_s > 0.0 {
        round3(captured as f64 / uptime_s)
    } else {
        0.0
    };
    // No request yet is no failure: 100 keeps "success_rate < 99" alerts quiet when idle.
    let success_rate = if requests_all == 0 {
        100.0
    } else {
        round2(requests_ok as f64 * 100.0 / requests_all as f64)
    };
    // `try_`: a NaN or infinite sum (a clock gone wrong) must not panic the thread.
    let avg_response_time = match data.latency.count {
        0 => go_duration(Duration::ZERO),
        n => go_duration(
            Duration::try_from_secs_f64(data.latency.sum_seconds / n as f64).unwrap_or_default(),
        ),
    };
    let mut cumulative = 0;
    let buckets: Vec<Value> = LATENCY_BUCKETS
        .iter()
        .zip(data.latency.buckets.iter())
        .map(|(le, n)| {
            cumulative += n;
            json!({"le": le, "count": cumulative})
        })
        .collect();

    let tasks: Vec<Value> = data
        .tasks
        .iter()
        .map(|t| {
            let per_kind = |a: &[u64; 3]| json!({"insert": a[0], "update": a[1], "delete": a[2]});
            let requests: serde_json::Map<String, Value> = STATUS_CLASSES
                .iter()
                .zip(t.requests.iter())
                .map(|(class, n)| ((*class).to_owned(), json!(n)))
                .collect();
            json!({
                "task_id": t.task_id,
                "status": if data.dispatcher_running { "active" } else { "stopped" },
                "events_processed": t.captured.iter().sum::<u64>(),
                "events_captured": per_kind(&t.captured),
                "events_delivered": per_kind(&t.delivered),
                "webhook_requests": requests,
                "webhook_retries": t.retries,
                "dead_letters": t.dead_letters,
            })
        })
        .collect();

    let body = json!({
        // The Go tool's /metrics-json fields.
        "task_count": data.tasks.len(),
        "monitor_running": data.monitor_running,
        "dispatcher_running": data.dispatcher_running,
        "event_queue_size": data.queue_depth,
        "last_event_time": last_event_time(data),
        "events_queued": captured,
        // We never drop an event (backpressure instead); the field stays for dashboards.
        "events_dropped": 0,
        "events_succeeded": delivered,
        "events_failed": dead_letters,
        "webhook_retries": retries,
        // The Go tool's README sections.
        "monitor": {
            "status": running(data.monitor_running),
            "connected": data.source_connected,
            "total_events_processed": captured,
            "events_per_second": events_per_second,
            "last_event_time": last_event_time(data),
            "binlog_position": {"file": data.binlog_file, "position": data.binlog_pos},
            "binlog_events": data.binlog_events,
            "lag_seconds": data.lag_seconds,
            "reconnects": data.reconnects,
            "schema_unknown": data.schema_unknown,
            "decode_errors": data.decode_errors,
        },
        "dispatcher": {
            "status": running(data.dispatcher_running),
            "queue_size": data.queue_depth,
            "queue_capacity": data.queue_capacity,
            "webhooks_sent": requests_ok,
            "webhooks_failed": requests_failed,
            "success_rate": success_rate,
            "avg_response_time": avg_response_time,
            "retries": retries,
            "dead_letters": dead_letters,
            "latency_seconds": {
                "count": data.latency.count,
                "sum": data.latency.sum_seconds,
                "buckets": buckets,
            },
        },
        "checkpoint": {
            "file": data.checkpoint_file,
            "position": data.checkpoint_pos,
            "saves": data.checkpoint_saves,
            "failures": data.checkpoint_failures,
        },
        "tasks": tasks,
        "backfills": data.backfills.iter().map(|b| json!({
            "task_id": b.task_id,
            "status": if b.running { "running" } else { "stopped" },
            "rows_read": b.rows_read,
            "rows_delivered": b.rows_delivered,
            "rows_superseded": b.rows_superseded,
            "rows_estimated": b.rows_estimated,
            "chunks": b.chunks,
            "failures": b.failures,
            "rows_per_second": b.rows_per_second,
            "eta_seconds": b.eta_seconds,
        })).collect::<Vec<_>>(),
        "system": system_json(&SystemFigures::read()),
        "uptime": go_duration(truncate_to_seconds(uptime)),
        "uptime_seconds": uptime.as_secs(),
        "version": VERSION,
    });
    format!("{body}\n")
}

/// The Go tool's `system` section (Go runtime figures) from what a Rust process has:
/// `goroutines` is the number of OS threads (each stage is a thread), `memory_alloc`
/// and `memory_sys` are the resident memory (no garbage collector separates live from
/// reserved memory), `num_gc` is 0 (there is no collector). `memory_total_alloc`
/// (bytes ever allocated) has no counterpart and is left out rather than invented. Our
/// own names say exactly what each figure is.
fn system_json(f: &SystemFigures) -> Value {
    json!({
        "goroutines": f.threads,
        "memory_alloc": f.resident_bytes,
        "memory_sys": f.resident_bytes,
        "num_gc": 0,
        "threads": f.threads,
        "resident_memory_bytes": f.resident_bytes,
        "resident_memory_peak_bytes": f.resident_peak_bytes,
        "virtual_memory_bytes": f.virtual_bytes,
        "cpus": f.cpus,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------
// Prometheus text format 0.0.4

/// The metrics in the Prometheus text exposition format 0.0.4 (checked with
/// `promtool check metrics` in tests/metrics_promtool.rs).
pub fn render_prometheus(data: &StatsData, uptime: Duration) -> String {
    let mut p = Prom::default();

    p.family(
        "pikachu_build_info",
        "gauge",
        "Build information; the value is always 1.",
    );
    p.sample("pikachu_build_info", &[("version", VERSION)], 1);
    p.family(
        "pikachu_uptime_seconds",
        "gauge",
        "Seconds since pikachu started.",
    );
    p.sample(
        "pikachu_uptime_seconds",
        &[],
        PromFloat(uptime.as_secs_f64()),
    );

    p.family(
        "pikachu_monitor_running",
        "gauge",
        "1 while the binlog reader runs.",
    );
    p.sample(
        "pikachu_monitor_running",
        &[],
        u64::from(data.monitor_running),
    );
    p.family(
        "pikachu_dispatcher_running",
        "gauge",
        "1 while the webhook workers run.",
    );
    p.sample(
        "pikachu_dispatcher_running",
        &[],
        u64::from(data.dispatcher_running),
    );
    p.family(
        "pikachu_source_connected",
        "gauge",
        "1 while the binlog connection is up and streaming.",
    );
    p.sample(
        "pikachu_source_connected",
        &[],
        u64::from(data.source_connected),
    );
    if let Some(role) = data.ha_role {
        p.family(
            "pikachu_ha_active",
            "gauge",
            "1 while this instance holds its group's lease and delivers, 0 while it stands by.",
        );
        p.sample("pikachu_ha_active", &[], u64::from(role == "active"));
        p.family(
            "pikachu_ha_takeovers_total",
            "counter",
            "Times this instance took the lease and became active.",
        );
        p.sample("pikachu_ha_takeovers_total", &[], data.ha_takeovers);
        p.family(
            "pikachu_ha_leases_lost_total",
            "counter",
            "Times this instance lost its lease while active and stopped delivering.",
        );
        p.sample("pikachu_ha_leases_lost_total", &[], data.ha_leases_lost);
        p.family(
            "pikachu_ha_lease_errors_total",
            "counter",
            "Failed attempts of a standby to ask for the lease (database unreachable).",
        );
        p.sample("pikachu_ha_lease_errors_total", &[], data.ha_lease_errors);
        p.family(
            "pikachu_ha_lease_holder",
            "gauge",
            "A standby's view of the lease holder: its database connection id (0: unknown).",
        );
        p.sample("pikachu_ha_lease_holder", &[], data.ha_holder.unwrap_or(0));
    }
    p.family(
        "pikachu_source_reconnects_total",
        "counter",
        "Reconnections to the source after a lost binlog connection.",
    );
    p.sample("pikachu_source_reconnects_total", &[], data.reconnects);
    p.family(
        "pikachu_source_lag_seconds",
        "gauge",
        "Seconds the binlog reader is behind the source: now minus the commit time of the last transaction read (0 at a heartbeat); grows while nothing is read.",
    );
    p.sample(
        "pikachu_source_lag_seconds",
        &[],
        PromFloat(data.lag_seconds),
    );

    p.family(
        "pikachu_binlog_position_bytes",
        "gauge",
        "Offset in the current binlog file of the last event read.",
    );
    if !data.binlog_file.is_empty() {
        p.sample(
            "pikachu_binlog_position_bytes",
            &[("file", &data.binlog_file)],
            data.binlog_pos,
        );
    }
    p.family(
        "pikachu_checkpoint_position_bytes",
        "gauge",
        "Binlog offset saved in the checkpoint: everything before it is delivered or dead-lettered.",
    );
    if !data.checkpoint_file.is_empty() {
        p.sample(
            "pikachu_checkpoint_position_bytes",
            &[("file", &data.checkpoint_file)],
            data.checkpoint_pos,
        );
    }
    p.family(
        "pikachu_checkpoint_saves_total",
        "counter",
        "Checkpoints saved.",
    );
    p.sample("pikachu_checkpoint_saves_total", &[], data.checkpoint_saves);
    p.family(
        "pikachu_checkpoint_failures_total",
        "counter",
        "Checkpoint saves that failed.",
    );
    p.sample(
        "pikachu_checkpoint_failures_total",
        &[],
        data.checkpoint_failures,
    );

    p.family(
        "pikachu_last_event_timestamp_seconds",
        "gauge",
        "Unix time at which the last row event of a watched table was read.",
    );
    if let Some(t) = data.last_event_time {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        p.sample("pikachu_last_event_timestamp_seconds", &[], PromFloat(secs));
    }
    p.family(
        "pikachu_binlog_events_total",
        "counter",
        "Binlog events read.",
    );
    p.sample("pikachu_binlog_events_total", &[], data.binlog_events);
    p.family(
        "pikachu_schema_unknown_events_total",
        "counter",
        "Row events whose column names could not be known (dead-lettered).",
    );
    p.sample(
        "pikachu_schema_unknown_events_total",
        &[],
        data.schema_unknown,
    );
    p.family(
        "pikachu_decode_errors_total",
        "counter",
        "Row events that could not be decoded (dead-lettered).",
    );
    p.sample("pikachu_decode_errors_total", &[], data.decode_errors);

    let kinds = ["insert", "update", "delete"];
    p.family(
        "pikachu_events_captured_total",
        "counter",
        "Row changes matched to a task, by task and event type.",
    );
    for t in &data.tasks {
        for (kind, n) in kinds.iter().zip(t.captured.iter()) {
            p.sample(
                "pikachu_events_captured_total",
                &[("task", &t.task_id), ("event", kind)],
                *n,
            );
        }
    }
    p.family(
        "pikachu_events_delivered_total",
        "counter",
        "Row changes delivered with a 2xx answer, by task and event type.",
    );
    for t in &data.tasks {
        for (kind, n) in kinds.iter().zip(t.delivered.iter()) {
            p.sample(
                "pikachu_events_delivered_total",
                &[("task", &t.task_id), ("event", kind)],
                *n,
            );
        }
    }
    p.family(
        "pikachu_webhook_requests_total",
        "counter",
        "Webhook requests by task and answer status class (\"error\": no answer).",
    );
    for t in &data.tasks {
        for (class, n) in STATUS_CLASSES.iter().zip(t.requests.iter()) {
            p.sample(
                "pikachu_webhook_requests_total",
                &[("task", &t.task_id), ("status_class", class)],
                *n,
            );
        }
    }
    p.family(
        "pikachu_limit_wait_seconds_total",
        "counter",
        "Seconds workers waited before a request of the task because of its max_rate or max_in_flight.",
    );
    for t in &data.tasks {
        p.sample(
            "pikachu_limit_wait_seconds_total",
            &[("task", &t.task_id)],
            PromFloat(t.limit_wait_seconds),
        );
    }
    p.family(
        "pikachu_webhook_retries_total",
        "counter",
        "Webhook requests that were retries.",
    );
    for t in &data.tasks {
        p.sample(
            "pikachu_webhook_retries_total",
            &[("task", &t.task_id)],
            t.retries,
        );
    }
    p.family(
        "pikachu_dead_letters_total",
        "counter",
        "Row changes written to the dead-letter file.",
    );
    for t in &data.tasks {
        p.sample(
            "pikachu_dead_letters_total",
            &[("task", &t.task_id)],
            t.dead_letters,
        );
    }

    p.family(
        "pikachu_queue_depth",
        "gauge",
        "Events waiting in the dispatch queues.",
    );
    p.sample("pikachu_queue_depth", &[], data.queue_depth);
    p.family(
        "pikachu_queue_capacity",
        "gauge",
        "Capacity of the dispatch queues.",
    );
    p.sample("pikachu_queue_capacity", &[], data.queue_capacity);

    type Figure = fn(&crate::stats::BackfillData) -> u64;
    let backfill_counters: [(&str, &str, Figure); 6] = [
        (
            "pikachu_backfill_rows_read_total",
            "Rows read by backfills.",
            |b| b.rows_read,
        ),
        (
            "pikachu_backfill_rows_delivered_total",
            "Backfilled rows handed to delivery.",
            |b| b.rows_delivered,
        ),
        (
            "pikachu_backfill_rows_superseded_total",
            "Backfilled rows dropped because the stream already carried a newer change of the key.",
            |b| b.rows_superseded,
        ),
        (
            "pikachu_backfill_chunks_total",
            "Backfill chunks read.",
            |b| b.chunks,
        ),
        (
            "pikachu_backfill_failures_total",
            "Backfills that stopped on an error.",
            |b| b.failures,
        ),
        (
            "pikachu_backfill_rows_estimated",
            "Rows of the table as the server estimates them.",
            |b| b.rows_estimated,
        ),
    ];
    for (name, help, get) in backfill_counters {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        p.family(name, kind, help);
        for b in &data.backfills {
            p.sample(name, &[("task_id", &b.task_id)], get(b));
        }
    }
    p.family(
        "pikachu_backfill_running",
        "gauge",
        "1 while the task's backfill runs.",
    );
    for b in &data.backfills {
        p.sample(
            "pikachu_backfill_running",
            &[("task_id", &b.task_id)],
            u8::from(b.running),
        );
    }
    p.family(
        "pikachu_backfill_rows_per_second",
        "gauge",
        "Rows per second the task's backfill reads.",
    );
    for b in &data.backfills {
        p.sample(
            "pikachu_backfill_rows_per_second",
            &[("task_id", &b.task_id)],
            PromFloat(b.rows_per_second),
        );
    }
    p.family(
        "pikachu_backfill_eta_seconds",
        "gauge",
        "Seconds the task's backfill still needs at its current rate (0: unknown or done).",
    );
    for b in &data.backfills {
        p.sample(
            "pikachu_backfill_eta_seconds",
            &[("task_id", &b.task_id)],
            PromFloat(b.eta_seconds),
        );
    }

    let h = "pikachu_delivery_latency_seconds";
    p.family(
        h,
        "histogram",
        "Seconds from a row change being queued for delivery to its 2xx answer (retries included).",
    );
    let mut cumulative = 0u64;
    for (le, n) in LATENCY_BUCKETS.iter().zip(data.latency.buckets.iter()) {
        cumulative += n;
        let le = PromFloat(*le).to_string();
        p.sample(&format!("{h}_bucket"), &[("le", &le)], cumulative);
    }
    // Observations above the last bound are in no bucket but in `count`: +Inf is count.
    p.sample(
        &format!("{h}_bucket"),
        &[("le", "+Inf")],
        data.latency.count,
    );
    p.sample(
        &format!("{h}_sum"),
        &[],
        PromFloat(data.latency.sum_seconds),
    );
    p.sample(&format!("{h}_count"), &[], data.latency.count);

    p.out
}

/// A float as the exposition format spells it (`+Inf`, `-Inf`, `NaN`).
struct PromFloat(f64);

impl std::fmt::Display for PromFloat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.is_nan() {
            f.write_str("NaN")
        } else if v.is_infinite() {
            f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
        } else {
            write!(f, "{v}")
        }
    }
}

#[derive(Default)]
struct Prom {
    out: String,
}

impl Prom {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// HELP text: `\` and newline are escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n")
}

/// Label values: `\`, `"` and newline are escaped.
fn escape_label(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

// ---------------------------------------------------------------------------------------
// Time formatting (no date crate in the tree)

/// Go's `time.Duration.String()`: `2h45m30s`, `1m0s`, `1.5s`, `125ms`, `250µs`, `0s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", decimal(ns, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", decimal(ns, 6));
    }
    let secs = decimal(ns % 60_000_000_000, 9);
    let minutes = ns / 60_000_000_000;
    let (h, m) = (minutes / 60, minutes % 60);
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// `v / 10^digits` in decimal, without trailing fraction zeros (Go's `fmtFrac`).
fn decimal(v: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::TaskStats;

    fn populated() -> StatsData {
        let mut latency = crate::stats::Histogram::default();
        for ms in [0.3, 0.8, 4.0, 20.0, 20.0, 300.0, 7000.0] {
            latency.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        StatsData {
            tasks: vec![
                TaskStats {
                    task_id: "user_monitor".into(),
                    captured: [5, 3, 1],
                    delivered: [4, 3, 1],
                    requests: [1, 8, 0, 2, 3],
                    retries: 4,
                    dead_letters: 1,
                    limit_wait_seconds: 0.5,
                },
                TaskStats {
                    task_id: "we\"ird\\task\nid".into(),
                    ..TaskStats::default()
                },
            ],
            monitor_running: true,
            dispatcher_running: true,
            source_connected: true,
            binlog_file: "mysql-bin.000003".into(),
            binlog_pos: 18825,
            checkpoint_file: "mysql-bin.000003".into(),
            checkpoint_pos: 18000,
            checkpoint_saves: 12,
            checkpoint_failures: 1,
            last_event_time: Some(UNIX_EPOCH + Duration::new(1_795_428_900, 120_000_000)),
            lag_seconds: 1.5,
            lag_measured_at: None,
            reconnects: 2,
            binlog_events: 1000,
            schema_unknown: 3,
            decode_errors: 4,
            queue_depth: 7,
            queue_capacity: 1000,
            latency,
            ..StatsData::default()
        }
    }

    /// Fixed figures, changed by hand.
    struct Fixed {
        data: parking_lot::Mutex<StatsData>,
    }

    impl Metrics for Fixed {
        fn snapshot(&self) -> StatsData {
            self.data.lock().clone()
        }
        fn uptime(&self) -> Duration {
            Duration::from_secs(1)
        }
    }

    fn stats_with(data: StatsData) -> Arc<Fixed> {
        Arc::new(Fixed {
            data: parking_lot::Mutex::new(data),
        })
    }

    // ---- time formatting

    #[test]
    fn go_duration_strings_match_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(250), "250µs"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_millis(125), "125ms"),
            (Duration::from_micros(125_300), "125.3ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(2 * 3600 + 45 * 60 + 30), "2h45m30s"),
            (Duration::from_secs(100 * 3600 + 1), "100h0m1s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH, true), "1970-01-01T00:00:00Z");
        // 2024-02-29T13:45:01Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_secs(1_709_214_301);
        assert_eq!(rfc3339(t, false), "2024-02-29T13:45:01Z");
        let t = UNIX_EPOCH + Duration::new(1_709_214_301, 120_000_000);
        assert_eq!(rfc3339(t, true), "2024-02-29T13:45:01.12Z");
        assert_eq!(rfc3339(t, false), "2024-02-29T13:45:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339(t, false), "2099-12-31T23:59:59Z");
    }

    // ---- health

    #[test]
    fn health_has_the_go_fields_and_200_when_up() {
        let (status, body) = render_health(&populated(), Duration::from_secs(9930), true);
        assert_eq!(status, 200);
        assert!(body.ends_with('\n'));
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({
                "status": "UP",
                "monitor_running": true,
                "dispatcher_running": true,
                "source_connected": true,
                "event_queue_size": 7,
                "last_event_time": "2026-11-23T10:15:00.12Z",
                "uptime": "2h45m30s",
                "version": VERSION,
            })
        );
    }

    #[test]
    fn health_is_503_down_and_go_zero_time_before_any_event() {
        let (status, body) =
            render_health(&StatsData::default(), Duration::from_millis(1500), false);
        assert_eq!(status, 503);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "DOWN");
        assert_eq!(v["monitor_running"], false);
        assert_eq!(v["last_event_time"], "0001-01-01T00:00:00Z");
        assert_eq!(v["uptime"], "1s");
        assert_eq!(v["event_queue_size"], 0);
    }

    // ---- JSON metrics

    #[test]
    fn metrics_json_has_the_go_fields_and_ours() {
        let body = render_metrics_json(&populated(), Duration::from_secs(90));
        let v: Value = serde_json::from_str(&body).unwrap();
        // The Go tool's flat /metrics-json fields.
        assert_eq!(v["task_count"], 2);
        assert_eq!(v["monitor_running"], true);
        assert_eq!(v["dispatcher_running"], true);
        assert_eq!(v["event_queue_size"], 7);
        assert_eq!(v["last_event_time"], "2026-11-23T10:15:00.12Z");
        assert_eq!(v["events_queued"], 9);
        assert_eq!(v["events_dropped"], 0);
        assert_eq!(v["events_succeeded"], 8);
        assert_eq!(v["events_failed"], 1);
        assert_eq!(v["webhook_retries"], 4);
        // The README's sections.
        assert_eq!(v["monitor"]["status"], "running");
        assert_eq!(v["monitor"]["total_events_processed"], 9);
        assert_eq!(v["monitor"]["events_per_second"], 0.1);
        assert_eq!(
            v["monitor"]["binlog_position"],
            json!({"file": "mysql-bin.000003", "position": 18825})
        );
        assert_eq!(v["monitor"]["lag_seconds"], 1.5);
        assert_eq!(v["monitor"]["reconnects"], 2);
        assert_eq!(v["dispatcher"]["status"], "running");
        assert_eq!(v["dispatcher"]["queue_size"], 7);
        assert_eq!(v["dispatcher"]["queue_capacity"], 1000);
        assert_eq!(v["dispatcher"]["webhooks_sent"], 8);
        assert_eq!(v["dispatcher"]["webhooks_failed"], 6);
        assert_eq!(v["dispatcher"]["success_rate"], 57.14);
        assert_eq!(v["dispatcher"]["latency_seconds"]["count"], 7);
        let buckets = v["dispatcher"]["latency_seconds"]["buckets"]
            .as_array()
            .unwrap();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len());
        assert_eq!(buckets[0], json!({"le": 0.0005, "count": 1}));
        assert_eq!(
            buckets[LATENCY_BUCKETS.len() - 1],
            json!({"le": 5.0, "count": 6})
        );
        assert_eq!(
            v["checkpoint"],
            json!({"file": "mysql-bin.000003", "position": 18000, "saves": 12, "failures": 1})
        );
        let t = &v["tasks"][0];
        assert_eq!(t["task_id"], "user_monitor");
        assert_eq!(t["status"], "active");
        assert_eq!(t["events_processed"], 9);
        assert_eq!(
            t["events_captured"],
            json!({"insert": 5, "update": 3, "delete": 1})
        );
        assert_eq!(
            t["events_delivered"],
            json!({"insert": 4, "update": 3, "delete": 1})
        );
        assert_eq!(
            t["webhook_requests"],
            json!({"error": 1, "2xx": 8, "3xx": 0, "4xx": 2, "5xx": 3})
        );
        assert_eq!(t["webhook_retries"], 4);
        assert_eq!(t["dead_letters"], 1);
        assert_eq!(v["tasks"][1]["task_id"], "we\"ird\\task\nid");
        assert_eq!(v["uptime"], "1m30s");
        assert_eq!(v["version"], VERSION);
    }

    #[test]
    fn metrics_json_has_the_go_system_section_with_true_figures() {
        let v: Value =
            serde_json::from_str(&render_metrics_json(&populated(), Duration::ZERO)).unwrap();
        let sys = &v["system"];
        for key in [
            "goroutines",
            "memory_alloc",
            "memory_sys",
            "num_gc",
            "threads",
            "cpus",
        ] {
            assert!(sys[key].is_u64(), "system.{key}: {sys}");
        }
        assert_eq!(sys["num_gc"], 0);
        assert_eq!(sys["goroutines"], sys["threads"]);
        assert_eq!(sys["memory_alloc"], sys["resident_memory_bytes"]);
        #[cfg(target_os = "linux")]
        {
            assert!(sys["threads"].as_u64().unwrap() >= 1);
            assert!(sys["resident_memory_bytes"].as_u64().unwrap() > 0);
        }
        let f = SystemFigures {
            threads: 9,
            resident_bytes: 4096,
            resident_peak_bytes: 8192,
            virtual_bytes: 1 << 20,
            cpus: 2,
        };
        assert_eq!(
            system_json(&f),
            json!({
                "goroutines": 9, "memory_alloc": 4096, "memory_sys": 4096, "num_gc": 0,
                "threads": 9, "resident_memory_bytes": 4096,
                "resident_memory_peak_bytes": 8192, "virtual_memory_bytes": 1 << 20, "cpus": 2,
            })
        );
    }

    #[test]
    fn metrics_json_when_idle_has_no_division_by_zero() {
        let v: Value =
            serde_json::from_str(&render_metrics_json(&StatsData::default(), Duration::ZERO))
                .unwrap();
        assert_eq!(v["dispatcher"]["success_rate"], 100.0);
        assert_eq!(v["dispatcher"]["avg_response_time"], "0s");
        assert_eq!(v["monitor"]["events_per_second"], 0.0);
        assert_eq!(v["monitor"]["status"], "stopped");
        assert_eq!(v["tasks"], json!([]));
    }

    #[test]
    fn renderers_survive_non_finite_and_extreme_values() {
        let mut data = populated();
        data.latency.sum_seconds = f64::INFINITY;
        data.lag_seconds = f64::NAN;
        data.binlog_pos = u64::MAX;
        let v: Value = serde_json::from_str(&render_metrics_json(&data, Duration::MAX)).unwrap();
        assert_eq!(v["dispatcher"]["avg_response_time"], "0s");
        assert_eq!(v["monitor"]["binlog_position"]["position"], u64::MAX);
        let text = render_prometheus(&data, Duration::MAX);
        assert!(text.contains("\npikachu_source_lag_seconds NaN\n"));
        assert!(text.contains("\npikachu_delivery_latency_seconds_sum +Inf\n"));
        let (_, health) = render_health(&data, Duration::MAX, true);
        assert!(health.contains("\"uptime\":\""), "{health}");
    }

    // ---- Prometheus

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn a_standby_is_up_and_says_so() {
        let mut data = StatsData {
            ha_role: Some("standby"),
            ha_holder: Some(17),
            ..StatsData::default()
        };
        assert!(data.is_up(), "a standby waits: nothing to restart");
        let (status, body) = render_health(&data, Duration::from_secs(3), data.is_up());
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["role"], "standby");
        let text = render_prometheus(&data, Duration::from_secs(3));
        assert!(text.contains("pikachu_ha_active 0\n"), "{text}");
        assert!(text.contains("pikachu_ha_lease_holder 17\n"), "{text}");
        data.ha_role = None;
        let (_, body) = render_health(&data, Duration::from_secs(3), data.is_up());
        assert!(!body.contains("role"), "no role without ha.group: {body}");
        assert!(!render_prometheus(&data, Duration::from_secs(3)).contains("pikachu_ha_"));
    }

    #[test]
    fn prometheus_has_the_expected_samples() {
        let text = render_prometheus(&populated(), Duration::from_millis(90_500));
        let l = lines(&text);
        for want in [
            format!("pikachu_build_info{{version=\"{VERSION}\"}} 1"),
            "pikachu_uptime_seconds 90.5".to_owned(),
            "pikachu_source_connected 1".to_owned(),
            "pikachu_source_reconnects_total 2".to_owned(),
            "pikachu_source_lag_seconds 1.5".to_owned(),
            "pikachu_binlog_position_bytes{file=\"mysql-bin.000003\"} 18825".to_owned(),
            "pikachu_checkpoint_position_bytes{file=\"mysql-bin.000003\"} 18000".to_owned(),
            "pikachu_checkpoint_saves_total 12".to_owned(),
            "pikachu_checkpoint_failures_total 1".to_owned(),
            "pikachu_last_event_timestamp_seconds 1795428900.12".to_owned(),
            "pikachu_schema_unknown_events_total 3".to_owned(),
            "pikachu_decode_errors_total 4".to_owned(),
            "pikachu_events_captured_total{task=\"user_monitor\",event=\"insert\"} 5".to_owned(),
            "pikachu_events_captured_total{task=\"user_monitor\",event=\"delete\"} 1".to_owned(),
            "pikachu_events_delivered_total{task=\"user_monitor\",event=\"update\"} 3".to_owned(),
            "pikachu_webhook_requests_total{task=\"user_monitor\",status_class=\"2xx\"} 8"
                .to_owned(),
            "pikachu_webhook_requests_total{task=\"user_monitor\",status_class=\"error\"} 1"
                .to_owned(),
            "pikachu_webhook_requests_total{task=\"user_monitor\",status_class=\"5xx\"} 3"
                .to_owned(),
            "pikachu_webhook_retries_total{task=\"user_monitor\"} 4".to_owned(),
            "pikachu_dead_letters_total{task=\"user_monitor\"} 1".to_owned(),
            "pikachu_queue_depth 7".to_owned(),
            "pikachu_queue_capacity 1000".to_owned(),
            "# TYPE pikachu_delivery_latency_seconds histogram".to_owned(),
            "# TYPE pikachu_events_captured_total counter".to_owned(),
            "# TYPE pikachu_queue_depth gauge".to_owned(),
        ] {
            assert!(l.contains(&want.as_str()), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn prometheus_histogram_is_cumulative_and_ends_with_inf() {
        let text = render_prometheus(&populated(), Duration::ZERO);
        let buckets: Vec<&str> = lines(&text)
            .into_iter()
            .filter(|l| l.starts_with("pikachu_delivery_latency_seconds_bucket"))
            .collect();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(
            buckets[0],
            "pikachu_delivery_latency_seconds_bucket{le=\"0.0005\"} 1"
        );
        assert_eq!(
            buckets[1],
            "pikachu_delivery_latency_seconds_bucket{le=\"0.001\"} 2"
        );
        assert_eq!(
            buckets[4],
            "pikachu_delivery_latency_seconds_bucket{le=\"0.01\"} 3"
        );
        assert_eq!(
            buckets[5],
            "pikachu_delivery_latency_seconds_bucket{le=\"0.025\"} 5"
        );
        assert_eq!(
            buckets[10],
            "pikachu_delivery_latency_seconds_bucket{le=\"1\"} 6"
        );
        assert_eq!(
            buckets[11],
            "pikachu_delivery_latency_seconds_bucket{le=\"5\"} 6"
        );
        // 7 s is above the last bound: only in +Inf and count.
        assert_eq!(
            buckets[12],
            "pikachu_delivery_latency_seconds_bucket{le=\"+Inf\"} 7"
        );
        assert!(text.contains("\npikachu_delivery_latency_seconds_count 7\n"));
        assert!(text.contains("\npikachu_delivery_latency_seconds_sum 7.3451"));
    }

    #[test]
    fn prometheus_escapes_label_values() {
        let text = render_prometheus(&populated(), Duration::ZERO);
        assert!(
            text.contains("pikachu_dead_letters_total{task=\"we\\\"ird\\\\task\\nid\"} 0\n"),
            "{text}"
        );
    }

    #[test]
    fn prometheus_every_family_has_help_and_type_and_all_samples_are_named_pikachu() {
        let text = render_prometheus(&populated(), Duration::ZERO);
        let mut typed = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(
                    text.contains(&format!("# HELP {name} ")),
                    "no HELP for {name}"
                );
                typed.push(name.to_owned());
            } else if !line.starts_with('#') {
                assert!(line.starts_with("pikachu_"), "{line}");
                assert!(
                    typed.iter().any(|n| line.starts_with(n.as_str())),
                    "sample before its TYPE: {line}"
                );
            }
        }
    }

    #[test]
    fn prometheus_without_a_position_has_no_file_sample() {
        let text = render_prometheus(&StatsData::default(), Duration::ZERO);
        assert!(text.contains("# TYPE pikachu_binlog_position_bytes gauge"));
        assert!(!text.contains("pikachu_binlog_position_bytes{"));
        assert!(!text.contains("\npikachu_last_event_timestamp_seconds "));
        assert!(text.contains("pikachu_delivery_latency_seconds_bucket{le=\"+Inf\"} 0\n"));
    }

    #[test]
    fn prometheus_float_spelling() {
        assert_eq!(PromFloat(f64::NAN).to_string(), "NaN");
        assert_eq!(PromFloat(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(PromFloat(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(PromFloat(0.25).to_string(), "0.25");
    }

    // ---- negotiation

    #[test]
    fn negotiation() {
        use Format::*;
        let prometheus_server = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let cases = [
            (None, None, Json),
            (None, Some("*/*"), Json),
            (None, Some("text/plain"), Prometheus),
            (None, Some("text/plain; version=0.0.4"), Prometheus),
            (None, Some(prometheus_server), Prometheus),
            (None, Some("application/openmetrics-text"), Prometheus),
            (None, Some("application/json, text/plain, */*"), Json),
            (
                None,
                Some("text/html,application/xhtml+xml,*/*;q=0.8"),
                Json,
            ),
            (None, Some("application/json;q=0.5, text/plain"), Prometheus),
            (None, Some("text/plain;q=0"), Json),
            (
                Some("format=prometheus"),
                Some("application/json"),
                Prometheus,
            ),
            (Some("a=1&format=json"), Some("text/plain"), Json),
        ];
        for (q, accept, want) in cases {
            assert_eq!(negotiate(q, accept), Ok(want), "{q:?} {accept:?}");
        }
        let err = negotiate(Some("format=xml"), None).unwrap_err();
        assert!(err.contains("format=prometheus"), "{err}");
    }

    #[test]
    fn bad_health_paths_are_refused() {
        let stats = stats_with(StatsData::default());
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        for path in ["health", "/metrics", "/metrics-json", "/he alth", "/h?x"] {
            let err = start(addr, path, stats.clone()).err().expect(path);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path}: {err}");
        }
    }

    // ---- over real HTTP

    struct Got {
        status: u16,
        content_type: String,
        allow: Option<String>,
        body: String,
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    fn got(resp: ureq::http::Response<ureq::Body>) -> Got {
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, content_type, allow) = (
            resp.status().as_u16(),
            header("content-type").unwrap_or_default(),
            header("allow"),
        );
        let body = resp.into_body().read_to_string().unwrap();
        Got {
            status,
            content_type,
            allow,
            body,
        }
    }

    fn get(base: &str, path: &str, accept: Option<&str>) -> Got {
        let mut req = agent().get(format!("{base}{path}"));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        got(req.call().unwrap())
    }

    #[test]
    fn serves_health_metrics_and_errors_over_http() {
        let stats = stats_with(populated());
        let server = start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "/status",
            stats.clone(),
        )
        .unwrap();
        let base = format!("http://{}", server.local_addr());

        let r = get(&base, "/status", None);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["status"], "UP");

        stats.data.lock().source_connected = false;
        let r = get(&base, "/status", None);
        assert_eq!(r.status, 503);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap()["status"],
            "DOWN"
        );

        let r = get(&base, "/metrics", None);
        assert_eq!(
            (r.status, r.content_type.as_str()),
            (200, "application/json")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap()["task_count"],
            2
        );

        let r = get(
            &base,
            "/metrics",
            Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, CT_PROMETHEUS);
        assert!(
            r.body.contains("\npikachu_source_connected 0\n"),
            "{}",
            r.body
        );

        let r = get(&base, "/metrics?format=prometheus", None);
        assert_eq!(r.content_type, CT_PROMETHEUS);
        assert!(r.body.starts_with("# HELP pikachu_"));

        let r = get(&base, "/metrics-json", Some("text/plain"));
        assert_eq!(r.content_type, "application/json");

        let r = get(&base, "/metrics?format=yaml", None);
        assert_eq!(r.status, 400);

        let r = get(&base, "/health", None);
        assert_eq!(r.status, 404, "the configured path replaces /health");
        assert!(r.content_type.starts_with("text/plain"));

        let r = got(agent().post(format!("{base}/metrics")).send("x").unwrap());
        assert_eq!(r.status, 405);
        assert_eq!(r.allow.as_deref(), Some("GET, HEAD"));
        let r = got(agent().delete(format!("{base}/status")).call().unwrap());
        assert_eq!(r.status, 405);

        let r = got(agent().head(format!("{base}/status")).call().unwrap());
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "");

        // Garbage on the socket does not take the server down.
        {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(server.local_addr()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n").unwrap();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
        assert_eq!(get(&base, "/status", None).status, 503);

        server.stop();
    }

    #[test]
    fn a_taken_port_is_an_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = start(addr, "/health", stats_with(StatsData::default()))
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
