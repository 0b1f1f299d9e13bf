//! Counters and gauges, owned by the stage that changes them.
//!
//! Each stage holds its own part and writes only that: the reader `SourceStats`, the
//! delivery workers `DispatchStats`, the checkpoint flusher `CheckpointStats`. Counters
//! are atomics (the reader counts once per rows event, a worker once per delivery, and
//! neither waits for the other or for a scrape); the few values that must change
//! together (a position, the lag and when it was measured, the latency histogram) sit
//! behind a small lock of their own. `Stats` bundles the three parts; the HTTP thread
//! sees it only through `Metrics`, a read-only snapshot. No stage writes another's
//! counters, and nothing here holds events, payloads or secrets.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    /// Seconds its workers waited on `max_rate` / `max_in_flight`.
    pub limit_wait_seconds: f64,
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
    /// Seconds the reader is behind the source: as last measured (commit time of the
    /// last transaction read, or 0 on a heartbeat: the server sends one only when it has
    /// nothing newer) plus the time passed since.
    pub lag_seconds: f64,
    /// Unused: the snapshot's `lag_seconds` is already aged. Kept so that code building
    /// a `StatsData` by hand keeps compiling.
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
    /// `ha.group` set: `"active"` or `"standby"`; `None` without one.
    pub ha_role: Option<&'static str>,
    /// The lease holder's database connection id, as a standby last saw it.
    pub ha_holder: Option<u64>,
    /// Times this instance became active.
    pub ha_takeovers: u64,
    /// Times this instance lost its lease while active.
    pub ha_leases_lost: u64,
    /// Failed attempts to ask for the lease (database unreachable).
    pub ha_lease_errors: u64,
    /// Backfills started since the process started, one per task that had one.
    pub backfills: Vec<BackfillData>,
}

/// One task's backfill as `/metrics` shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackfillData {
    pub task_id: String,
    pub running: bool,
    pub rows_read: u64,
    pub rows_delivered: u64,
    /// Chunk rows dropped because the stream already carried a newer change of the key.
    pub rows_superseded: u64,
    pub rows_estimated: u64,
    pub chunks: u64,
    pub failures: u64,
    /// Rows read per second since this run of the backfill started.
    pub rows_per_second: f64,
    /// Seconds left at that rate; 0 when unknown or done.
    pub eta_seconds: f64,
}

/// What the backfill threads own, per task.
#[derive(Default)]
pub struct BackfillStats {
    tasks: Vec<BackfillCounters>,
}

#[derive(Default)]
pub struct BackfillCounters {
    pub running: AtomicBool,
    /// A backfill was started for this task (it shows in `/metrics` from then on).
    pub started: AtomicBool,
    pub rows_read: AtomicU64,
    pub rows_delivered: AtomicU64,
    pub rows_superseded: AtomicU64,
    pub rows_estimated: AtomicU64,
    pub chunks: AtomicU64,
    pub failures: AtomicU64,
    /// Rows read in this run and when it started, for the rate.
    pub run: Mutex<(u64, Option<Instant>)>,
}

impl BackfillStats {
    pub fn new(tasks: usize) -> BackfillStats {
        BackfillStats {
            tasks: (0..tasks).map(|_| BackfillCounters::default()).collect(),
        }
    }

    pub fn task(&self, task: usize) -> Option<&BackfillCounters> {
        self.tasks.get(task)
    }

    /// Whether a backfill of task `task` was started.
    pub fn started(&self, task: usize) -> bool {
        self.tasks
            .get(task)
            .is_some_and(|c| c.started.load(Relaxed))
    }

