//! The Prometheus exposition of `/metrics` passes `promtool check metrics`: the parser
//! Prometheus itself uses, plus its naming lints (`_total` counters, base units, …).
//!
//! Checked twice: on hand-made figures (every family, odd label values), and on a scrape
//! of the real daemon after it delivered, retried and dead-lettered real row changes of
//! a real MariaDB, as a Prometheus server would fetch it.
//!
//! promtool comes from Debian's `prometheus` package (installed by `scripts/test.sh`). Without
//! it this test FAILS, so that a CI without promtool cannot pass silently; set
//! `PIKACHU_SKIP_PROMTOOL=1` to skip it on purpose.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::harness::{MariaDb, Receiver, Setup};

use pikachu::http::render_prometheus;
use pikachu::stats::{BackfillData, Histogram, StatsData, TaskStats};

fn populated() -> StatsData {
    let mut latency = Histogram::default();
    for ms in [0.2, 3.0, 40.0, 40.0, 900.0, 12_000.0] {
        latency.observe(Duration::from_secs_f64(ms / 1000.0));
    }
    StatsData {
        tasks: vec![
            TaskStats {
                task_id: "user_monitor".into(),
                captured: [10, 4, 2],
                delivered: [9, 4, 2],
                requests: [1, 15, 0, 1, 2],
                retries: 3,
                dead_letters: 1,
                limit_wait_seconds: 1.25,
            },
            // Label values that need escaping must still parse.
            TaskStats {
                task_id: "odd \"task\" \\ with\nnewline".into(),
                captured: [1, 0, 0],
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
        checkpoint_saves: 40,
        checkpoint_failures: 1,
        last_event_time: Some(UNIX_EPOCH + Duration::from_secs(1_795_428_900)),
        lag_seconds: 0.75,
        lag_measured_at: None,
        reconnects: 1,
        binlog_events: 5000,
        schema_unknown: 2,
        decode_errors: 1,
        queue_depth: 12,
        queue_capacity: 1000,
        latency,
        // The HA families must pass promtool too.
        ha_role: Some("standby"),
        ha_holder: Some(42),
        ha_takeovers: 3,
        ha_leases_lost: 1,
        ha_lease_errors: 2,
        // And the backfill families.
        backfills: vec![BackfillData {
            task_id: "user_monitor".into(),
            running: true,
            rows_read: 5000,
            rows_delivered: 4000,
            rows_superseded: 3,
            rows_estimated: 100_000,
            chunks: 5,
            failures: 1,
            rows_per_second: 2500.0,
            eta_seconds: 38.0,
        }],
    }
}

/// Runs `promtool check metrics` on `text`; Err with promtool's own words on failure.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed, so the Prometheus output cannot be checked.\n\
             Install it (Debian/Ubuntu: `apt-get install prometheus`, which scripts/test.sh does),\n\
             or set PIKACHU_SKIP_PROMTOOL=1 to skip this test on purpose."
        ),
        Err(e) => panic!("could not run promtool: {e}"),
    };
    // promtool reads all of stdin before answering; the output is small enough that
    // writing it whole before reading stdout cannot deadlock on pipe buffers.
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("wait for promtool");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn skipped() -> bool {
    if std::env::var("PIKACHU_SKIP_PROMTOOL").as_deref() == Ok("1") {
        eprintln!("PIKACHU_SKIP_PROMTOOL=1: promtool check skipped");
        return true;
    }
    false
}

#[test]
fn populated_metrics_pass_promtool() {
    if skipped() {
        return;
    }
    let text = render_prometheus(&populated(), Duration::from_secs(3725));
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- rendered ---\n{text}");
    }
}

#[test]
fn metrics_before_anything_happened_pass_promtool() {
    if skipped() {
        return;
    }
    let text = render_prometheus(&StatsData::default(), Duration::ZERO);
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- rendered ---\n{text}");
    }
}

/// Guards the guard: promtool must actually reject bad input, or the tests above prove
/// nothing (e.g. a promtool wrapper that always exits 0).
#[test]
fn promtool_rejects_a_broken_exposition() {
    if skipped() {
        return;
    }
    let broken = "# TYPE pikachu_things counter\npikachu_things{task=\"a} 1\n";
    assert!(
        promtool_check(broken).is_err(),
        "promtool accepted a broken exposition"
    );
}

