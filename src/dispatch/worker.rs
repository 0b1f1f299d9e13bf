//! One dispatch worker: takes deliveries off its own queue in order, gathers batches of
//! one task, sends each request until it is delivered or finally fails, dead-letters
//! failures, and completes sequence numbers.
//!
//! A worker sends one request at a time, so one key's deliveries (all on this worker)
//! are never sent concurrently. A request to be retried is parked until its next
//! attempt and the worker goes on with other keys; later deliveries of the parked
//! request's keys wait behind it, in queue order, so one key's order holds while a
//! failing key holds back the others sharing its worker only once `hold_limit`
//! deliveries are set aside (then the queue fills and reading pauses). It completes a
//! sequence number only after a 2xx or after the dead letter is on disk; on abort it
//! leaves the rest incomplete, so the checkpoint does not pass them and a restart sends
//! them again.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::retry::{error_verdict, parse_retry_after, status_verdict, Backoff, Verdict, XorShift};
use super::{Shared, Target};
use crate::clock::{rfc3339_utc, unix_now};
use crate::deadletter::DeadLetter;
use crate::event::Delivery;
use crate::stats::status_class;

/// A delivery in a worker queue, with when it was handed to `route` (for latency).
pub(super) struct Item {
    pub(super) delivery: Delivery,
    pub(super) queued: Instant,
    /// Hash of (task, primary key): deliveries with the same key go one at a time, in
    /// queue order.
    pub(super) key: u64,
}

/// At most this much of a response body is read to keep the connection; a larger one
/// closes it instead (receivers of webhooks answer with little or nothing).
const MAX_RESPONSE_BODY: u64 = 1 << 20;

/// How much of a failed response's body goes into the dead letter's `error`.
const ERROR_SNIPPET: usize = 200;

/// How dead-lettering a request ended.
enum Ending {
    DeadLettered,
    /// Abort raised: the request's events stay incomplete.
    Aborted,
}

/// One attempt's result.
pub(super) struct Attempt {
    pub(super) verdict: Verdict,
    pub(super) status: Option<u16>,
    /// What went wrong in a few words (`HTTP 400 Bad Request`, a transport error);
    /// empty on success. Safe for logs.
    pub(super) error: String,
    /// The start of a failed response's body: for the dead letter and debug logs only,
    /// since a receiver's answer is not ours to put in an operator's log.
    pub(super) answer: String,
    pub(super) retry_after: Option<std::time::Duration>,
}

impl Attempt {
    /// The error with the receiver's answer, as the dead letter records it.
    pub(super) fn full_error(&self) -> String {
        if self.answer.is_empty() {
            self.error.clone()
        } else {
            format!("{}: {}", self.error, self.answer)
        }
    }
}

pub(super) fn run(index: usize, queue: Receiver<Item>, shared: Arc<Shared>) {
    let mut worker = Worker {
        shared: &shared,
        queue,
        held: VecDeque::new(),
        rng: XorShift::seeded(index as u64),
        parked: Vec::new(),
        waiting: VecDeque::new(),
        blocked: HashMap::new(),
        hold_limit: shared.hold_limit.max(1),
    };
    worker.run();
}

/// A request whose last attempt failed with a retryable answer: it waits for `due`
/// without holding up the worker, and its keys wait with it.
struct Parked {
    batch: Vec<Item>,
    body: Vec<u8>,
    attempts: u32,
    backoff: Backoff,
    due: Instant,
}

/// What one attempt leads to.
enum Step {
    /// Delivered or dead-lettered: its events are complete.
    Done,
    /// Try again after this long.
    Again(Duration),
    /// Not attempted (its host asked for a pause with a 429): try after this long,
    /// without counting an attempt.
    Wait(Duration),
    Aborted,
}

/// How long the worker waits for its queue at most before it looks at `abort` again
/// while a retry is pending.
const ABORT_POLL: Duration = Duration::from_millis(200);

