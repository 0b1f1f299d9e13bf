//! Dispatch: the reader's `Sink`, and the worker pool that turns its changes into
//! webhook requests.
//!
//! As the sink it numbers each change in the checkpoint tracker and turns transaction
//! ends into tracker marks, so the reader knows neither. Routes each delivery to a worker by (task, primary key) so that one key's changes go
//! in order; retries with backoff; dead-letters what finally fails; completes sequence
//! numbers in the checkpoint tracker. It never reads the binlog.
//!
//! Parts: this file owns start-up (keys, headers, the HTTP agent, threads), routing and
//! shutdown; `worker` owns one worker's loop (batching, requests, outcomes); `retry`
//! owns the retry policy. Data flows one way: `route` → per-worker bounded channel →
//! worker → tracker/stats/dead letters. Nothing here blocks the reader except a full
//! queue (backpressure) and an update that changes a primary key (a barrier).
//!
//! It owns `DispatchStats` (running, per-task requests, deliveries, retries, dead
//! letters, the latency histogram and the queues) and writes no other stage's figures.
//! The queue depth is the number of deliveries sitting in the worker queues, as the Go
//! tool's `len(eventChan)`: read from the queues when a snapshot is taken, so it is a
//! length the queues really had and costs the hot path nothing. Deliveries a worker
//! holds (being sent, or gathered into a batch) are not queued any more.

mod client;
mod resolve;
mod retry;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};
use ureq::http::{HeaderName, HeaderValue, Uri};

use crate::checkpoint::{Checkpoint, Tracker};
use crate::config::{host_port, Config, Task};
use crate::deadletter::{DeadLetter, DeadLetters};
use crate::event::{Delivery, RowChange, RowImage, TxnMeta, Value};
use crate::shutdown::Signal;
use crate::signature::SigningKey;
use crate::sink::{Sink, SinkClosed};
use crate::stats::DispatchStats;

use worker::Item;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// A task's certificate or key file cannot be used (it was when the configuration
    /// was loaded: it changed since).
    #[error("task {task}: cannot set up TLS for its receiver: {source}")]
    Tls {
        task: String,
        #[source]
        source: crate::tls::PemError,
    },
    /// A thread could not be started.
    #[error("cannot start a dispatch worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Everything the workers share, built once at start.
pub struct DispatchContext {
    pub config: Arc<Config>,
    pub tracker: Arc<Tracker>,
    pub stats: Arc<DispatchStats>,
    pub dead_letters: Arc<DeadLetters>,
    /// Raised when the shutdown deadline has passed: give up in-flight retries
    /// (without completing those events, so they are read again after a restart).
    pub abort: Arc<Signal>,
    /// With `ha.group`: no request is sent unless the lease still holds; what is not
    /// sent stays incomplete, for whoever holds the lease next.
    pub fence: Option<Arc<crate::shutdown::Fence>>,
}

pub struct Dispatcher {
    senders: Vec<Sender<Item>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What every worker reads; immutable after start.
struct Shared {
    ctx: DispatchContext,
    /// By task index, as in `Config::tasks`.
    targets: Vec<Target>,
    /// How many deliveries a worker may set aside behind failing keys (the capacity of
    /// its queue): with them, memory stays bounded by twice the queues.
    hold_limit: usize,
    /// Deliveries routed and not yet complete, by key hash: what an update that changes
    /// a primary key waits for (its two keys only, not a failing third key).
    in_flight: parking_lot::Mutex<HashMap<u64, usize>>,
    /// Notified when a key's last delivery in flight completes.
    key_idle: parking_lot::Condvar,
    /// `dispatcher.max_connections`: requests open at once per callback host.
    host_limit: HostLimit,
    /// By task index: its `max_rate` and `max_in_flight`.
    task_limits: Vec<TaskLimit>,
}

/// A task's `max_rate` (requests are spaced 1/rate apart) and `max_in_flight`
/// (requests open at once). A worker over a limit waits before sending, so one key's
/// deliveries keep their order (they all go through that worker) and nothing is
/// dropped: the queues fill and the reader pauses (backpressure).
pub(crate) struct TaskLimit {
    /// `None`: no rate limit.
    spacing: Option<Duration>,
    /// When the next request may leave.
    next: parking_lot::Mutex<Instant>,
    max_in_flight: Option<usize>,
    open: parking_lot::Mutex<usize>,
    freed: parking_lot::Condvar,
}

/// One request's place under `TaskLimit::max_in_flight`; dropping it frees the place.
pub(crate) struct TaskPermit<'a>(Option<&'a TaskLimit>);