    /// Task `task`'s backfill, once one was started.
    pub fn data(&self, task: usize, task_id: &str) -> Option<BackfillData> {
        let c = self.tasks.get(task)?;
        if !c.started.load(Relaxed) {
            return None;
        }
        let read = c.rows_read.load(Relaxed);
        let estimated = c.rows_estimated.load(Relaxed);
        let running = c.running.load(Relaxed);
        let (base, since) = *c.run.lock();
        let rate = match since {
            Some(t) if running => {
                read.saturating_sub(base) as f64 / t.elapsed().as_secs_f64().max(0.001)
            }
            _ => 0.0,
        };
        let eta = if rate > 0.0 && estimated > read {
            (estimated - read) as f64 / rate
        } else {
            0.0
        };
        Some(BackfillData {
            task_id: task_id.to_owned(),
            running,
            rows_read: read,
            rows_delivered: c.rows_delivered.load(Relaxed),
            rows_superseded: c.rows_superseded.load(Relaxed),
            rows_estimated: estimated,
            chunks: c.chunks.load(Relaxed),
            failures: c.failures.load(Relaxed),
            rows_per_second: rate,
            eta_seconds: eta,
        })
    }

    fn fill(&self, d: &mut StatsData) {
        let backfills: Vec<BackfillData> = d
            .tasks
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.data(i, &t.task_id))
            .collect();
        d.backfills = backfills;
    }
}

impl StatsData {
    /// UP when the reader is streaming and the workers run.
    pub fn is_up(&self) -> bool {
        // A standby is healthy while it waits: nothing of it should be restarted.
        self.ha_role == Some("standby")
            || self.monitor_running && self.dispatcher_running && self.source_connected
    }
}

/// What the HTTP thread may do with the stats: read a consistent-enough copy. It never
/// sees the stages' counters themselves.
pub trait Metrics: Send + Sync {
    /// A copy for rendering; taking it never blocks a stage for longer than a copy.
    fn snapshot(&self) -> StatsData;
    /// Time since the process started.
    fn uptime(&self) -> Duration;
}

/// Per-kind counters (`ChangeKind::index()`).
type KindCounters = [AtomicU64; 3];

fn load3(a: &KindCounters) -> [u64; 3] {
    [a[0].load(Relaxed), a[1].load(Relaxed), a[2].load(Relaxed)]
}

/// What the binlog reader owns: its connection state, position, lag and what it
/// captured per task.
#[derive(Default)]
pub struct SourceStats {
    running: AtomicBool,
    connected: AtomicBool,
    reconnects: AtomicU64,
    binlog_events: AtomicU64,
    schema_unknown: AtomicU64,
    decode_errors: AtomicU64,
    /// Nanoseconds since the epoch of the last row event of a watched table; 0: none.
    last_event_nanos: AtomicU64,
    /// By task: row changes matched to the task, by kind.
    captured: Vec<KindCounters>,
    /// By task: row events dead-lettered by the reader (they could not be decoded).
    dead_letters: Vec<AtomicU64>,
    position: Mutex<(String, u64)>,
    /// Seconds behind the source when measured, and when (`None` before the first).
    lag: Mutex<(f64, Option<Instant>)>,
}

impl SourceStats {
    pub fn new(tasks: usize) -> SourceStats {
        SourceStats {
            captured: (0..tasks).map(|_| KindCounters::default()).collect(),
            dead_letters: (0..tasks).map(|_| AtomicU64::new(0)).collect(),
            ..SourceStats::default()
        }
    }