struct Worker<'a> {
    shared: &'a Shared,
    queue: Receiver<Item>,
    /// Deliveries of other tasks taken off the queue while a batch was gathered, in
    /// queue order: they are taken before the queue, so no key is overtaken. At most
    /// `batch_size` of them, so that one task's slow batch holds back the others by
    /// no more than that.
    held: VecDeque<Item>,
    rng: XorShift,
    /// Requests waiting for their next attempt.
    parked: Vec<Parked>,
    /// Deliveries taken off the queue whose key is held by a parked request, in queue
    /// order: they go after it, and before anything later of their key.
    waiting: VecDeque<Item>,
    /// Keys of the parked requests, with how many parked requests hold each.
    blocked: HashMap<u64, usize>,
    /// At most this many deliveries are held in `parked` and `waiting`; beyond that the
    /// worker stops taking from its queue (which fills, and the reader pauses).
    hold_limit: usize,
}

impl Worker<'_> {
    /// A failing key does not stop the worker: its request is parked until its next
    /// attempt is due, and the worker goes on with other keys meanwhile. One key's
    /// deliveries still go one at a time and in queue order.
    fn run(&mut self) {
        let mut open = true;
        loop {
            if self.shared.ctx.abort.is_raised() {
                return;
            }
            let now = Instant::now();
            if let Some(i) = self.due_index(now) {
                let parked = self.parked.swap_remove(i);
                if !self.retry(parked) {
                    return;
                }
                continue;
            }
            let next_due = self.parked.iter().map(|p| p.due).min();
            let room = self.held_count() < self.hold_limit;
            let first = if let Some(item) = self.held.pop_front() {
                item
            } else if open && room {
                let wait = match next_due {
                    Some(due) => self.queue.recv_deadline(due.min(now + ABORT_POLL)),
                    None => self
                        .queue
                        .recv()
                        .map_err(|_| RecvTimeoutError::Disconnected),
                };
                match wait {
                    Ok(item) => item,
                    Err(RecvTimeoutError::Timeout) => continue,
                    // `finish` closed the queue and it is drained; what is parked is
                    // still tried until it is done or abort.
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        continue;
                    }
                }
            } else {
                match next_due {
                    Some(due) => {
                        if !self
                            .shared
                            .ctx
                            .abort
                            .sleep(due.saturating_duration_since(now))
                        {
                            return;
                        }
                        continue;
                    }
                    None if !open => return,
                    // Nothing parked means nothing held: there is room.
                    None => continue,
                }
            };
            if self.shared.ctx.abort.is_raised() {
                return;
            }
            if self.blocked.contains_key(&first.key) {
                self.waiting.push_back(first);
                continue;
            }
            let batch = self.gather(first);
            if !self.send_new(batch) {
                return;
            }
        }
    }

    fn held_count(&self) -> usize {
        self.held.len()
            + self.waiting.len()
            + self.parked.iter().map(|p| p.batch.len()).sum::<usize>()
    }

    /// The parked request due first, if it is due by `now`.
    fn due_index(&self, now: Instant) -> Option<usize> {
        let (i, p) = self.parked.iter().enumerate().min_by_key(|(_, p)| p.due)?;
        (p.due <= now).then_some(i)
    }

    /// With `batch_size` > 1: `first` and what follows it of the same task, up to
    /// `batch_size`, until `batch_timeout` has passed since `first` was queued (SPEC 2).
    /// Deliveries of other tasks are set aside in `held` (at most `batch_size` of them;
    /// then the batch goes as it is), those of a blocked key in `waiting`.
    fn gather(&mut self, first: Item) -> Vec<Item> {
        let dc = &self.shared.ctx.config.dispatcher;
        let mut batch = vec![first];
        if dc.batch_size <= 1 {
            return batch;
        }
        let task = batch[0].delivery.task;
        // What was set aside earlier comes before the queue.
        let mut rest = VecDeque::with_capacity(self.held.len());
        while let Some(item) = self.held.pop_front() {
            if item.delivery.task != task || batch.len() >= dc.batch_size {
                rest.push_back(item);
            } else if self.blocked.contains_key(&item.key) {
                self.waiting.push_back(item);
            } else {
                batch.push(item);
            }
        }
        self.held = rest;
        let deadline = batch[0].queued + dc.batch_timeout;
        while batch.len() < dc.batch_size && self.held.len() < dc.batch_size {
            // Take what is already queued without a clock read; wait only when empty.
            let next = match self.queue.try_recv() {
                Ok(item) => item,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match self.queue.recv_deadline(deadline) {
                    Ok(item) => item,
                    Err(_) => break,
                },
            };
            if self.blocked.contains_key(&next.key) {
                self.waiting.push_back(next);
            } else if next.delivery.task != task {
                self.held.push_back(next);
            } else {
                batch.push(next);
            }
        }
        batch
    }

    /// First attempt of a new request; parks it when it is to be tried again.
    /// False on abort.
    fn send_new(&mut self, batch: Vec<Item>) -> bool {
        let dc = &self.shared.ctx.config.dispatcher;
        let target = &self.shared.targets[batch[0].delivery.task];
        let body = encode(&batch, target, dc.batch_size > 1);
        // Row data only at debug (the README's promise); the macro skips the formatting
        // at other levels.
        log::debug!(
            "task {}: sending event {}{}: {}",
            target.task_id,
            batch[0].delivery.change.id,
            more(batch.len()),
            String::from_utf8_lossy(&body)
        );
        let mut backoff = Backoff::new(dc.retry_base_delay, dc.retry_max_delay);
        match self.attempt(&batch, &body, 1, &mut backoff) {
            Step::Done => true,
            Step::Aborted => false,
            step @ (Step::Again(_) | Step::Wait(_)) => {
                let (delay, attempts) = match step {
                    Step::Wait(delay) => (delay, 0),
                    Step::Again(delay) => (delay, 1),
                    _ => (Duration::ZERO, 1),
                };
                self.park(Parked {
                    batch,
                    body,
                    attempts,
                    backoff,
                    due: Instant::now() + delay,
                });
                true
            }
        }
    }

    /// The next attempt of a parked request; when it is done, the deliveries that
    /// waited for its keys go next. False on abort.
    fn retry(&mut self, mut p: Parked) -> bool {
        p.attempts = p.attempts.saturating_add(1);
        match self.attempt(&p.batch, &p.body, p.attempts, &mut p.backoff) {
            Step::Aborted => false,
            Step::Again(delay) => {
                p.due = Instant::now() + delay;
                self.parked.push(p);
                true
            }
            Step::Wait(delay) => {
                p.attempts = p.attempts.saturating_sub(1);
                p.due = Instant::now() + delay;
                self.parked.push(p);
                true
            }
            Step::Done => {
                for item in &p.batch {
                    if let Some(n) = self.blocked.get_mut(&item.key) {
                        *n -= 1;
                        if *n == 0 {
                            self.blocked.remove(&item.key);
                        }
                    }
                }
                self.release_waiting()
            }
        }
    }

    fn park(&mut self, p: Parked) {
        for item in &p.batch {
            *self.blocked.entry(item.key).or_insert(0) += 1;
        }
        self.parked.push(p);
    }

    /// Sends, in order, the waiting deliveries whose key is no longer blocked; one
    /// that fails again blocks its key for the ones behind it. False on abort.
    fn release_waiting(&mut self) -> bool {
        let mut still = VecDeque::with_capacity(self.waiting.len());
        while let Some(item) = self.waiting.pop_front() {
            if self.blocked.contains_key(&item.key) {
                still.push_back(item);
            } else if !self.send_new(vec![item]) {
                return false;
            }
        }
        self.waiting = still;
        true
    }

    /// One attempt of one request: delivered, dead-lettered, or when to try again.
    fn attempt(
        &mut self,
        batch: &[Item],
        body: &[u8],
        attempts: u32,
        backoff: &mut Backoff,
    ) -> Step {
        let ctx = &self.shared.ctx;
        let dc = &ctx.config.dispatcher;
        let task = batch[0].delivery.task;
        let target = &self.shared.targets[task];
        let event_id = batch[0].delivery.change.id.as_str();
        // Its host answered 429 a moment ago: set aside like a retry, so that this
        // worker goes on with the other hosts' deliveries meanwhile.
        if let Some(wait) = self.shared.host_limit.paused_for(&target.host) {
            return Step::Wait(wait);
        }
        // The task's own limits first, then at most `max_connections` requests to one
        // host at once; a worker over a limit waits here, which keeps its keys in order.
        let Some((task_permit, waited)) = self.shared.task_limits[task].acquire(&ctx.abort) else {
            return Step::Aborted;
        };
        if !waited.is_zero() {
            ctx.stats.limit_waited(task, waited);
        }
        let Some(permit) = self.shared.host_limit.acquire(&target.host, &ctx.abort) else {
            return Step::Aborted;
        };
        if ctx.fence.as_ref().is_some_and(|f| !f.holds()) {
            // The lease may be another instance's by now: send nothing more.
            ctx.abort.raise();
            return Step::Aborted;
        }
        let attempt = post(target, event_id, body);
        drop(permit);
        drop(task_permit);
        ctx.stats.request(task, status_class(attempt.status));
        match attempt.verdict {
            Verdict::Delivered => {
                self.delivered(batch);
                Step::Done
            }
            Verdict::Fail => match self.dead_letter(batch, body, attempt, attempts) {
                Ending::Aborted => Step::Aborted,
                _ => Step::Done,
            },
            Verdict::Retry => {
                if dc.max_retries.is_some_and(|max| attempts > max) {
                    return match self.dead_letter(batch, body, attempt, attempts) {
                        Ending::Aborted => Step::Aborted,
                        _ => Step::Done,
                    };
                }
                if ctx.abort.is_raised() {
                    return Step::Aborted;
                }
                let delay = match attempt.retry_after {
                    Some(asked) => backoff.honour(asked),
                    None => backoff.next_delay(&mut self.rng),
                };
                // A 429 is the endpoint asking us to slow down: every request to that
                // host waits, not only this key's retry.
                if attempt.status == Some(429) {
                    self.shared.host_limit.pause(&target.host, delay);
                }
                ctx.stats.retry(task);
                // Warn on attempts 1, 2, 4, 8 …: a receiver that stays down is
                // reported without a line per retry per worker.
                let level = if attempts.is_power_of_two() {
                    log::Level::Warn
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "task {}: event {}{}: attempt {attempts} failed ({}); retrying in {:.1?}",
                    target.task_id,
                    event_id,
                    more(batch.len()),
                    attempt.error,
                    delay
                );
                if !attempt.answer.is_empty() {
                    log::debug!(
                        "task {}: the receiver answered {:?}",
                        target.task_id,
                        attempt.answer
                    );
                }
                Step::Again(delay)
            }
        }
    }

    fn delivered(&self, batch: &[Item]) {
        let ctx = &self.shared.ctx;
        let now = Instant::now();
        ctx.stats.delivered(
            batch[0].delivery.task,
            batch.iter().map(|item| {
                (
                    item.delivery.change.kind,
                    now.saturating_duration_since(item.queued),
                )
            }),
        );
        ctx.tracker.complete(&seqs(batch));
        self.shared.keys_complete(batch.iter().map(|i| &i.key));
    }

    /// Writes the request to the dead-letter file, then completes its events. Until the
    /// letter is on disk the events stay incomplete; a failing disk is retried with
    /// backoff (the queues fill and reading pauses) until it works or abort.
    fn dead_letter(&mut self, batch: &[Item], body: &[u8], last: Attempt, attempts: u32) -> Ending {
        let ctx = &self.shared.ctx;
        let task = batch[0].delivery.task;
        let target = &self.shared.targets[task];
        let letter = DeadLetter {
            task_id: target.task_id.clone(),
            ids: batch.iter().map(|i| i.delivery.change.id.clone()).collect(),
            url: target.url_text.clone(),
            body: serde_json::from_slice(body).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
            }),
            status: last.status,
            error: last.full_error(),
            attempts,
            failed_at: rfc3339_utc(unix_now()),
        };
        log::warn!(
            "task {}: event {}{} failed after {attempts} attempt(s) ({}); writing it to {}",
            target.task_id,
            letter.ids[0],
            more(batch.len()),
            last.error,
            ctx.dead_letters.path().display()
        );
        log::debug!(
            "task {}: dead-lettered request: answer {:?}, body {}",
            target.task_id,
            last.answer,
            String::from_utf8_lossy(body)
        );
        let dc = &ctx.config.dispatcher;
        let mut backoff = Backoff::new(dc.retry_base_delay, dc.retry_max_delay);
        while let Err(e) = ctx.dead_letters.write(&letter) {
            log::error!(
                "task {}: {e}; event {}{} stays unacknowledged, trying again",
                target.task_id,
                letter.ids[0],
                more(batch.len())
            );
            if !ctx.abort.sleep(backoff.next_delay(&mut self.rng)) {
                return Ending::Aborted;
            }
        }
        ctx.stats.dead_lettered(task, batch.len() as u64);
        ctx.tracker.complete(&seqs(batch));
        self.shared.keys_complete(batch.iter().map(|i| &i.key));
        Ending::DeadLettered
    }
}

