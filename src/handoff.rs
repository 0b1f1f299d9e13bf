//! Where a backfill's chunks meet the binlog stream: the watermark hand-off.
//!
//! A backfill reads each chunk in a consistent snapshot whose exact binlog position `P`
//! it knows (`binlog_snapshot_file/position`). The chunk is the table as of `P`, so it
//! belongs in the stream exactly at `P`: the reader thread (the only one that hands
//! changes to the sink) delivers it at the first transaction boundary at or after `P`.
//! If the reader had already passed `P` when the chunk arrived, the changes it read
//! after `P` are newer than the chunk: their keys are recorded while a backfill is
//! active and the chunk's rows with such a key are dropped (the stream already carries
//! their newer state). README, "Backfill", has the whole argument.
//!
//! The reader hands chunks over at the boundaries it reaches. On a quiet server it may
//! wait a long time for its next event, so while it waits at a boundary the gate is
//! open at that position and the reader's hand-over thread delivers due chunks in its
//! place; while it handles an event the gate is shut.
//!
//! Plain data and mutexes; no I/O. The reader and the backfill thread know only this.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::event::{BinlogPosition, RowChange, Value};

/// Rows handed over, rows dropped, the boundary they follow.
pub type ChunkDone = Box<dyn FnOnce(usize, usize, &BinlogPosition) + Send>;

/// A chunk of backfilled rows, to be delivered at `at`.
pub struct Chunk {
    pub task: usize,
    pub at: BinlogPosition,
    /// The columns that identify a row: the key the backfill pages by (the primary key,
    /// else a unique key), or every column for a table with neither.
    pub key: Arc<[usize]>,
    pub rows: Vec<Arc<RowChange>>,
    /// Called by the reader after the chunk was handed to the sink, with the number
    /// of rows handed over and dropped, and the transaction boundary the rows follow:
    /// once the checkpoint is past it, the rows were delivered.
    pub done: ChunkDone,
}

#[derive(Default)]
struct Inner {
    /// Backfills running: while any is, the reader records changed keys.
    active: usize,
    pending: VecDeque<Chunk>,
    /// (task, change) of changes read while active, in stream order; the chunk's `key`
    /// says which of their columns identify a row.
    changed: Vec<(usize, Arc<RowChange>)>,
    /// Per task, the snapshot position of its latest chunk: a backfill's snapshots
    /// only move forward, so changes at or before it can never drop a row again.
    floor: std::collections::HashMap<usize, BinlogPosition>,
}

#[derive(Default)]
pub struct Handoff {
    inner: Mutex<Inner>,
    /// Signalled when a chunk was taken (room for the backfill thread) or queued (work
    /// for the hand-over thread), and when the reader stops.
    room: Condvar,
    gate: Mutex<Gate>,
}

/// Where the reader waits: at `open_at`, a transaction boundary up to which it has
/// handed everything to the sink; `None` while it handles an event.
#[derive(Default)]
pub struct Gate {
    open_at: Option<BinlogPosition>,
    /// The reader stopped: the hand-over thread ends.
    closed: bool,
}

impl Gate {
    /// The reader reached a boundary at `at` and waits for its next event.
    pub fn open(&mut self, at: BinlogPosition) {
        self.open_at = Some(at);
    }

    pub fn open_at(&self) -> Option<&BinlogPosition> {
        self.open_at.as_ref()
    }
}

/// How many chunks may wait for the reader: bounds a backfill's memory.
const MAX_PENDING: usize = 4;

/// The primary key of a row as comparable text: the same key read from a snapshot and
/// decoded from the binlog must compare equal whatever integer width was used.
pub fn key_text(table_pk: &[usize], row: &[Option<Value>]) -> String {
    let mut out = String::new();
    for &i in table_pk {
        match row.get(i) {
            Some(Some(Value::Int(v))) => out.push_str(&v.to_string()),
            Some(Some(Value::UInt(v))) => out.push_str(&v.to_string()),
            Some(Some(Value::Text(t))) => out.push_str(&format!("{t:?}")),
            Some(Some(Value::Bytes(b))) => out.push_str(&format!("{b:?}")),
            Some(Some(v)) => out.push_str(&format!("{v:?}")),
            Some(None) | None => out.push('?'),
        }
        out.push('\u{1f}');
    }
    out
}