/// What a Prometheus server sends (2.x/3.x): OpenMetrics first, text 0.0.4 as fallback.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Every family the README's metrics reference promises.
const FAMILIES: [(&str, &str); 22] = [
    ("pikachu_build_info", "gauge"),
    ("pikachu_uptime_seconds", "gauge"),
    ("pikachu_monitor_running", "gauge"),
    ("pikachu_dispatcher_running", "gauge"),
    ("pikachu_source_connected", "gauge"),
    ("pikachu_source_reconnects_total", "counter"),
    ("pikachu_source_lag_seconds", "gauge"),
    ("pikachu_binlog_position_bytes", "gauge"),
    ("pikachu_binlog_events_total", "counter"),
    ("pikachu_checkpoint_position_bytes", "gauge"),
    ("pikachu_checkpoint_saves_total", "counter"),
    ("pikachu_checkpoint_failures_total", "counter"),
    ("pikachu_last_event_timestamp_seconds", "gauge"),
    ("pikachu_schema_unknown_events_total", "counter"),
    ("pikachu_decode_errors_total", "counter"),
    ("pikachu_events_captured_total", "counter"),
    ("pikachu_events_delivered_total", "counter"),
    ("pikachu_webhook_requests_total", "counter"),
    ("pikachu_webhook_retries_total", "counter"),
    ("pikachu_dead_letters_total", "counter"),
    ("pikachu_queue_depth", "gauge"),
    ("pikachu_queue_capacity", "gauge"),
];

fn scrape(port: u16, accept: Option<&str>) -> (String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut req = agent.get(&format!("http://127.0.0.1:{port}/metrics"));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let mut resp = req.call().expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (ct, resp.body_mut().read_to_string().expect("read /metrics"))
}

/// `name{labels}` → value, for every sample line.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse::<f64>().ok()?))
        })
        .collect()
}