impl TaskLimit {
    fn new(task: &Task) -> TaskLimit {
        TaskLimit {
            spacing: task
                .max_rate
                .map(|rate| Duration::from_secs_f64(1.0 / rate)),
            next: parking_lot::Mutex::new(Instant::now()),
            max_in_flight: task.max_in_flight,
            open: parking_lot::Mutex::new(0),
            freed: parking_lot::Condvar::new(),
        }
    }

    /// Waits for the task's turn; `None` when `abort` was raised first. Returns how long
    /// it waited.
    fn acquire<'a>(&'a self, abort: &Signal) -> Option<(TaskPermit<'a>, Duration)> {
        let started = Instant::now();
        if let Some(max) = self.max_in_flight {
            let mut open = self.open.lock();
            while *open >= max {
                if abort.is_raised() {
                    return None;
                }
                self.freed.wait_for(&mut open, BARRIER_POLL);
            }
            *open += 1;
        }
        let permit = TaskPermit(self.max_in_flight.map(|_| self));
        if let Some(spacing) = self.spacing {
            let slot = {
                let mut next = self.next.lock();
                let slot = (*next).max(Instant::now());
                *next = slot + spacing;
                slot
            };
            let wait = slot.saturating_duration_since(Instant::now());
            if !wait.is_zero() && !abort.sleep(wait) {
                return None;
            }
        }
        let waited = if self.spacing.is_some() || self.max_in_flight.is_some() {
            started.elapsed()
        } else {
            Duration::ZERO
        };
        Some((permit, waited))
    }
}

impl Drop for TaskPermit<'_> {
    fn drop(&mut self) {
        if let Some(limit) = self.0 {
            let mut open = limit.open.lock();
            *open = open.saturating_sub(1);
            drop(open);
            limit.freed.notify_one();
        }
    }
}

/// A counting semaphore per callback host (`host:port`): `dispatcher.max_connections`
/// requests to one host at most, whatever the worker count. A worker over the limit
/// waits before sending, so one key's deliveries keep their order (they all go through
/// that worker). No limit at all when it is at least the worker count: the workers
/// themselves never have more requests open than that.
struct HostLimit {
    /// `None`: no limit.
    max: Option<usize>,
    open: parking_lot::Mutex<HashMap<String, usize>>,
    freed: parking_lot::Condvar,
    /// Hosts that answered 429: no request to them before this.
    paused: parking_lot::Mutex<HashMap<String, Instant>>,
}

/// One request's place under `HostLimit`; dropping it frees the place.
pub(crate) struct HostPermit<'a> {
    limit: &'a HostLimit,
    host: Option<&'a str>,
}

