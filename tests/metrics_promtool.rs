//! The Prometheus exposition of `/metrics` passes `promtool check metrics`: the parser
//! Prometheus itself uses, plus its naming lints (`_total` counters, base units, …).
//!
//! promtool comes from Debian's `prometheus` package (installed by `.ci/run`). Without
//! it this test FAILS, so that a CI without promtool cannot pass silently; set
//! `PIKACHU_SKIP_PROMTOOL=1` to skip it on purpose.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use pikachu::http::render_prometheus;
use pikachu::stats::{Histogram, StatsData, TaskStats};

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
        reconnects: 1,
        binlog_events: 5000,
        schema_unknown: 2,
        decode_errors: 1,
        queue_depth: 12,
        queue_capacity: 1000,
        latency,
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
             Install it (Debian/Ubuntu: `apt-get install prometheus`, which `.ci/run` does),\n\
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