#[test]
fn a_running_daemon_is_scraped_like_prometheus_does() {
    if skipped() {
        return;
    }
    let db = MariaDb::start();
    db.exec(
        "CREATE DATABASE shop; \
         CREATE TABLE shop.users (id INT PRIMARY KEY, name VARCHAR(20)); \
         CREATE TABLE shop.orders (id INT PRIMARY KEY, total INT)",
    );
    let receiver = Receiver::with_policy(|_, r| {
        let status = if r.path.starts_with("/fail") {
            500
        } else {
            200
        };
        (status, vec![], Duration::ZERO)
    });
    let tasks = format!(
        "  - task_id: users_task\n    table_name: users\n    events: [insert, update, delete]\n    callback_url: \"{}\"\n\
         \x20 - task_id: orders_task\n    table_name: orders\n    events: [insert]\n    callback_url: \"{}\"\n",
        receiver.url("/ok"),
        receiver.url("/fail")
    );
    let setup = Setup::new(
        &db,
        "shop",
        &tasks,
        "dispatcher:\n  worker_count: 2\n  max_retries: 2\n  retry_base_delay: 20ms\n  retry_max_delay: 50ms\n  shutdown_timeout: 5s\n",
    );
    let daemon = setup.start();
    db.exec(
        "INSERT INTO shop.users VALUES (1, 'a'), (2, 'b'); \
         UPDATE shop.users SET name = 'c' WHERE id = 1; \
         DELETE FROM shop.users WHERE id = 2; \
         INSERT INTO shop.orders VALUES (7, 100)",
    );
    receiver.wait_for_events(4, Duration::from_secs(30));

    // The workers count after the receiver answered, and the reader publishes its
    // position in batches: wait until the figures settle.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (content_type, text, s) = loop {
        let (ct, text) = scrape(setup.health_port, Some(PROMETHEUS_ACCEPT));
        let s = samples(&text);
        let settled = s.get("pikachu_dead_letters_total{task=\"orders_task\"}") == Some(&1.0)
            && s.get("pikachu_events_delivered_total{task=\"users_task\",event=\"delete\"}") == Some(&1.0)
            && s.get("pikachu_queue_depth") == Some(&0.0)
            // The reader publishes its position at the latest with the next heartbeat.
            && s.get("pikachu_binlog_events_total").is_some_and(|n| *n > 0.0);
        if settled {
            break (ct, text, s);
        }
        if Instant::now() > deadline {
            panic!(
                "metrics never showed the deliveries and the dead letter:\n{text}\nlog:\n{}",
                daemon.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    if let Err(e) = promtool_check(&text) {
        panic!("{e}\n--- scraped ---\n{text}");
    }
    for (family, kind) in FAMILIES {
        assert!(
            text.contains(&format!("\n# TYPE {family} {kind}\n"))
                && text.contains(&format!("# HELP {family} ")),
            "family {family} ({kind}) missing:\n{text}"
        );
    }
    assert!(
        text.contains("\n# TYPE pikachu_delivery_latency_seconds histogram\n"),
        "{text}"
    );

    let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("no sample {k}:\n{text}"));
    for (event, n) in [("insert", 2.0), ("update", 1.0), ("delete", 1.0)] {
        let labels = format!("{{task=\"users_task\",event=\"{event}\"}}");
        assert_eq!(
            get(&format!("pikachu_events_captured_total{labels}")),
            n,
            "captured {event}"
        );
        assert_eq!(
            get(&format!("pikachu_events_delivered_total{labels}")),
            n,
            "delivered {event}"
        );
    }
    assert_eq!(
        get("pikachu_events_captured_total{task=\"orders_task\",event=\"insert\"}"),
        1.0
    );
    assert_eq!(
        get("pikachu_events_delivered_total{task=\"orders_task\",event=\"insert\"}"),
        0.0
    );
    assert_eq!(
        get("pikachu_webhook_requests_total{task=\"users_task\",status_class=\"2xx\"}"),
        4.0
    );
    // First attempt + max_retries 2, all answered 500; then the dead letter.
    assert_eq!(
        get("pikachu_webhook_requests_total{task=\"orders_task\",status_class=\"5xx\"}"),
        3.0
    );
    assert_eq!(
        get("pikachu_webhook_retries_total{task=\"orders_task\"}"),
        2.0
    );
    assert_eq!(
        get("pikachu_webhook_retries_total{task=\"users_task\"}"),
        0.0
    );
    assert_eq!(get("pikachu_dead_letters_total{task=\"users_task\"}"), 0.0);
    assert_eq!(
        setup.dead_letters().len(),
        1,
        "the metric and the file agree"
    );
    // Successful deliveries only: the dead-lettered order is not a latency.
    assert_eq!(get("pikachu_delivery_latency_seconds_count"), 4.0);
    assert_eq!(
        get("pikachu_delivery_latency_seconds_bucket{le=\"+Inf\"}"),
        get("pikachu_delivery_latency_seconds_count")
    );
    assert_eq!(get("pikachu_source_connected"), 1.0);
    assert_eq!(get("pikachu_monitor_running"), 1.0);
    assert_eq!(get("pikachu_dispatcher_running"), 1.0);
    assert!(get("pikachu_binlog_events_total") > 0.0);
    assert!(get("pikachu_uptime_seconds") > 0.0);
    assert!(get("pikachu_queue_capacity") > 0.0);
    assert_eq!(
        get(&format!(
            "pikachu_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    // The binlog file the server writes, with a position inside it.
    let (file, pos): (String, f64) = s
        .iter()
        .find_map(|(k, v)| {
            let f = k
                .strip_prefix("pikachu_binlog_position_bytes{file=\"")?
                .strip_suffix("\"}")?;
            Some((f.to_owned(), *v))
        })
        .unwrap_or_else(|| panic!("no binlog position sample:\n{text}"));
    let server_file = db.query_strings("SHOW MASTER STATUS")[0][0]
        .clone()
        .expect("binlog file");
    assert_eq!(file, server_file);
    assert!(pos > 4.0);
    // Freshly written rows and heartbeats every 500 ms: the reader is not minutes behind.
    let lag = get("pikachu_source_lag_seconds");
    assert!((0.0..60.0).contains(&lag), "lag {lag}");

    // Without an Accept header (curl, the Go tool's dashboards) /metrics stays JSON.
    let (ct, body) = scrape(setup.health_port, None);
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON metrics");
    assert_eq!(v["tasks"][0]["events_delivered"]["insert"], 2);
}