impl HostLimit {
    fn new(max: usize, workers: usize) -> HostLimit {
        HostLimit {
            max: (max < workers).then_some(max.max(1)),
            open: parking_lot::Mutex::new(HashMap::new()),
            freed: parking_lot::Condvar::new(),
            paused: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// No request to `host` for `delay` (it answered 429).
    fn pause(&self, host: &str, delay: Duration) {
        let until = Instant::now() + delay;
        let mut paused = self.paused.lock();
        let entry = paused.entry(host.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// How long requests to `host` must still wait after its 429; `None`: none.
    fn paused_for(&self, host: &str) -> Option<Duration> {
        let until = self.paused.lock().get(host).copied()?;
        let wait = until.saturating_duration_since(Instant::now());
        (!wait.is_zero()).then_some(wait)
    }

    /// Waits for a place for a request to `host`; `None` when `abort` was raised first.
    fn acquire<'a>(&'a self, host: &'a str, abort: &Signal) -> Option<HostPermit<'a>> {
        let Some(max) = self.max else {
            return Some(HostPermit {
                limit: self,
                host: None,
            });
        };
        let mut open = self.open.lock();
        loop {
            let n = open.entry(host.to_owned()).or_insert(0);
            if *n < max {
                *n += 1;
                return Some(HostPermit {
                    limit: self,
                    host: Some(host),
                });
            }
            if abort.is_raised() {
                return None;
            }
            self.freed.wait_for(&mut open, BARRIER_POLL);
        }
    }
}

impl Drop for HostPermit<'_> {
    fn drop(&mut self) {
        let Some(host) = self.host else {
            return;
        };
        let mut open = self.limit.open.lock();
        if let Some(n) = open.get_mut(host) {
            *n = n.saturating_sub(1);
        }
        drop(open);
        self.limit.freed.notify_one();
    }
}

impl Shared {
    /// Workers: these deliveries are complete (delivered or dead-lettered).
    fn keys_complete<'a>(&self, keys: impl Iterator<Item = &'a u64>) {
        let mut map = self.in_flight.lock();
        let mut idle = false;
        for key in keys {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                    idle = true;
                }
            }
        }
        drop(map);
        if idle {
            self.key_idle.notify_all();
        }
    }
}

/// One task's request recipe, built once at start from the already validated task.
struct Target {
    task_id: String,
    url: Uri,
    /// The URL as configured, for the dead-letter file (never logged: its query may hold
    /// a token).
    url_text: String,
    /// The task's own headers, sent after pikachu's.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// False when the task sets its own `Content-Type`.
    default_content_type: bool,
    /// `host:port` of the URL, the key of `dispatcher.max_connections`.
    host: String,
    key: Option<SigningKey>,
    /// The task's agent: its TLS settings and proxy (shared with tasks that have the
    /// same ones).
    agent: ureq::Agent,
    /// The columns it sends and in which values (`values`, resolved once).
    form: crate::encode::Form,
}

/// How long `route` sleeps between checks of `abort` while it waits at a barrier or on
/// a full queue.
const BARRIER_POLL: Duration = Duration::from_millis(100);

/// After `abort`, how long `finish` still waits for workers stuck in a request before
/// leaving them behind (a hung receiver must not hold shutdown for `timeout`).
const ABORT_GRACE: Duration = Duration::from_millis(500);

impl Target {
    fn new(
        task: &Task,
        default_key: Option<&SigningKey>,
        agents: &mut client::Agents,
    ) -> Result<Target, DispatchError> {
        let agent = agents
            .for_url(&task.callback_url, &task.tls)
            .map_err(|source| DispatchError::Tls {
                task: task.task_id.clone(),
                source,
            })?;
        Ok(Target {
            task_id: task.task_id.clone(),
            url: task.callback_url.clone(),
            url_text: task.callback_url.to_string(),
            headers: task.headers.clone(),
            default_content_type: !task
                .headers
                .iter()
                .any(|(name, _)| name == ureq::http::header::CONTENT_TYPE),
            host: {
                let (host, port) = host_port(&task.callback_url);
                format!("{host}:{port}")
            },
            key: task.secret.as_ref().or(default_key).cloned(),
            agent,
            form: crate::encode::Form {
                columns: task.columns.clone(),
                values: task.values,
            },
        })
    }
}

