//! The checkpoint: the binlog position up to which every event of every task is
//! delivered or dead-lettered (a low-water mark across workers), and its atomic file.
//!
//! The reader numbers events and marks transaction ends; workers complete numbers.
//! This module never reads the binlog and never sends anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::BinlogPosition;

/// Where to resume: a transaction boundary, with the GTID state where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub file: String,
    pub pos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl Checkpoint {
    pub fn position(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.pos)
    }
}

#[derive(Debug)]
pub enum CheckpointError {
    Read { path: PathBuf, error: std::io::Error },
    Parse { path: PathBuf, error: String },
    Write { path: PathBuf, error: std::io::Error },
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Read { path, error } => {
                write!(f, "cannot read checkpoint {}: {error}", path.display())
            }
            CheckpointError::Parse { path, error } => write!(
                f,
                "checkpoint {} is not valid ({error}); move it away to start from `start_from`",
                path.display()
            ),
            CheckpointError::Write { path, error } => {
                write!(f, "cannot write checkpoint {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for CheckpointError {}

pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("checkpoint.json")
}

/// Reads the checkpoint file; `Ok(None)` when there is none yet.
pub fn load(data_dir: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let _ = data_dir;
    todo!("checkpoint::load")
}

/// Writes the checkpoint atomically: temp file, fsync, rename, fsync of the directory.
pub fn save(data_dir: &Path, cp: &Checkpoint) -> Result<(), CheckpointError> {
    let _ = (data_dir, cp);
    todo!("checkpoint::save")
}

/// Low-water-mark tracker shared by the reader (numbers events, marks commits) and the
/// workers (complete numbers). Thread-safe; memory bounded by the events in flight.
pub struct Tracker {}

impl Tracker {
    /// `start`: the position reading starts from (already safe).
    pub fn new(start: Checkpoint) -> Tracker {
        let _ = start;
        todo!("Tracker::new")
    }

    /// Reader: the sequence number of the next event it will send.
    pub fn begin(&self) -> u64 {
        todo!()
    }

    /// Reader: a transaction ended at `at` (the position after it); every number handed
    /// out so far belongs to it or to earlier transactions.
    pub fn commit(&self, at: Checkpoint) {
        let _ = at;
        todo!()
    }

    /// Workers: these events are delivered or dead-lettered.
    pub fn complete(&self, seqs: &[u64]) {
        let _ = seqs;
        todo!()
    }

    /// The latest transaction boundary before which every event is complete.
    pub fn safe_point(&self) -> Checkpoint {
        todo!()
    }

    /// Blocks until every event numbered below `seq` is complete, or `timeout` passes.
    /// Returns true when they are.
    pub fn wait_below(&self, seq: u64, timeout: Duration) -> bool {
        let _ = (seq, timeout);
        todo!()
    }

    /// Events handed out and not yet complete.
    pub fn outstanding(&self) -> u64 {
        todo!()
    }
}
