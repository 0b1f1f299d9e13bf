//! The checkpoint: the binlog position up to which every event of every task is
//! delivered or dead-lettered (a low-water mark across workers), and its atomic file.
//!
//! The dispatcher (as the reader's sink) numbers events and marks transaction ends;
//! workers complete numbers; the flusher thread saves the safe point and owns
//! `CheckpointStats`. This module never reads the binlog and never sends anything.
//! The safe point never passes an event that is not complete, so a restart from the
//! file can repeat events but never skip one.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::clock::{rfc3339_utc, unix_now};
use crate::event::BinlogPosition;
use crate::fsutil::replace_file;
use crate::shutdown::{Fence, Signal};
use crate::stats::CheckpointStats;

/// Where to resume: a transaction boundary, with the GTID state where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub file: String,
    pub pos: u64,
    /// MariaDB: the GTID state (`domain-server-seq` per domain, comma-separated), with
    /// which another server of the replication topology can go on from here. MySQL: the
    /// last transaction's GTID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// `@@server_id` of the server whose binlog `file` and `pos` are in: on another
    /// server they mean nothing, and pikachu goes on by GTID instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<u32>,
    /// MySQL: every transaction executed up to here (`GtidSet` text), when known (read
    /// from the server at a `latest` start, or from a binlog file's PREVIOUS_GTIDS): with
    /// it pikachu goes on on another server by GTID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_set: Option<String>,
    /// Per task, how far its backfill is: saved with the position, so that the rows a
    /// backfill handed over count as delivered exactly when the position says so, and
    /// so that a standby of a group goes on with the active's backfills.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backfills: BTreeMap<String, BackfillProgress>,
}

/// One task's backfill in the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillProgress {
    /// Rows with a key up to this one were delivered; `None`: start at the first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyValue>>,
    #[serde(default)]
    pub done: bool,
    /// Rows delivered so far, across restarts.
    #[serde(default)]
    pub rows: u64,
    /// The `--where` condition of an on-demand backfill.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Ended by `pikachu backfill --cancel`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

/// One key column value, as a backfill's chunk query binds it again after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyValue {
    Int(i64),
    UInt(u64),
    /// Bytes as base64 (strings and binary keys).
    Bytes(String),
    /// Anything else (temporal, floating) as SQL text.
    Text(String),
}

impl Checkpoint {
    pub fn position(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.pos)
    }
}

/// A MySQL GTID set, as `@@gtid_executed` writes it (`uuid:1-5:7,uuid2:1-3`, with MySQL
/// 8.4 tags `uuid:1-5:tag:1-3`): per source uuid and tag, the transaction numbers
/// executed, as merged closed intervals. With it, another server of the topology knows
/// which transactions pikachu has already read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GtidSet(BTreeMap<(String, String), Vec<(u64, u64)>>);