/// One POST: headers, signature for this attempt's timestamp, the body; reads the
/// whole answer so the connection goes back to the pool.
pub(super) fn post(target: &Target, event_id: &str, body: &[u8]) -> Attempt {
    let mut request = target
        .agent
        .post(target.url.clone())
        .header("X-Pikachu-Event-Id", event_id)
        .header("X-Pikachu-Task-Id", target.task_id.as_str());
    if target.default_content_type {
        request = request.header("Content-Type", "application/json");
    }
    if let Some(key) = &target.key {
        let timestamp = unix_now();
        request = request
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", key.sign(event_id, timestamp, body));
    }
    for (name, value) in &target.headers {
        request = request.header(name.clone(), value.clone());
    }
    match request.send(body) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let verdict = status_verdict(status);
            let retry_after = response
                .headers()
                .get(ureq::http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let snippet = drain(response.body_mut(), verdict != Verdict::Delivered);
            let mut error = String::new();
            if verdict != Verdict::Delivered {
                error = format!("HTTP {status}");
                if let Some(reason) = response.status().canonical_reason() {
                    error.push(' ');
                    error.push_str(reason);
                }
            }
            Attempt {
                verdict,
                status: Some(status),
                error,
                answer: snippet,
                retry_after,
            }
        }
        Err(e) => Attempt {
            verdict: error_verdict(&e),
            status: None,
            error: e.to_string(),
            answer: String::new(),
            retry_after: None,
        },
    }
}