impl Dispatcher {
    /// Starts `dispatcher.worker_count` worker threads.
    ///
    /// Each worker has its own bounded queue of `max(1, queue_size / worker_count)`
    /// deliveries, so the queues together hold about `queue_size`.
    pub fn start(ctx: DispatchContext) -> Result<Dispatcher, DispatchError> {
        let dc = &ctx.config.dispatcher;
        let worker_count = dc.worker_count.max(1);
        let capacity = (dc.queue_size / worker_count).max(1);
        let env = |name: &str| std::env::var(name).ok();
        let mut agents = client::Agents::new(dc, worker_count, &env);
        let mut targets = Vec::with_capacity(ctx.config.tasks.len());
        for task in &ctx.config.tasks {
            targets.push(Target::new(task, dc.secret.as_ref(), &mut agents)?);
            if let Some(proxy) = client::proxy_for(&task.callback_url, &env) {
                log::info!(
                    "task {}: requests go through the proxy {} (from the environment; \
                     NO_PROXY lists the hosts that bypass it)",
                    task.task_id,
                    client::shown(&proxy)
                );
            }
        }
        let host_limit = HostLimit::new(dc.max_connections, worker_count);
        let task_limits = ctx.config.tasks.iter().map(TaskLimit::new).collect();
        if host_limit.max.is_none() {
            log::info!(
                "dispatcher.max_connections ({}) is not below worker_count ({worker_count}): \
                 no more than {worker_count} requests are ever open, so it limits nothing",
                dc.max_connections
            );
        }
        let shared = Arc::new(Shared {
            ctx,
            targets,
            hold_limit: capacity,
            in_flight: parking_lot::Mutex::new(HashMap::new()),
            key_idle: parking_lot::Condvar::new(),
            host_limit,
            task_limits,
        });

        let mut senders = Vec::with_capacity(worker_count);
        let mut workers = Vec::with_capacity(worker_count);
        let mut queues = Vec::with_capacity(worker_count);
        for index in 0..worker_count {
            let (tx, rx) = crossbeam_channel::bounded(capacity);
            queues.push(rx.clone());
            let for_worker = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || worker::run(index, rx, for_worker));
            match spawned {
                Ok(handle) => {
                    senders.push(tx);
                    workers.push(handle);
                }
                Err(e) => {
                    // Close the queues of the workers already running and let them go.
                    drop(senders);
                    for handle in workers {
                        let _ = handle.join();
                    }
                    return Err(DispatchError::Spawn(e));
                }
            }
        }
        // Exact and lock-free: what the queues hold when a snapshot is taken. Receivers
        // (not senders) are kept, so that closing the queues still ends the workers.
        let receivers = queues.clone();
        shared.ctx.stats.set_queue_depth_source(Box::new(move || {
            receivers.iter().map(|r| r.len() as u64).sum()
        }));
        shared.ctx.stats.set_queue_capacity(capacity * worker_count);
        shared.ctx.stats.set_running(true);
        Ok(Dispatcher {
            senders,
            workers,
            shared,
        })
    }

    /// Queues a delivery on the worker that owns its (task, primary key). Blocks while
    /// that worker's queue is full (backpressure). An update that changes the primary
    /// key waits until every earlier change of its old and its new key is complete, and
    /// is itself complete before `route` returns, so it overtakes nothing and no later
    /// change of either key can overtake it; other keys, failing or not, do not matter.
    /// Returns false when the workers are gone (abort), true otherwise.
    ///
    /// The barrier can wait as long as an earlier change of those keys keeps being
    /// retried (reading pauses meanwhile); only `abort` ends it.
    pub fn route(&self, delivery: Delivery) -> bool {
        let queued = Instant::now();
        let key = key_hash(&delivery);
        let worker = (key % self.senders.len() as u64) as usize;
        let barrier = delivery.change.changes_primary_key();
        if barrier && !self.wait_keys_idle(&[old_key_hash(&delivery), key]) {
            return false;
        }
        // Counted before the worker can see it, so its completion always finds it.
        *self.shared.in_flight.lock().entry(key).or_insert(0) += 1;
        let sender = &self.senders[worker];
        let item = Item {
            delivery,
            queued,
            key,
        };
        // The common case, a queue with room, needs no timed wait.
        match sender.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(back)) => {
                if !self.send_when_room(sender, back) {
                    return false;
                }
            }
        }
        !barrier || self.wait_keys_idle(&[key])
    }

    /// Blocks while the queue is full: never drops, never gives up, except on abort
    /// (checked between waits: a worker stuck in a request to a hung receiver never
    /// drops its queue, so a disconnect alone would not end the wait). Warns once when
    /// the wait passes `monitor.event_queue_timeout`.
    fn send_when_room(&self, sender: &Sender<Item>, mut item: Item) -> bool {
        let warn_after = self.shared.ctx.config.monitor.event_queue_timeout;
        let mut warned = false;
        loop {
            match sender.send_timeout(item, BARRIER_POLL) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.shared.ctx.abort.is_raised() {
                        return false;
                    }
                    let waited = back.queued.elapsed();
                    if !warned && waited > warn_after {
                        warned = true;
                        log::warn!(
                            "delivery queues have been full for {:.1}s: reading the binlog is \
                             paused (nothing is dropped; receivers are slower than the source)",
                            waited.as_secs_f64()
                        );
                    }
                    item = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    /// Closes the queues and waits for the workers to drain them. Workers keep
    /// retrying until `abort` is raised; a worker still inside a request `ABORT_GRACE`
    /// after that is left behind (its events stay incomplete, so the checkpoint does
    /// not pass them and a restart sends them again).
    pub fn finish(self) {
        let Dispatcher {
            senders,
            workers,
            shared,
        } = self;
        drop(senders);
        let mut running = workers;
        let mut aborted_at: Option<Instant> = None;
        loop {
            let (done, rest): (Vec<_>, Vec<_>) =
                running.into_iter().partition(JoinHandle::is_finished);
            running = rest;
            for handle in done {
                // A join fails only when the thread panicked, and a panic aborts the
                // whole process (panic = "abort", see main.rs), so there is no Err to
                // handle.
                let _ = handle.join();
            }
            if running.is_empty() {
                break;
            }
            if shared.ctx.abort.is_raised() {
                let since = *aborted_at.get_or_insert_with(Instant::now);
                if since.elapsed() >= ABORT_GRACE {
                    log::warn!(
                        "{} dispatch worker(s) still wait for a receiver's answer after the \
                         shutdown deadline; their events are sent again after a restart",
                        running.len()
                    );
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        shared.ctx.stats.set_running(false);
    }

    /// The worker that owns this delivery's (task, primary key).
    #[cfg(test)]
    fn worker_for(&self, delivery: &Delivery) -> usize {
        (key_hash(delivery) % self.senders.len() as u64) as usize
    }

    /// Waits until no delivery of these keys is in flight; false on abort.
    fn wait_keys_idle(&self, keys: &[u64]) -> bool {
        let shared = &self.shared;
        let mut map = shared.in_flight.lock();
        loop {
            if keys.iter().all(|k| !map.contains_key(k)) {
                return true;
            }
            if shared.ctx.abort.is_raised() {
                return false;
            }
            shared.key_idle.wait_for(&mut map, BARRIER_POLL);
        }
    }
}

/// The dispatcher is the sink of the binlog reader: it numbers each change for the
/// checkpoint tracker and routes it; a transaction end becomes a tracker mark.
impl Sink for Dispatcher {
    fn deliver(
        &self,
        task: usize,
        change: Arc<RowChange>,
        txn: Option<TxnMeta>,
    ) -> Result<(), SinkClosed> {
        let seq = self.shared.ctx.tracker.begin();
        if self.route(Delivery {
            seq,
            task,
            change,
            txn,
        }) {
            Ok(())
        } else {
            Err(SinkClosed)
        }
    }

    fn commit(&self, at: Checkpoint) {
        self.shared.ctx.tracker.commit(at);
    }
}

/// `replay-dead-letters`: sends one dead-lettered request again, once (no backoff: the
/// command is run by hand and can be run again), to the task's *current* callback URL
/// with its current headers and key (a moved receiver or a rotated token is the usual
/// reason for dead letters), signed with a fresh timestamp, the body as recorded.
///
/// `Ok` when the receiver answered 2xx. Otherwise `Err` with the letter to keep: after an
/// attempt with its new status, error, attempt count and time; unchanged (and a warning
/// logged) when it could not be attempted (its task is no longer configured).
// The letter to keep is the natural error value here; a replay is rare and not hot.
#[allow(clippy::result_large_err)]
pub fn replay(config: &Config, letter: &DeadLetter) -> Result<(), DeadLetter> {
    let not_attempted = |why: &dyn std::fmt::Display| {
        log::warn!(
            "dead letter {} of task `{}` not replayed: {why}",
            letter.ids.first().map_or("(no id)", String::as_str),
            letter.task_id
        );
        letter.clone()
    };
    let Some(task) = config.tasks.iter().find(|t| t.task_id == letter.task_id) else {
        return Err(not_attempted(&"the task is no longer configured"));
    };
    let env = |name: &str| std::env::var(name).ok();
    let mut agents = client::Agents::new(&config.dispatcher, 1, &env);
    let target = Target::new(task, config.dispatcher.secret.as_ref(), &mut agents)
        .map_err(|e| not_attempted(&e))?;
    let Some(event_id) = letter.ids.first() else {
        return Err(not_attempted(&"it has no event id"));
    };
    // The file holds a parsed value: keys come back in their recorded order
    // (serde_json's `preserve_order`), but spacing and number spelling may differ from
    // the first attempt's bytes, which is the same JSON to any receiver; the signature
    // covers exactly these bytes.
    let body = serde_json::to_vec(&letter.body).map_err(|e| not_attempted(&e))?;
    let attempt = worker::post(&target, event_id, &body);
    if attempt.verdict == retry::Verdict::Delivered {
        return Ok(());
    }
    let mut kept = letter.clone();
    kept.status = attempt.status;
    kept.error = attempt.full_error();
    kept.attempts = kept.attempts.saturating_add(1);
    kept.failed_at = crate::clock::rfc3339_utc(crate::clock::unix_now());
    Err(kept)
}

/// The hash of a delivery's (task, primary key); the task alone for a table without a
/// primary key, so such a task's changes stay in order. It picks the worker (modulo the
/// worker count) and, inside the worker, which deliveries must wait for each other.
/// SipHash with fixed keys: the same key hashes the same for the whole run.
fn key_hash(delivery: &Delivery) -> u64 {
    let mut h = DefaultHasher::new();
    delivery.task.hash(&mut h);
    hash_primary_key(&delivery.change, &mut h);
    h.finish()
}

/// `key_hash` of the row as it was before an update that changes its primary key: the
/// hash every earlier change of the old key got.
fn old_key_hash(delivery: &Delivery) -> u64 {
    let mut h = DefaultHasher::new();
    delivery.task.hash(&mut h);
    for &i in &delivery.change.table.primary_key {
        hash_value(column(&delivery.change.before, i), &mut h);
    }
    h.finish()
}

fn column(image: &Option<RowImage>, i: usize) -> Option<&Value> {
    image
        .as_ref()
        .and_then(|row| row.get(i))
        .and_then(Option::as_ref)
}

/// Feeds the primary-key values of `change` into `h`. Each key column is taken from the
/// new row, or from the old row when the new image lacks it (`binlog_row_image=MINIMAL`
/// updates carry only changed columns in the new image), so every change of one row
/// hashes the same whatever image it came with.
fn hash_primary_key(change: &RowChange, h: &mut impl Hasher) {
    for &i in &change.table.primary_key {
        hash_value(column(&change.after, i).or(column(&change.before, i)), h);
    }
}

fn hash_value(value: Option<&Value>, h: &mut impl Hasher) {
    match value {
        None => 0u8.hash(h),
        Some(Value::Null) => 1u8.hash(h),
        // Signed and unsigned spellings of one number hash alike.
        Some(Value::Int(v)) => (2u8, i128::from(*v)).hash(h),
        Some(Value::UInt(v)) => (2u8, i128::from(*v)).hash(h),
        Some(Value::Float(v)) => (3u8, f64::from(*v).to_bits()).hash(h),
        Some(Value::Double(v)) => (3u8, v.to_bits()).hash(h),
        Some(Value::Text(v)) => (4u8, v).hash(h),
        Some(Value::Bytes(v)) => (5u8, v).hash(h),
        Some(Value::Json(v)) => (6u8, v.to_string()).hash(h),
    }
}