impl GtidSet {
    /// `None` for text that is not a MySQL GTID set (a MariaDB state, garbage).
    pub fn parse(text: &str) -> Option<GtidSet> {
        let mut set = GtidSet::default();
        for group in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let mut parts = group.split(':');
            let uuid = parts.next()?.trim().to_ascii_lowercase();
            let hex = uuid.chars().filter(char::is_ascii_hexdigit).count();
            if uuid.len() != 36 || hex != 32 || uuid.chars().filter(|c| *c == '-').count() != 4 {
                return None;
            }
            let mut tag = String::new();
            let mut intervals = 0;
            for part in parts {
                if part.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
                    if a == 0 || b < a {
                        return None;
                    }
                    set.add_range(&uuid, &tag, a, b);
                    intervals += 1;
                } else if part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    tag = part.to_owned();
                } else {
                    return None;
                }
            }
            if intervals == 0 {
                return None;
            }
        }
        Some(set)
    }

    /// Transaction `gno` of source `uuid` (`tag` empty when untagged) was executed.
    pub fn add(&mut self, uuid: &str, tag: &str, gno: u64) {
        self.add_range(uuid, tag, gno, gno);
    }

    /// Transactions `first..=last` of `uuid`/`tag` were executed.
    pub fn add_range(&mut self, uuid: &str, tag: &str, first: u64, last: u64) {
        let ranges = self
            .0
            .entry((uuid.to_ascii_lowercase(), tag.to_owned()))
            .or_default();
        // The usual case: the next number of the last interval.
        if let Some(end) = ranges
            .last_mut()
            .filter(|r| r.0 <= first && first <= r.1 + 1)
        {
            end.1 = end.1.max(last);
            return;
        }
        ranges.push((first, last));
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(a, b) in ranges.iter() {
            match merged.last_mut() {
                Some(m) if a <= m.1.saturating_add(1) => m.1 = m.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        *ranges = merged;
    }

    /// Every transaction of `other` is in this set too.
    pub fn union(&mut self, other: &GtidSet) {
        for ((uuid, tag), ranges) in &other.0 {
            for &(a, b) in ranges {
                self.add_range(uuid, tag, a, b);
            }
        }
    }

    /// One `uuid[:tag]:a-b:…` per source and tag, as a GTID dump request names them.
    pub fn sids(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().map(|((uuid, tag), ranges)| {
            let mut text = uuid.clone();
            if !tag.is_empty() {
                text.push(':');
                text.push_str(tag);
            }
            write_ranges(&mut text, ranges);
            text
        })
    }
}

fn write_ranges(out: &mut String, ranges: &[(u64, u64)]) {
    use std::fmt::Write as _;
    for &(a, b) in ranges {
        let _ = if a == b {
            write!(out, ":{a}")
        } else {
            write!(out, ":{a}-{b}")
        };
    }
}

/// MySQL's form: a group per uuid, its untagged intervals first, then each tag's.
impl std::fmt::Display for GtidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last_uuid: Option<&str> = None;
        let mut text = String::new();
        for ((uuid, tag), ranges) in &self.0 {
            if last_uuid != Some(uuid.as_str()) {
                if last_uuid.is_some() {
                    text.push(',');
                }
                text.push_str(uuid);
                last_uuid = Some(uuid);
            }
            if !tag.is_empty() {
                text.push(':');
                text.push_str(tag);
            }
            write_ranges(&mut text, ranges);
        }
        f.write_str(&text)
    }
}

/// A MariaDB GTID state, `domain-server-seq[,…]`; `None` for anything else (a MySQL
/// GTID, or nothing).
pub fn parse_mariadb_gtid_state(text: &str) -> Option<std::collections::BTreeMap<u32, (u32, u64)>> {
    let mut domains = std::collections::BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut fields = part.split('-');
        let (Some(d), Some(s), Some(n), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        domains.insert(d.parse().ok()?, (s.parse().ok()?, n.parse().ok()?));
    }
    (!domains.is_empty()).then_some(domains)
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {}: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "checkpoint {} is not valid ({error}); move it away to start from `start_from`",
        path.display()
    )]
    Parse { path: PathBuf, error: String },
    #[error("cannot write checkpoint {}: {error}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The checkpoint table (`checkpoint.store: mysql`); the message names it and the fix.
    #[error("checkpoint table {table}: {message}")]
    Table { table: String, message: String },
}

pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoint.json")
}

/// The lock that keeps a second pikachu off the same `data_dir`.
pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join("pikachu.lock")
}

/// What in `data_dir` must stay private to pikachu's user (the dead letters hold whole
/// rows): the directory itself, the checkpoint, the dead letters and the lock.
pub fn private_paths(data_dir: &Path) -> Vec<PathBuf> {
    vec![
        data_dir.to_path_buf(),
        file_path(data_dir),
        crate::deadletter::file_path(data_dir),
        lock_path(data_dir),
    ]
}

/// The file's content: the checkpoint plus when it was written, for operators.
#[derive(Serialize)]
struct CheckpointFile<'a> {
    file: &'a str,
    pos: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    gtid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gtid_set: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    backfills: &'a BTreeMap<String, BackfillProgress>,
    saved_at: String,
}

/// Where the checkpoint lives: `data_dir/checkpoint.json` (`FileStore`), or a row in a
/// table shared by the instances of a group (`ha::MysqlStore`).
pub trait Store: Send + Sync {
    /// `Ok(None)` when there is none yet.
    fn load(&self) -> Result<Option<Checkpoint>, CheckpointError>;
    fn save(&self, cp: &Checkpoint) -> Result<(), CheckpointError>;
    /// For the log: `/var/lib/pikachu/checkpoint.json`, `pikachu.checkpoints (group g)`.
    fn describe(&self) -> String;
}

/// The checkpoint file in `data_dir`.
pub struct FileStore(pub PathBuf);

