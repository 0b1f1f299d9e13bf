//! The dead-letter file: requests that finally failed (and row events that could not be
//! decoded), one JSON object per line under `data_dir`, so that nothing is ever lost.
//!
//! Append-only and shared by the reader and the workers; it never retries anything.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of `dead-letters.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub task_id: String,
    /// Event ids in the request (one, or a batch's).
    pub ids: Vec<String>,
    pub url: String,
    /// The exact request body that failed (JSON object or array), or, for events that
    /// could not be decoded, what is known of them.
    pub body: serde_json::Value,
    /// Last HTTP status, if the receiver answered at all.
    pub status: Option<u16>,
    pub error: String,
    pub attempts: u32,
    /// RFC 3339 UTC time of the last attempt.
    pub failed_at: String,
}

pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dead-letters.jsonl")
}

/// Append-only writer; each `write` is flushed and fsynced before it returns.
pub struct DeadLetters {}

impl DeadLetters {
    pub fn open(data_dir: &Path) -> std::io::Result<DeadLetters> {
        let _ = data_dir;
        todo!()
    }

    pub fn write(&self, letter: &DeadLetter) -> std::io::Result<()> {
        let _ = letter;
        todo!()
    }
}
