//! The change event: one row change of a watched table, with where it sits in the binlog.
//!
//! Plain data shared by the reader (which builds it) and the workers (which encode and
//! deliver it). Nothing here does I/O or knows about tasks, HTTP or MySQL connections.

use std::fmt;
use std::sync::Arc;

/// A place in the binlog: file name and byte offset within it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
}

impl BinlogPosition {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            pos,
        }
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
    /// A row delivered by a backfill (`"event": "read"`).
    Read,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 3] = [ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
            ChangeKind::Read => "read",
        }
    }

    /// Index into per-kind counter arrays. Backfilled rows count as inserts there (they
    /// are rows that exist); the backfill's own counters tell them apart.
    pub fn index(self) -> usize {
        match self {
            ChangeKind::Read => ChangeKind::Insert as usize,
            k => k as usize,
        }
    }
}

/// One column value, already in the shape the SPEC's JSON wants (section 3).
///
/// The decoder does the type-specific formatting (dates, DECIMAL scale, ENUM labels …);
/// the encoder only maps these variants onto JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f32),
    Double(f64),
    /// Any value that is a JSON string: text, DECIMAL, temporal types, ENUM, SET.
    Text(String),
    /// Raw bytes, sent as standard base64 (BINARY, BLOB, GEOMETRY, binary-charset text).
    Bytes(Vec<u8>),
    /// A MySQL JSON column: the JSON value itself.
    Json(serde_json::Value),
}

/// A row image: one slot per table column, in column order. `None` means the column
/// was not in the image the server sent (`binlog_row_image=MINIMAL`/`NOBLOB`).
pub type RowImage = Vec<Option<Value>>;

/// What we know of a table at the time of a row event.
#[derive(Debug, PartialEq)]
pub struct TableSchema {
    pub database: String,
    pub table: String,
    /// Column names in table order.
    pub columns: Vec<String>,
    /// Indexes into `columns` of the primary key, in key order; empty without one.
    pub primary_key: Vec<usize>,
}

/// One row change as read from the binlog.
#[derive(Debug)]
pub struct RowChange {
    pub kind: ChangeKind,
    pub table: Arc<TableSchema>,
    /// Update: the old row. Delete: the deleted row. Insert: `None`.
    pub before: Option<RowImage>,
    /// Insert: the new row. Update: the new row. Delete: `None`.
    pub after: Option<RowImage>,
    /// Stable id `<file>:<pos>:<row index>`: the same change always gets the same id.
    pub id: String,
    /// Position of the rows event that carries this change.
    pub position: BinlogPosition,
    /// Commit time recorded in the binlog, unix seconds.
    pub timestamp: u32,
    /// GTID of the transaction (`domain-server-seq` on MariaDB, `uuid:n` on MySQL).
    pub gtid: Option<Arc<str>>,
    /// The same rows in the Go tool's value shapes, for tasks with `values: go`;
    /// `None` when no such task watches the table (or the change did not come from the
    /// binlog).
    pub go: Option<Box<GoRow>>,
}

/// A change's row images as go-mysql decoded them (`values: go`): ENUM and SET as
/// their integers, text and BLOB as their raw bytes, TIMESTAMP in local time, …
#[derive(Debug, Clone, PartialEq)]
pub struct GoRow {
    pub before: Option<RowImage>,
    pub after: Option<RowImage>,
    /// When the reader processed the change (the Go tool's `time.Now()` for the
    /// `timestamp` field): unix seconds and nanoseconds.
    pub processed_at: (i64, u32),
}

impl RowChange {
    /// The row that identifies the change: the new row, or the old one for a delete.
    pub fn key_image(&self) -> Option<&RowImage> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// True when an update changes the primary key: such an update must not be
    /// overtaken by later changes of either key.
    pub fn changes_primary_key(&self) -> bool {
        match (&self.before, &self.after) {
            // A key column absent from the new image (MINIMAL row image) is unchanged.
            (Some(b), Some(a)) => self.table.primary_key.iter().any(|&i| {
                matches!((b.get(i), a.get(i)), (Some(Some(old)), Some(Some(new))) if old != new)
            }),
            _ => false,
        }
    }
}

/// What the reader sends down the channel: one change for one task, numbered.
#[derive(Debug)]
pub struct Delivery {
    /// Sequence number from the checkpoint tracker; completes exactly once.
    pub seq: u64,
    /// Index of the task in `Config::tasks`.
    pub task: usize,
    pub change: Arc<RowChange>,
    /// For a task with `txn: true`: where the change stands in its transaction.
    pub txn: Option<TxnMeta>,
}

/// A change's place in its transaction, as one task sees it (`txn: true`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    /// The transaction's GTID, or `file:pos` of its start without one.
    pub id: Arc<str>,
    /// The change's index among the task's changes of the transaction, from 0.
    pub seq: u32,
    /// Whether it is the task's last change of the transaction.
    pub last: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(pk: Vec<usize>, before: RowImage, after: RowImage) -> RowChange {
        RowChange {
            kind: ChangeKind::Update,
            table: Arc::new(TableSchema {
                database: "d".into(),
                table: "t".into(),
                columns: vec!["a".into(), "b".into()],
                primary_key: pk,
            }),
            before: Some(before),
            after: Some(after),
            id: "f:4:0".into(),
            position: BinlogPosition::new("f", 4),
            timestamp: 0,
            gtid: None,
            go: None,
        }
    }

    #[test]
    fn primary_key_change_is_detected() {
        let c = change(
            vec![0],
            vec![Some(Value::Int(1)), Some(Value::Int(5))],
            vec![Some(Value::Int(2)), Some(Value::Int(5))],
        );
        assert!(c.changes_primary_key());
        let same = change(
            vec![0],
            vec![Some(Value::Int(1)), Some(Value::Int(5))],
            vec![Some(Value::Int(1)), Some(Value::Int(6))],
        );
        assert!(!same.changes_primary_key());
    }

    #[test]
    fn key_absent_from_minimal_after_image_is_unchanged() {
        let c = change(
            vec![0],
            vec![Some(Value::Int(1)), None],
            vec![None, Some(Value::Int(6))],
        );
        assert!(!c.changes_primary_key());
        let no_key = change(vec![], vec![Some(Value::Int(1))], vec![Some(Value::Int(2))]);
        assert!(!no_key.changes_primary_key());
    }
}