impl Store for FileStore {
    fn load(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        load(&self.0)
    }
    fn save(&self, cp: &Checkpoint) -> Result<(), CheckpointError> {
        save(&self.0, cp)
    }
    fn describe(&self) -> String {
        file_path(&self.0).display().to_string()
    }
}

/// Reads the checkpoint file; `Ok(None)` when there is none yet.
pub fn load(data_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let path = file_path(data_dir);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CheckpointError::Read { path, error }),
    };
    let parse_error = |error: String| CheckpointError::Parse {
        path: path.clone(),
        error,
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(parse_error("the file is empty".into()));
    }
    // Unknown fields (`saved_at`, later additions) are ignored on purpose.
    let cp: Checkpoint = serde_json::from_slice(&text).map_err(|e| parse_error(e.to_string()))?;
    // An empty file is a start by GTID not yet past its first transaction.
    if cp.file.is_empty() && cp.gtid.is_none() {
        return Err(parse_error("`file` is empty".into()));
    }
    Ok(Some(cp))
}

/// Writes the checkpoint atomically: temp file, fsync, rename, fsync of the directory.
pub fn save(data_dir: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    let path = file_path(data_dir);
    crate::fsutil::create_private_dir(data_dir).map_err(|error| CheckpointError::Write {
        path: data_dir.to_owned(),
        error,
    })?;
    let content = CheckpointFile {
        file: &cp.file,
        pos: cp.pos,
        gtid: cp.gtid.as_deref(),
        server_id: cp.server_id,
        gtid_set: cp.gtid_set.as_deref(),
        backfills: &cp.backfills,
        saved_at: rfc3339_utc(unix_now()),
    };
    let mut bytes = serde_json::to_vec_pretty(&content).map_err(|e| CheckpointError::Write {
        path: path.clone(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    bytes.push(b'\n');
    replace_file(&path, &bytes).map_err(|(path, error)| CheckpointError::Write { path, error })
}

/// Low-water-mark tracker shared by the dispatcher's `Sink` side (numbers events, marks
/// commits, on the reader's thread) and the workers (complete numbers). Thread-safe;
/// memory bounded by the events in flight.
///
/// Sequence numbers start at 0 and are handed out densely by `begin`. Completion is
/// kept as a bitmap window starting at the lowest incomplete number, so one completion
/// costs a bit set and (usually) a shift; commit marks are kept only while some event
/// before them is incomplete, and consecutive marks with no event between them are
/// merged into the later one.
pub struct Tracker {
    state: Mutex<State>,
    /// Notified whenever the low-water mark (`done_below`) moves.
    advanced: Condvar,
}

struct State {
    /// The number `begin` hands out next.
    next_seq: u64,
    /// Every number below this is complete; this one is not (or is `next_seq`).
    done_below: u64,
    /// Completion bits of the numbers from `base` on, 64 per word; `base` is a
    /// multiple of 64 and `base <= done_below < base + 64`.
    base: u64,
    window: VecDeque<u64>,
    /// Complete numbers at or above `done_below` (set bits in the window).
    ahead: u64,
    /// Transaction ends not yet safe, oldest first: `end` is `next_seq` at the commit,
    /// so the mark is safe once `done_below >= end`. Ends strictly increase.
    marks: VecDeque<Mark>,
    /// The latest mark that is safe.
    safe: Checkpoint,
    /// Backfill chunks handed to the sink, oldest first: (the boundary they follow,
    /// task id, last key, rows). Folded into `safe.backfills` once `safe` is past it.
    handed: VecDeque<(BinlogPosition, String, Option<Vec<KeyValue>>, u64)>,
}

struct Mark {
    end: u64,
    at: Checkpoint,
}

impl State {
    /// Records one completion; returns false for a number that is not outstanding
    /// (already complete or never handed out), which is a caller bug and ignored.
    fn mark_complete(&mut self, seq: u64) -> bool {
        if seq < self.done_below || seq >= self.next_seq {
            return false;
        }
        let offset = seq - self.base;
        let word = (offset / 64) as usize;
        let bit = 1u64 << (offset % 64);
        if self.window.len() <= word {
            self.window.resize(word + 1, 0);
        }
        if self.window[word] & bit != 0 {
            return false;
        }
        self.window[word] |= bit;
        self.ahead += 1;
        true
    }

    /// Moves `done_below` over every complete number; true when it moved.
    fn advance(&mut self) -> bool {
        let before = self.done_below;
        while let Some(&front) = self.window.front() {
            let offset = self.done_below - self.base;
            // Bits above the word are shifted in as zeros, so `run` stops at the word end.
            let run = u64::from((front >> offset).trailing_ones()).min(64 - offset);
            self.done_below += run;
            self.ahead -= run;
            if self.done_below - self.base == 64 {
                self.window.pop_front();
                self.base += 64;
            } else {
                break;
            }
        }
        if self.window.is_empty() {
            // Nothing beyond is complete: keep `base` aligned below `done_below`.
            self.base = self.done_below - self.done_below % 64;
        }
        let moved = self.done_below != before;
        if moved {
            while self.marks.front().is_some_and(|m| m.end <= self.done_below) {
                if let Some(mark) = self.marks.pop_front() {
                    self.set_safe(mark.at);
                }
            }
        }
        moved
    }

    /// `at` is safe. A source's marks carry no backfill progress: it is kept here, and
    /// the chunks handed over before `at` now count.
    fn set_safe(&mut self, at: Checkpoint) {
        let backfills = std::mem::take(&mut self.safe.backfills);
        self.safe = Checkpoint { backfills, ..at };
        self.fold_backfills();
    }

    /// Backfill chunks handed over before the safe point are delivered.
    fn fold_backfills(&mut self) {
        let safe = self.safe.position();
        while self.handed.front().is_some_and(|(at, ..)| *at < safe) {
            if let Some((_, task_id, key, rows)) = self.handed.pop_front() {
                let p = self.safe.backfills.entry(task_id).or_default();
                if key.is_some() {
                    p.after = key;
                }
                p.rows += rows;
            }
        }
    }
}

impl Tracker {
    /// `start`: the position reading starts from (already safe).
    pub fn new(start: Checkpoint) -> Tracker {
        Tracker {
            state: Mutex::new(State {
                next_seq: 0,
                done_below: 0,
                base: 0,
                window: VecDeque::new(),
                ahead: 0,
                marks: VecDeque::new(),
                safe: start,
                handed: VecDeque::new(),
            }),
            advanced: Condvar::new(),
        }
    }

    /// Sink (reader's thread): the sequence number of the next event it hands over.
    pub fn begin(&self) -> u64 {
        let mut s = self.state.lock();
        let seq = s.next_seq;
        s.next_seq += 1;
        seq
    }

    /// Sink (reader's thread): a transaction ended at `at` (the position after it); every number handed
    /// out so far belongs to it or to earlier transactions.
    pub fn commit(&self, at: Checkpoint) {
        let mut s = self.state.lock();
        let end = s.next_seq;
        if s.done_below >= end {
            // Everything handed out is complete (the usual case for transactions that
            // touch no watched table): the mark is safe at once.
            s.marks.clear();
            s.set_safe(at);
        } else if let Some(last) = s.marks.back_mut().filter(|m| m.end == end) {
            // No event since the previous mark: it can never be safe without this one
            // being safe too, so keep only the later position.
            last.at = at;
        } else {
            s.marks.push_back(Mark { end, at });
        }
    }

    /// Workers: these events are delivered or dead-lettered.
    pub fn complete(&self, seqs: &[u64]) {
        let mut s = self.state.lock();
        let mut bogus = None;
        for &seq in seqs {
            if !s.mark_complete(seq) {
                bogus = Some(seq);
            }
        }
        let moved = s.advance();
        drop(s);
        if moved {
            self.advanced.notify_all();
        }
        if let Some(seq) = bogus {
            // A bug elsewhere; ignoring it keeps the safe point correct.
            log::error!("checkpoint: event number {seq} completed twice or never handed out");
        }
    }

    /// The latest transaction boundary before which every event is complete.
    pub fn safe_point(&self) -> Checkpoint {
        self.state.lock().safe.clone()
    }

    /// Blocks until every event numbered below `seq` is complete, or `timeout` passes.
    /// Returns true when they are.
    pub fn wait_below(&self, seq: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock();
        while s.done_below < seq {
            if self.advanced.wait_until(&mut s, deadline).timed_out() {
                return s.done_below >= seq;
            }
        }
        true
    }

    /// Whether any task has a backfill in the checkpoint.
    pub fn any_backfill(&self) -> bool {
        !self.state.lock().safe.backfills.is_empty()
    }

    /// A task's backfill as far as the safe point: what a restart would go on from.
    pub fn backfill(&self, task_id: &str) -> Option<BackfillProgress> {
        self.state.lock().safe.backfills.get(task_id).cloned()
    }

    /// A task's backfill starts anew as `progress` (its chunks handed before are
    /// forgotten); saved with the next checkpoint.
    pub fn set_backfill(&self, task_id: &str, progress: BackfillProgress) {
        let mut s = self.state.lock();
        s.handed.retain(|(_, t, ..)| t != task_id);
        s.safe.backfills.insert(task_id.to_owned(), progress);
    }

    /// Backfill (the reader's thread): a chunk of `rows` rows ending at `key` was handed
    /// to the sink after boundary `at`; it counts once the safe point is past `at`.
    pub fn backfill_handed(
        &self,
        task_id: &str,
        at: BinlogPosition,
        key: Option<Vec<KeyValue>>,
        rows: u64,
    ) {
        let mut s = self.state.lock();
        s.handed.push_back((at, task_id.to_owned(), key, rows));
        s.fold_backfills();
    }

    /// Whether some chunk of the task's backfill is handed over but not yet behind the
    /// safe point.
    pub fn backfill_pending(&self, task_id: &str) -> bool {
        self.state
            .lock()
            .handed
            .iter()
            .any(|(_, t, ..)| t == task_id)
    }

    /// The task's backfill finished (every chunk behind the safe point) or was cancelled.
    pub fn end_backfill(&self, task_id: &str, cancelled: bool) {
        let mut s = self.state.lock();
        let p = s.safe.backfills.entry(task_id.to_owned()).or_default();
        p.done = true;
        p.cancelled = cancelled;
    }

    /// Events handed out and not yet complete.
    pub fn outstanding(&self) -> u64 {
        let s = self.state.lock();
        s.next_seq - s.done_below - s.ahead
    }
}

/// Starts the thread that saves the safe point: once at start, then every `interval`
/// when it changed, and a last time when `stop` is raised, after which it exits.
/// Raise `stop` only after the workers are finished, so the last save is the last word.
///
/// A failed save is counted (`checkpoint_failures`), logged with the path, and tried
/// again at the next interval; the process keeps delivering (a stale checkpoint only
/// means more repeats after a restart).
pub fn spawn_flusher(
    tracker: Arc<Tracker>,
    store: Arc<dyn Store>,
    fence: Option<Arc<Fence>>,
    interval: Duration,
    stats: Arc<CheckpointStats>,
    stop: Arc<Signal>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || {
            let mut saved: Option<Checkpoint> = None;
            loop {
                // Read `stop` before saving: a raise that comes later still gets a
                // final save of the point as it is then.
                let last = stop.is_raised();
                let cp = tracker.safe_point();
                // Once the lease may be another instance's, its checkpoint is not ours to
                // move (back) any more.
                let ours = fence.as_ref().is_none_or(|f| f.holds());
                if ours && saved.as_ref() != Some(&cp) && flush_once(store.as_ref(), &cp, &stats) {
                    saved = Some(cp);
                }
                if last {
                    return;
                }
                stop.sleep(interval);
            }
        })
}

/// Saves `cp` and records the outcome in `stats`; true when it was saved.
fn flush_once(store: &dyn Store, cp: &Checkpoint, stats: &CheckpointStats) -> bool {
    match store.save(cp) {
        Ok(()) => {
            stats.saved(&cp.file, cp.pos);
            true
        }
        Err(e) => {
            stats.failed();
            log::warn!("{e}; trying again at the next flush");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::tests::TempDir;

    fn cp(pos: u64) -> Checkpoint {
        Checkpoint {
            file: "mysql-bin.000001".into(),
            pos,
            gtid: None,
            server_id: None,
            gtid_set: None,
            backfills: Default::default(),
        }
    }

    #[test]
    fn mysql_gtid_sets_parse_grow_and_print_as_mysql_does() {
        let a = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let b = "55778904-0299-11f1-b1b8-4ef0c4956feb";
        let mut set =
            GtidSet::parse(&format!("{}:1-5:7,\n{b}:1-13:mytag:1-2", a.to_uppercase())).unwrap();
        assert_eq!(set.to_string(), format!("{a}:1-5:7,{b}:1-13:mytag:1-2"));
        set.add(a, "", 6);
        set.add(b, "mytag", 3);
        set.add(b, "other", 1);
        assert_eq!(
            set.to_string(),
            format!("{a}:1-7,{b}:1-13:mytag:1-3:other:1")
        );
        assert_eq!(
            set.sids().collect::<Vec<_>>(),
            [
                format!("{a}:1-7"),
                format!("{b}:1-13"),
                format!("{b}:mytag:1-3"),
                format!("{b}:other:1")
            ]
        );
        let mut other = GtidSet::parse(&format!("{a}:9-10:8")).unwrap();
        other.union(&set);
        assert_eq!(
            other.to_string(),
            format!("{a}:1-10,{b}:1-13:mytag:1-3:other:1")
        );
        assert_eq!(GtidSet::parse(""), Some(GtidSet::default()));
        for not_one in [
            "0-1-42",
            "x:1",
            a,
            &format!("{a}:0"),
            &format!("{a}:5-3"),
            &format!("{a}:Tag:1"),
        ] {
            assert_eq!(GtidSet::parse(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn mariadb_gtid_states_parse() {
        let state = parse_mariadb_gtid_state("0-1-42, 1-2-7").unwrap();
        assert_eq!(state.get(&0), Some(&(1, 42)));
        assert_eq!(state.get(&1), Some(&(2, 7)));
        for not_one in [
            "",
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:23",
            "0-1",
            "0-1-x",
        ] {
            assert_eq!(parse_mariadb_gtid_state(not_one), None, "{not_one}");
        }
    }

    #[test]
    fn safe_point_moves_only_over_complete_transactions() {
        let t = Tracker::new(cp(4));
        let a = t.begin();
        let b = t.begin();
        t.commit(cp(100));
        let c = t.begin();
        t.commit(cp(200));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(t.outstanding(), 3);

        // Out of order: the last event first, then the second one.
        t.complete(&[c]);
        assert_eq!(t.safe_point(), cp(4), "event 0 is still out");
        t.complete(&[b]);
        assert_eq!(t.safe_point(), cp(4));
        assert_eq!(t.outstanding(), 1);
        t.complete(&[a]);
        assert_eq!(t.safe_point(), cp(200));
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn safe_point_never_passes_a_hole() {
        let t = Tracker::new(cp(4));
        let mut seqs = Vec::new();
        for i in 0..1000u64 {
            seqs.push(t.begin());
            t.commit(cp(10 + i));
        }
        // Everything but event 500 completes.
        let rest: Vec<u64> = seqs.iter().copied().filter(|&s| s != 500).collect();
        t.complete(&rest);
        assert_eq!(
            t.safe_point(),
            cp(10 + 499),
            "stops at the end of the transaction before the hole"
        );
        assert_eq!(t.outstanding(), 1);
        assert!(!t.wait_below(501, Duration::from_millis(1)));
        assert!(t.wait_below(500, Duration::from_millis(1)));
        t.complete(&[500]);
        assert_eq!(t.safe_point(), cp(10 + 999));
    }

    #[test]
    fn marks_without_events_between_them_are_coalesced() {
        let t = Tracker::new(cp(4));
        let s = t.begin();
        // A million transactions that touch no watched table while event 0 is out.
        for pos in 0..1_000_000u64 {
            t.commit(cp(1000 + pos));
        }
        assert_eq!(
            t.state.lock().marks.len(),
            1,
            "one mark for the idle stretch"
        );
        assert_eq!(t.safe_point(), cp(4));
        t.complete(&[s]);
        assert_eq!(t.safe_point(), cp(1000 + 999_999));
        assert!(t.state.lock().marks.is_empty());

        // With nothing outstanding, commits are safe at once and keep no mark.
        t.commit(cp(5_000_000));
        assert_eq!(t.safe_point(), cp(5_000_000));
        assert!(t.state.lock().marks.is_empty());
    }

    #[test]
    fn an_event_of_an_open_transaction_holds_back_its_commit() {
        let t = Tracker::new(cp(4));
        let a = t.begin();
        t.complete(&[a]);
        // The transaction has not ended: nothing new is safe yet.
        assert_eq!(t.safe_point(), cp(4));
        t.commit(cp(50));
        assert_eq!(t.safe_point(), cp(50));
    }

    #[test]
    fn duplicate_and_unknown_completions_are_ignored() {
        let t = Tracker::new(cp(4));
        let a = t.begin();
        let b = t.begin();
        t.commit(cp(10));
        t.complete(&[b, b, 99]);
        assert_eq!(t.outstanding(), 1);
        assert_eq!(t.safe_point(), cp(4));
        t.complete(&[a, a]);
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.safe_point(), cp(10));
    }

    #[test]
    fn window_memory_follows_the_events_in_flight() {
        let t = Tracker::new(cp(4));
        for round in 0..100u64 {
            let seqs: Vec<u64> = (0..1000).map(|_| t.begin()).collect();
            t.commit(cp(round));
            let (evens, odds): (Vec<u64>, Vec<u64>) = seqs.iter().partition(|&&s| s % 2 == 0);
            t.complete(&odds);
            t.complete(&evens);
        }
        let s = t.state.lock();
        assert_eq!(s.done_below, 100_000);
        assert!(s.window.len() <= 1, "window: {} words", s.window.len());
        assert!(s.marks.is_empty());
        assert_eq!(s.safe, cp(99));
    }

    #[test]
    fn concurrent_completion_from_many_threads() {
        let t = Arc::new(Tracker::new(cp(4)));
        const N: u64 = 200_000;
        const THREADS: u64 = 8;
        let (tx, rx): (Vec<_>, Vec<_>) = (0..THREADS)
            .map(|_| crossbeam_channel::bounded::<u64>(1024))
            .unzip();
        let workers: Vec<_> = rx
            .into_iter()
            .map(|rx| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let mut batch = Vec::new();
                    for seq in rx {
                        batch.push(seq);
                        if batch.len() == 7 {
                            t.complete(&batch);
                            batch.clear();
                        }
                    }
                    t.complete(&batch);
                })
            })
            .collect();
        for i in 0..N {
            let seq = t.begin();
            tx[(seq * 2654435761 % THREADS) as usize].send(seq).unwrap();
            if i % 3 == 2 {
                t.commit(cp(1000 + i));
                // The safe point only ever names a committed position whose events
                // are all complete.
                let safe = t.safe_point();
                assert!(safe.pos <= 1000 + i);
            }
        }
        t.commit(cp(1000 + N));
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        assert!(t.wait_below(N, Duration::from_secs(10)));
        assert_eq!(t.outstanding(), 0);
        assert_eq!(t.safe_point(), cp(1000 + N));
    }

    #[test]
    fn wait_below_wakes_up_when_the_hole_fills() {
        let t = Arc::new(Tracker::new(cp(4)));
        let a = t.begin();
        let b = t.begin();
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || t2.wait_below(b + 1, Duration::from_secs(30)));
        t.complete(&[b]);
        std::thread::sleep(Duration::from_millis(20));
        t.complete(&[a]);
        assert!(waiter.join().unwrap());
        assert!(t.wait_below(0, Duration::ZERO));
    }

    /// A backfill chunk counts (its key and rows saved with the checkpoint) only once
    /// the safe point is past the boundary it was handed over after.
    #[test]
    fn backfill_progress_moves_with_the_safe_point() {
        let t = Tracker::new(cp(100));
        t.set_backfill("users", BackfillProgress::default());
        // A transaction with nothing outstanding is safe at once, progress kept.
        t.commit(cp(150));
        assert!(t.safe_point().backfills.contains_key("users"));
        let a = t.begin();
        t.commit(cp(200));
        // A chunk of 50 rows handed over at boundary 200, then delivered as event `b`.
        let b = t.begin();
        t.backfill_handed(
            "users",
            cp(200).position(),
            Some(vec![KeyValue::Int(50)]),
            50,
        );
        t.commit(cp(300));
        assert!(t.backfill_pending("users"));
        t.complete(&[a]);
        assert_eq!(t.safe_point().pos, 200);
        assert_eq!(
            t.safe_point().backfills["users"].rows,
            0,
            "not past 200 yet"
        );
        t.complete(&[b]);
        let safe = t.safe_point();
        assert_eq!(safe.pos, 300);
        assert_eq!(safe.backfills["users"].rows, 50);
        assert_eq!(safe.backfills["users"].after, Some(vec![KeyValue::Int(50)]));
        assert!(!t.backfill_pending("users"));
        t.end_backfill("users", false);
        assert!(t.safe_point().backfills["users"].done);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = TempDir::new("cp-roundtrip");
        let data_dir = dir.0.join("nested/data");
        assert_eq!(load(&data_dir).unwrap(), None, "no file yet");
        let first = Checkpoint {
            file: "mysql-bin.000003".into(),
            pos: 18825,
            gtid: Some("0-1-1077".into()),
            server_id: None,
            gtid_set: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:mytag:1-2".into()),
            backfills: [(
                "users".to_owned(),
                BackfillProgress {
                    after: Some(vec![KeyValue::Int(7), KeyValue::Bytes("YWI=".into())]),
                    rows: 1200,
                    condition: Some("v = 0".into()),
                    ..BackfillProgress::default()
                },
            )]
            .into(),
        };
        save(&data_dir, &first).expect("save creates the data directory");
        assert_eq!(load(&data_dir).unwrap(), Some(first));
        let second = cp(99);
        save(&data_dir, &second).unwrap();
        assert_eq!(load(&data_dir).unwrap(), Some(second));

        let text = std::fs::read_to_string(file_path(&data_dir)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["file"], "mysql-bin.000001");
        assert_eq!(json["pos"], 99);
        assert!(json.get("gtid").is_none());
        assert!(json["saved_at"].as_str().unwrap().ends_with('Z'));
        let names: Vec<_> = std::fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("checkpoint.json")],
            "no temp file left"
        );
    }

    #[test]
    fn a_corrupt_file_is_a_parse_error_that_says_what_to_do() {
        let dir = TempDir::new("cp-corrupt");
        std::fs::create_dir_all(&dir.0).unwrap();
        for content in ["", "{\"file\": \"mysql-bin.0000", "{\"pos\": 4}", "[1,2]"] {
            std::fs::write(file_path(&dir.0), content).unwrap();
            let err = load(&dir.0).expect_err(content);
            assert!(matches!(err, CheckpointError::Parse { .. }), "{err:?}");
            let shown = err.to_string();
            assert!(shown.contains("checkpoint.json"), "{shown}");
            assert!(shown.contains("move it away"), "{shown}");
        }
    }

    #[test]
    fn flusher_saves_changes_and_a_last_time_at_stop() {
        let dir = TempDir::new("cp-flusher");
        let tracker = Arc::new(Tracker::new(cp(4)));
        let stats = Arc::new(crate::stats::Stats::new(Vec::<String>::new(), 1));
        let stop = Arc::new(Signal::new());
        let handle = spawn_flusher(
            tracker.clone(),
            Arc::new(FileStore(dir.0.clone())),
            None,
            Duration::from_millis(10),
            stats.checkpoint.clone(),
            stop.clone(),
        )
        .expect("spawn the flusher");
        // The start point is saved right away, so a crash before the first event
        // resumes there and not at a newer "latest" position.
        let deadline = Instant::now() + Duration::from_secs(10);
        while load(&dir.0).ok().flatten() != Some(cp(4)) {
            assert!(Instant::now() < deadline, "start point never saved");
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = tracker.begin();
        tracker.commit(cp(500));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            load(&dir.0).unwrap(),
            Some(cp(4)),
            "event 0 is not complete"
        );
        tracker.complete(&[s]);
        tracker.commit(cp(600));
        stop.raise();
        handle.join().unwrap();
        assert_eq!(load(&dir.0).unwrap(), Some(cp(600)), "saved at stop");
        let d = crate::stats::Metrics::snapshot(&*stats);
        assert!(d.checkpoint_saves >= 2);
        assert_eq!(d.checkpoint_failures, 0);
        assert_eq!(
            (d.checkpoint_file.as_str(), d.checkpoint_pos),
            ("mysql-bin.000001", 600)
        );
    }

    #[test]
    fn flusher_counts_failures() {
        let dir = TempDir::new("cp-flusher-fail");
        std::fs::create_dir_all(&dir.0).unwrap();
        // `data_dir` is a file: nothing can be saved under it.
        let blocked = dir.0.join("not-a-dir");
        std::fs::write(&blocked, b"x").unwrap();
        let stats = Arc::new(crate::stats::Stats::new(Vec::<String>::new(), 1));
        let stop = Arc::new(Signal::new());
        stop.raise();
        spawn_flusher(
            Arc::new(Tracker::new(cp(4))),
            Arc::new(FileStore(blocked)),
            None,
            Duration::from_millis(10),
            stats.checkpoint.clone(),
            stop,
        )
        .expect("spawn the flusher")
        .join()
        .unwrap();
        let d = crate::stats::Metrics::snapshot(&*stats);
        assert_eq!((d.checkpoint_saves, d.checkpoint_failures), (0, 1));
    }
}