    /// The reader thread runs (true) or has ended (false, and so is the connection).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Relaxed);
        if !running {
            self.connected.store(false, Relaxed);
        }
    }

    /// The binlog stream is up.
    pub fn connected(&self) {
        self.connected.store(true, Relaxed);
    }

    /// The binlog connection was lost; a reconnect follows.
    pub fn lost(&self) {
        self.connected.store(false, Relaxed);
        self.reconnects.fetch_add(1, Relaxed);
    }

    /// `events` more binlog events were read, the last one ending at `file:pos`.
    pub fn read_up_to(&self, events: u64, file: &str, pos: u64) {
        self.binlog_events.fetch_add(events, Relaxed);
        let mut p = self.position.lock();
        if p.0 != file {
            p.0.clear();
            p.0.push_str(file);
        }
        p.1 = pos;
    }

    /// The reader is `lag` seconds behind the source as of now: the commit time of the
    /// transaction just read, or 0 on a heartbeat.
    pub fn set_lag(&self, lag: f64) {
        *self.lag.lock() = (lag, Some(Instant::now()));
    }

    /// `n` row changes of one kind captured for `task` (a rows event's worth at once:
    /// one clock read per event, not per row).
    pub fn captured(&self, task: usize, kind: ChangeKind, n: u64) {
        if let Some(c) = self.captured.get(task) {
            c[kind.index()].fetch_add(n, Relaxed);
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        self.last_event_nanos.store(nanos.max(1), Relaxed);
    }

    /// A row event whose columns could not be known (`schema`) or decoded was
    /// dead-lettered for these tasks.
    pub fn undeliverable(&self, schema: bool, tasks: &[usize]) {
        if schema {
            self.schema_unknown.fetch_add(1, Relaxed);
        } else {
            self.decode_errors.fetch_add(1, Relaxed);
        }
        for &t in tasks {
            if let Some(c) = self.dead_letters.get(t) {
                c.fetch_add(1, Relaxed);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn fill_for_test(&self, d: &mut StatsData) {
        self.fill(d);
    }

    fn fill(&self, d: &mut StatsData) {
        d.monitor_running = self.running.load(Relaxed);
        d.source_connected = self.connected.load(Relaxed);
        d.reconnects = self.reconnects.load(Relaxed);
        d.binlog_events = self.binlog_events.load(Relaxed);
        d.schema_unknown = self.schema_unknown.load(Relaxed);
        d.decode_errors = self.decode_errors.load(Relaxed);
        d.last_event_time = match self.last_event_nanos.load(Relaxed) {
            0 => None,
            n => Some(UNIX_EPOCH + Duration::from_nanos(n)),
        };
        (d.binlog_file, d.binlog_pos) = self.position.lock().clone();
        // The lag grows with the time since it was measured: a reader that is stuck
        // (paused by backpressure, disconnected, or on a silent connection) falls
        // further behind every second, and a frozen figure would hide exactly that.
        // While streaming, a commit or a heartbeat at least every heartbeat period
        // resets it.
        let (lag, at) = *self.lag.lock();
        d.lag_seconds = lag + at.map_or(0.0, |at| at.elapsed().as_secs_f64());
        for (t, task) in d.tasks.iter_mut().enumerate() {
            if let Some(c) = self.captured.get(t) {
                task.captured = load3(c);
            }
            if let Some(c) = self.dead_letters.get(t) {
                task.dead_letters += c.load(Relaxed);
            }
        }
    }
}

/// One task's delivery counters.
#[derive(Default)]
struct TaskDispatch {
    delivered: KindCounters,
    requests: [AtomicU64; 5],
    retries: AtomicU64,
    dead_letters: AtomicU64,
    limit_wait_nanos: AtomicU64,
}

/// What the delivery workers own: whether they run, what they sent per task, the
/// latency histogram and the queues.
#[derive(Default)]
pub struct DispatchStats {
    running: AtomicBool,
    tasks: Vec<TaskDispatch>,
    /// One lock per delivered request (not per row): the buckets, count and sum must
    /// agree for Prometheus.
    latency: Mutex<Histogram>,
    queue_capacity: AtomicU64,
    /// Reads the queue depth when a snapshot is taken, so that the hot path never
    /// counts it. Set once by whoever owns the queues.
    queue_depth: OnceLock<QueueDepth>,
}

/// Counts what waits in the delivery queues (see `DispatchStats::set_queue_depth_source`).
pub type QueueDepth = Box<dyn Fn() -> u64 + Send + Sync>;

impl DispatchStats {
    pub fn new(tasks: usize, queue_capacity: usize) -> DispatchStats {
        DispatchStats {
            tasks: (0..tasks).map(|_| TaskDispatch::default()).collect(),
            queue_capacity: AtomicU64::new(queue_capacity as u64),
            ..DispatchStats::default()
        }
    }

    /// The workers run (true) or are finished (false).
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Relaxed);
    }

    pub fn set_queue_capacity(&self, capacity: usize) {
        self.queue_capacity.store(capacity as u64, Relaxed);
    }

    /// Where `queue_depth` comes from; later calls are ignored (one dispatcher per
    /// process).
    pub fn set_queue_depth_source(&self, source: QueueDepth) {
        let _ = self.queue_depth.set(source);
    }

    /// One webhook request of `task` got an answer of this `STATUS_CLASSES` index.
    pub fn request(&self, task: usize, class: usize) {
        if let Some(c) = self.tasks.get(task).and_then(|t| t.requests.get(class)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// A worker of `task` waited this long on the task's limits.
    pub fn limit_waited(&self, task: usize, waited: Duration) {
        if let Some(t) = self.tasks.get(task) {
            let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            t.limit_wait_nanos.fetch_add(nanos, Relaxed);
        }
    }

    pub fn retry(&self, task: usize) {
        if let Some(t) = self.tasks.get(task) {
            t.retries.fetch_add(1, Relaxed);
        }
    }

    pub fn dead_lettered(&self, task: usize, changes: u64) {
        if let Some(t) = self.tasks.get(task) {
            t.dead_letters.fetch_add(changes, Relaxed);
        }
    }

    /// A request of `task` was delivered: one change per kind in `kinds`, each with
    /// how long it took since it was queued.
    pub fn delivered(&self, task: usize, changes: impl Iterator<Item = (ChangeKind, Duration)>) {
        let Some(t) = self.tasks.get(task) else {
            return;
        };
        let mut latency = self.latency.lock();
        for (kind, took) in changes {
            t.delivered[kind.index()].fetch_add(1, Relaxed);
            latency.observe(took);
        }
    }

    fn fill(&self, d: &mut StatsData) {
        d.dispatcher_running = self.running.load(Relaxed);
        d.queue_capacity = self.queue_capacity.load(Relaxed);
        d.queue_depth = self.queue_depth.get().map_or(0, |depth| depth());
        d.latency = self.latency.lock().clone();
        for (task, t) in d.tasks.iter_mut().zip(&self.tasks) {
            task.delivered = load3(&t.delivered);
            for (out, c) in task.requests.iter_mut().zip(&t.requests) {
                *out = c.load(Relaxed);
            }
            task.retries = t.retries.load(Relaxed);
            task.dead_letters += t.dead_letters.load(Relaxed);
            task.limit_wait_seconds = t.limit_wait_nanos.load(Relaxed) as f64 / 1e9;
        }
    }
}

/// What the checkpoint flusher owns: the position saved and how saving goes.
#[derive(Default)]
pub struct CheckpointStats {
    saves: AtomicU64,
    failures: AtomicU64,
    saved: Mutex<(String, u64)>,
}

impl CheckpointStats {
    pub fn saved(&self, file: &str, pos: u64) {
        self.saves.fetch_add(1, Relaxed);
        let mut s = self.saved.lock();
        s.0.clear();
        s.0.push_str(file);
        s.1 = pos;
    }

    pub fn failed(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    fn fill(&self, d: &mut StatsData) {
        d.checkpoint_saves = self.saves.load(Relaxed);
        d.checkpoint_failures = self.failures.load(Relaxed);
        (d.checkpoint_file, d.checkpoint_pos) = self.saved.lock().clone();
    }
}

/// What the lease (`ha`) owns: the role and the takeovers.
#[derive(Default)]
pub struct HaStats {
    /// 0: no `ha.group`; 1: standby; 2: active.
    role: std::sync::atomic::AtomicU8,
    /// Holder connection id + 1; 0: unknown.
    holder: AtomicU64,
    takeovers: AtomicU64,
    leases_lost: AtomicU64,
    lease_errors: AtomicU64,
}

impl HaStats {
    pub fn standby(&self) {
        self.role.store(1, Relaxed);
    }

    pub fn active(&self) {
        self.role.store(2, Relaxed);
        self.takeovers.fetch_add(1, Relaxed);
        self.holder.store(0, Relaxed);
    }

    pub fn set_holder(&self, holder: Option<u64>) {
        self.holder
            .store(holder.map_or(0, |h| h.saturating_add(1)), Relaxed);
    }

    pub fn lease_lost(&self) {
        self.leases_lost.fetch_add(1, Relaxed);
    }

    pub fn lease_error(&self) {
        self.lease_errors.fetch_add(1, Relaxed);
    }

    fn fill(&self, d: &mut StatsData) {
        d.ha_role = match self.role.load(Relaxed) {
            1 => Some("standby"),
            2 => Some("active"),
            _ => None,
        };
        d.ha_holder = self.holder.load(Relaxed).checked_sub(1);
        d.ha_takeovers = self.takeovers.load(Relaxed);
        d.ha_leases_lost = self.leases_lost.load(Relaxed);
        d.ha_lease_errors = self.lease_errors.load(Relaxed);
    }
}

/// The stages' stats, handed out one part per stage, and read whole through `Metrics`.
pub struct Stats {
    started: Instant,
    task_ids: Vec<String>,
    pub source: Arc<SourceStats>,
    pub dispatch: Arc<DispatchStats>,
    pub checkpoint: Arc<CheckpointStats>,
    pub ha: Arc<HaStats>,
    pub backfill: Arc<BackfillStats>,
}

impl Stats {
    pub fn new(task_ids: impl IntoIterator<Item = String>, queue_capacity: usize) -> Self {
        let task_ids: Vec<String> = task_ids.into_iter().collect();
        Stats {
            started: Instant::now(),
            source: Arc::new(SourceStats::new(task_ids.len())),
            dispatch: Arc::new(DispatchStats::new(task_ids.len(), queue_capacity)),
            checkpoint: Arc::new(CheckpointStats::default()),
            ha: Arc::new(HaStats::default()),
            backfill: Arc::new(BackfillStats::new(task_ids.len())),
            task_ids,
        }
    }
}

impl Metrics for Stats {
    /// Each part is read on its own, so two figures of different stages may be a few
    /// events apart; `captured` is read before `delivered`'s stage would be, and is
    /// counted before routing, so it is never behind `delivered`.
    fn snapshot(&self) -> StatsData {
        let mut d = StatsData {
            tasks: self
                .task_ids
                .iter()
                .map(|id| TaskStats {
                    task_id: id.clone(),
                    ..TaskStats::default()
                })
                .collect(),
            ..StatsData::default()
        };
        // Dispatch first: what it delivered was captured before, so the source read
        // after it is never behind.
        self.dispatch.fill(&mut d);
        self.source.fill(&mut d);
        self.checkpoint.fill(&mut d);
        self.ha.fill(&mut d);
        self.backfill.fill(&mut d);
        d
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The process's own figures for the JSON metrics' `system` section (the Go tool's
/// runtime figures have no exact equivalent; see README "Health and metrics").
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemFigures {
    /// OS threads of the process (`Threads:` in /proc/self/status).
    pub threads: u64,
    /// Resident memory in bytes (`VmRSS:`).
    pub resident_bytes: u64,
    /// Peak resident memory in bytes (`VmHWM:`).
    pub resident_peak_bytes: u64,
    /// Virtual memory in bytes (`VmSize:`).
    pub virtual_bytes: u64,
    pub cpus: u64,
}

impl SystemFigures {
    /// Reads /proc/self/status; figures it cannot read stay 0 (other systems than
    /// Linux, a /proc without them).
    pub fn read() -> SystemFigures {
        let mut f = std::fs::read_to_string("/proc/self/status")
            .map(|s| SystemFigures::parse(&s))
            .unwrap_or_default();
        f.cpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
        f
    }

    fn parse(status: &str) -> SystemFigures {
        let mut f = SystemFigures::default();
        for line in status.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let mut words = value.split_whitespace();
            let n: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            // The memory lines are in kB (kibibytes).
            let kib = if words.next() == Some("kB") { 1024 } else { 1 };
            match key {
                "Threads" => f.threads = n,
                "VmRSS" => f.resident_bytes = n * kib,
                "VmHWM" => f.resident_peak_bytes = n * kib,
                "VmSize" => f.virtual_bytes = n * kib,
                _ => {}
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_keeps_growing_until_the_next_measurement() {
        let stats = Stats::new(["t".to_owned()], 10);
        assert_eq!(stats.snapshot().lag_seconds, 0.0, "no measurement yet");
        stats.source.set_lag(2.0);
        std::thread::sleep(Duration::from_millis(30));
        let lag = stats.snapshot().lag_seconds;
        assert!(
            lag >= 2.03,
            "a reader that reads nothing falls behind: {lag}"
        );
        // A heartbeat says "caught up" again.
        stats.source.set_lag(0.0);
        assert!(stats.snapshot().lag_seconds < 2.0);
    }

    #[test]
    fn each_stage_fills_its_part_and_dead_letters_add_up() {
        let stats = Stats::new(["a".to_owned(), "b".to_owned()], 10);
        stats.source.set_running(true);
        stats.source.connected();
        stats.source.captured(1, ChangeKind::Update, 3);
        stats.source.undeliverable(false, &[1]);
        stats.source.read_up_to(7, "bin.000002", 900);
        stats.dispatch.set_running(true);
        stats.dispatch.request(1, 1);
        stats.dispatch.retry(1);
        stats.dispatch.dead_lettered(1, 2);
        stats.dispatch.delivered(
            1,
            [(ChangeKind::Update, Duration::from_millis(3))].into_iter(),
        );
        stats.checkpoint.saved("bin.000002", 800);
        stats.checkpoint.failed();
        let d = stats.snapshot();
        assert!(d.is_up());
        let t = &d.tasks[1];
        assert_eq!(t.task_id, "b");
        assert_eq!(t.captured, [0, 3, 0]);
        assert_eq!(t.delivered, [0, 1, 0]);
        assert_eq!(t.requests, [0, 1, 0, 0, 0]);
        assert_eq!((t.retries, t.dead_letters), (1, 3));
        assert_eq!(d.tasks[0].captured, [0, 0, 0]);
        assert_eq!(d.decode_errors, 1);
        assert_eq!((d.binlog_file.as_str(), d.binlog_pos), ("bin.000002", 900));
        assert_eq!(d.binlog_events, 7);
        assert_eq!(d.latency.count, 1);
        assert_eq!((d.checkpoint_saves, d.checkpoint_failures), (1, 1));
        assert_eq!(d.checkpoint_pos, 800);
        assert!(d.last_event_time.is_some());
        stats.source.lost();
        assert!(!stats.snapshot().is_up());
        assert_eq!(stats.snapshot().reconnects, 1);
    }

    #[test]
    fn system_figures_parse_proc_status() {
        let f = SystemFigures::parse(
            "Name:\tpikachu\nVmSize:\t  100 kB\nVmHWM:\t 20 kB\nVmRSS:\t  12 kB\nThreads:\t9\n",
        );
        assert_eq!(f.threads, 9);
        assert_eq!(f.resident_bytes, 12 * 1024);
        assert_eq!(f.resident_peak_bytes, 20 * 1024);
        assert_eq!(f.virtual_bytes, 100 * 1024);
        #[cfg(target_os = "linux")]
        assert!(SystemFigures::read().threads >= 1);
    }
}