impl Handoff {
    pub fn new() -> Arc<Handoff> {
        Arc::new(Handoff::default())
    }

    /// A backfill starts: from now on the reader records changed keys. Called before
    /// its first snapshot, so every change after any of its snapshot positions is
    /// recorded.
    pub fn begin(&self) {
        self.inner.lock().active += 1;
    }

    pub fn end(&self, task: usize) {
        let mut g = self.inner.lock();
        g.active = g.active.saturating_sub(1);
        if !g.pending.iter().any(|c| c.task == task) {
            g.floor.remove(&task);
        }
        if g.active == 0 && g.pending.is_empty() {
            g.changed.clear();
        }
    }

    /// Queues a chunk for the reader; waits while too many are queued. Returns false
    /// when `give_up` says to stop waiting.
    pub fn submit(&self, chunk: Chunk, give_up: &dyn Fn() -> bool) -> bool {
        let mut g = self.inner.lock();
        while g.pending.len() >= MAX_PENDING {
            if give_up() {
                return false;
            }
            self.room
                .wait_for(&mut g, std::time::Duration::from_millis(200));
        }
        g.floor.insert(chunk.task, chunk.at.clone());
        g.pending.push_back(chunk);
        self.room.notify_all();
        true
    }

    /// Reader: about to handle an event; shut until the guard is dropped (after the
    /// reader `open`ed it again at a boundary, or left it shut mid-transaction).
    pub fn shut(&self) -> MutexGuard<'_, Gate> {
        let mut g = self.gate.lock();
        g.open_at = None;
        g
    }

    /// Hand-over thread: the gate, once the reader is not handling an event.
    pub fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock()
    }

    /// Hand-over thread: nothing was due; waits up to `timeout` for a change (a chunk
    /// queued or taken, the reader stopping).
    pub fn pause(&self, timeout: std::time::Duration) {
        let mut g = self.inner.lock();
        self.room.wait_for(&mut g, timeout);
    }

    /// The reader stopped for good.
    pub fn close(&self) {
        self.gate.lock().closed = true;
        let _g = self.inner.lock();
        self.room.notify_all();
    }

    /// Hand-over thread: waits up to `timeout` for a queued chunk; false once the
    /// reader stopped.
    pub fn wait_for_chunk(&self, timeout: std::time::Duration) -> bool {
        if self.gate.lock().closed {
            return false;
        }
        let mut g = self.inner.lock();
        if g.pending.is_empty() {
            self.room.wait_for(&mut g, timeout);
        }
        true
    }

    /// Whether the reader must record changes now (a backfill runs or chunks wait).
    pub fn watching(&self) -> bool {
        let g = self.inner.lock();
        g.active > 0 || !g.pending.is_empty()
    }

    /// The reader read a change of `task` (before handing it to the sink).
    pub fn observe(&self, task: usize, change: &Arc<RowChange>) {
        let mut g = self.inner.lock();
        if g.active == 0 && g.pending.is_empty() {
            return;
        }
        g.changed.push((task, change.clone()));
    }

    /// The reader is at a transaction boundary `at`: takes the chunks due there, each
    /// with the rows to deliver (the others dropped). The caller hands them to the sink
    /// in order, then calls each chunk's `done`.
    pub fn due(&self, at: &BinlogPosition) -> Vec<(Chunk, usize)> {
        let mut g = self.inner.lock();
        if g.pending.is_empty() {
            if g.active == 0 {
                g.changed.clear();
            }
            return Vec::new();
        }
        let mut out = Vec::new();
        while g.pending.front().is_some_and(|c| c.at <= *at) {
            let Some(mut chunk) = g.pending.pop_front() else {
                break;
            };
            let before = chunk.rows.len();
            let task = chunk.task;
            let since = chunk.at.clone();
            // Old and new key of every change after the snapshot.
            let changed: std::collections::HashSet<String> = g
                .changed
                .iter()
                .filter(|(t, c)| *t == task && c.position > since)
                .flat_map(|(_, c)| [c.before.as_ref(), c.after.as_ref()])
                .flatten()
                .map(|image| key_text(&chunk.key, image))
                .collect();
            if !changed.is_empty() {
                let key = chunk.key.clone();
                chunk.rows.retain(|r| match r.after.as_ref() {
                    Some(img) => !changed.contains(&key_text(&key, img)),
                    None => true,
                });
            }
            let dropped = before - chunk.rows.len();
            out.push((chunk, dropped));
        }
        // Keys at or before the oldest snapshot a task can still hand over are done.
        let mut oldest = g.floor.clone();
        for c in &g.pending {
            if oldest.get(&c.task).is_none_or(|p| c.at < *p) {
                oldest.insert(c.task, c.at.clone());
            }
        }
        g.changed
            .retain(|(t, c)| oldest.get(t).is_none_or(|floor| c.position > *floor));
        self.room.notify_all();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ChangeKind, TableSchema};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn row(kind: ChangeKind, id: i64, v: i64, at: u64) -> Arc<RowChange> {
        let image = vec![Some(Value::Int(id)), Some(Value::Int(v))];
        Arc::new(RowChange {
            kind,
            table: Arc::new(TableSchema {
                database: "d".into(),
                table: "t".into(),
                columns: vec!["id".into(), "v".into()],
                primary_key: vec![0],
            }),
            before: (kind != ChangeKind::Insert && kind != ChangeKind::Read).then(|| image.clone()),
            after: (kind != ChangeKind::Delete).then_some(image),
            id: String::new(),
            position: BinlogPosition::new("b.000001", at),
            timestamp: 0,
            gtid: None,
            go: None,
        })
    }

    fn chunk(at: u64, ids: &[i64], done: Arc<AtomicUsize>) -> Chunk {
        Chunk {
            task: 0,
            at: BinlogPosition::new("b.000001", at),
            key: Arc::from([0usize]),
            rows: ids
                .iter()
                .map(|&i| row(ChangeKind::Read, i, 0, at))
                .collect(),
            done: Box::new(move |n, _, _| {
                done.fetch_add(n, Ordering::SeqCst);
            }),
        }
    }

    #[test]
    fn a_chunk_waits_for_its_position_then_goes_whole() {
        let h = Handoff::new();
        h.begin();
        let done = Arc::new(AtomicUsize::new(0));
        assert!(h.submit(chunk(500, &[1, 2, 3], done.clone()), &|| false));
        assert!(h.due(&BinlogPosition::new("b.000001", 400)).is_empty());
        // A change before the snapshot is in it: no reason to drop the row.
        h.observe(0, &row(ChangeKind::Update, 2, 9, 300));
        let due = h.due(&BinlogPosition::new("b.000001", 500));
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].0.rows.len(), due[0].1), (3, 0));
    }

    #[test]
    fn rows_changed_after_the_snapshot_are_dropped_when_the_reader_is_past_it() {
        let h = Handoff::new();
        h.begin();
        h.observe(0, &row(ChangeKind::Update, 2, 9, 600));
        h.observe(0, &row(ChangeKind::Delete, 3, 0, 650));
        // Another task's change of the same key does not count.
        h.observe(1, &row(ChangeKind::Update, 1, 9, 650));
        let done = Arc::new(AtomicUsize::new(0));
        assert!(h.submit(chunk(500, &[1, 2, 3], done), &|| false));
        // A later file is later whatever the offset.
        let due = h.due(&BinlogPosition::new("b.000002", 4));
        let ids: Vec<String> = due[0]
            .0
            .rows
            .iter()
            .map(|r| key_text(&[0], r.after.as_deref().unwrap_or_default()))
            .collect();
        assert_eq!(ids, vec![key_text(&[0], &[Some(Value::Int(1))])]);
        assert_eq!(due[0].1, 2);
    }

    #[test]
    fn integer_widths_give_the_same_key() {
        assert_eq!(
            key_text(&[0], &[Some(Value::Int(7))]),
            key_text(&[0], &[Some(Value::UInt(7))])
        );
    }
}
