//! Counters and gauges of the whole pipeline, behind one `parking_lot` mutex.
//!
//! Every part writes here (reader, workers, checkpoint); only the HTTP thread reads.
//! It holds numbers only: no events, no payloads, no secrets.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use crate::event::ChangeKind;

/// Upper bounds, in seconds, of the delivery-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// HTTP status classes counted per task: index 0 is a transport error (no answer).
pub const STATUS_CLASSES: [&str; 5] = ["error", "2xx", "3xx", "4xx", "5xx"];

pub fn status_class(status: Option<u16>) -> usize {
    match status {
        None => 0,
        Some(s) if (200..300).contains(&s) => 1,
        Some(s) if (300..400).contains(&s) => 2,
        Some(s) if (400..500).contains(&s) => 3,
        Some(_) => 4,
    }
}

/// Per-task counters.
#[derive(Clone, Debug, Default)]
pub struct TaskStats {
    pub task_id: String,
    /// Row changes matched to this task, by `ChangeKind::index()`.
    pub captured: [u64; 3],
    /// Row changes delivered (2xx), by kind.
    pub delivered: [u64; 3],
    /// Webhook requests by `STATUS_CLASSES` index.
    pub requests: [u64; 5],
    pub retries: u64,
    /// Row changes written to the dead-letter file.
    pub dead_letters: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Cumulative-ready counts per bucket of `LATENCY_BUCKETS` (not cumulative here).
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|&b| s <= b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_seconds += s;
    }
}

#[derive(Clone, Debug, Default)]
pub struct StatsData {
    pub tasks: Vec<TaskStats>,
    /// The reader thread is running (it may still be reconnecting).
    pub monitor_running: bool,
    /// Workers are running.
    pub dispatcher_running: bool,
    /// The binlog connection is up and streaming.
    pub source_connected: bool,
    /// Last position read from the binlog.
    pub binlog_file: String,
    pub binlog_pos: u64,
    /// Position saved in the checkpoint file.
    pub checkpoint_file: String,
    pub checkpoint_pos: u64,
    pub checkpoint_saves: u64,
    pub checkpoint_failures: u64,
    /// Wall clock when the last row event of a watched table was read.
    pub last_event_time: Option<SystemTime>,
    /// Seconds the reader was behind the source when last measured (commit time of the
    /// last transaction read, or 0 on a heartbeat: the server sends one only when it has
    /// nothing newer). `Stats::snapshot` adds the time passed since `lag_measured_at`.
    pub lag_seconds: f64,
    /// When `lag_seconds` was measured; `None` before the first measurement.
    pub lag_measured_at: Option<Instant>,
    pub reconnects: u64,
    pub binlog_events: u64,
    /// Row events whose column names could not be known (dead-lettered).
    pub schema_unknown: u64,
    /// Row events that could not be decoded (dead-lettered).
    pub decode_errors: u64,
    /// Events sitting in the dispatch queues.
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub latency: Histogram,
}

pub struct Stats {
    pub started: Instant,
    pub data: Mutex<StatsData>,
    /// Reads the queue depth when a snapshot is taken, so that the hot path never
    /// locks `data` for it. Set once by whoever owns the queues.
    queue_depth: OnceLock<QueueDepth>,
}

/// Counts what waits in the delivery queues (see `Stats::set_queue_depth_source`).
pub type QueueDepth = Box<dyn Fn() -> u64 + Send + Sync>;

impl Stats {
    pub fn new(task_ids: impl IntoIterator<Item = String>, queue_capacity: usize) -> Self {
        let tasks = task_ids
            .into_iter()
            .map(|task_id| TaskStats {
                task_id,
                ..TaskStats::default()
            })
            .collect();
        Stats {
            started: Instant::now(),
            data: Mutex::new(StatsData {
                tasks,
                queue_capacity: queue_capacity as u64,
                ..StatsData::default()
            }),
            queue_depth: OnceLock::new(),
        }
    }

    /// Where `queue_depth` comes from; later calls are ignored (one dispatcher per
    /// process).
    pub fn set_queue_depth_source(&self, source: QueueDepth) {
        let _ = self.queue_depth.set(source);
    }

    /// A consistent copy for rendering, taken without holding the lock while rendering.
    ///
    /// The lag in the copy grows with the time since it was measured: a reader that is
    /// stuck (paused by backpressure, disconnected, or on a silent connection) falls
    /// further behind every second, and a frozen figure would hide exactly that. While
    /// streaming, a commit or a heartbeat at least every heartbeat period resets it.
    pub fn snapshot(&self) -> StatsData {
        let mut d = self.data.lock().clone();
        if let Some(depth) = self.queue_depth.get() {
            d.queue_depth = depth();
        }
        if let Some(at) = d.lag_measured_at {
            d.lag_seconds += at.elapsed().as_secs_f64();
        }
        d
    }

    /// The reader is `lag` seconds behind the source as of now: the commit time of the
    /// transaction just read, or 0 on a heartbeat.
    pub fn set_lag(&self, lag: f64) {
        let mut d = self.data.lock();
        d.lag_seconds = lag;
        d.lag_measured_at = Some(Instant::now());
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// UP when the reader is streaming and the workers run.
    pub fn is_up(&self) -> bool {
        let d = self.data.lock();
        d.monitor_running && d.dispatcher_running && d.source_connected
    }

    /// `n` row changes of one kind captured for `task` (a rows event's worth at once:
    /// one lock and one clock read per event, not per row).
    pub fn count_captured(&self, task: usize, kind: ChangeKind, n: u64) {
        let now = SystemTime::now();
        let mut d = self.data.lock();
        d.tasks[task].captured[kind.index()] += n;
        d.last_event_time = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_keeps_growing_until_the_next_measurement() {
        let stats = Stats::new(["t".to_owned()], 10);
        assert_eq!(stats.snapshot().lag_seconds, 0.0, "no measurement yet");
        stats.set_lag(2.0);
        std::thread::sleep(Duration::from_millis(30));
        let lag = stats.snapshot().lag_seconds;
        assert!(
            lag >= 2.03,
            "a reader that reads nothing falls behind: {lag}"
        );
        // A heartbeat says "caught up" again.
        stats.set_lag(0.0);
        assert!(stats.snapshot().lag_seconds < 2.0);
        // The stored figure itself is the measurement; only the copy is aged.
        assert_eq!(stats.data.lock().lag_seconds, 0.0);
    }
}