/// The body: one envelope, or with batching on an array (also of one), so that a
/// receiver sees one shape per configuration.
fn encode(batch: &[Item], target: &Target, as_array: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(512 * batch.len());
    if as_array {
        crate::encode::write_batch(
            &mut body,
            &target.task_id,
            batch
                .iter()
                .map(|i| (&*i.delivery.change, i.delivery.txn.as_ref())),
            &target.form,
        );
    } else {
        crate::encode::write_envelope(
            &mut body,
            &target.task_id,
            &batch[0].delivery.change,
            &target.form,
            batch[0].delivery.txn.as_ref(),
        );
    }
    body
}

fn seqs(batch: &[Item]) -> Vec<u64> {
    batch.iter().map(|i| i.delivery.seq).collect()
}

/// " (+N more)" for a batch, nothing for a single event.
fn more(len: usize) -> String {
    if len > 1 {
        format!(" (+{} more)", len - 1)
    } else {
        String::new()
    }
}

/// Reads the response body to its end (so the connection can be reused); returns its
/// start as one line of text when `keep` (for the error of a failed request).
/// A body larger than `MAX_RESPONSE_BODY` or unreadable is abandoned: that connection
/// is then closed instead of pooled, which is all it costs.
fn drain(body: &mut ureq::Body, keep: bool) -> String {
    let mut reader = body.with_config().limit(MAX_RESPONSE_BODY).reader();
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if keep && kept.len() < ERROR_SNIPPET * 4 {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&kept);
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_SNIPPET)
        .collect();
    line.trim().to_owned()
}
