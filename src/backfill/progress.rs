//! `backfill.json` in `data_dir`: per task, the last primary key whose chunk was
//! delivered (or dead-lettered), and whether the backfill finished. Replaced atomically
//! (`fsutil::replace_file`), so a kill -9 leaves the old or the new content.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One key column value as the chunk query binds it again after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyValue {
    Int(i64),
    UInt(u64),
    /// Bytes as base64 (strings and binary keys).
    Bytes(String),
    /// Anything else (temporal, floating) as SQL text.
    Text(String),
}

impl KeyValue {
    pub fn from_mysql(v: &mysql::Value) -> KeyValue {
        match v {
            mysql::Value::Int(i) => KeyValue::Int(*i),
            mysql::Value::UInt(u) => KeyValue::UInt(*u),
            mysql::Value::Bytes(b) => {
                KeyValue::Bytes(base64::engine::general_purpose::STANDARD.encode(b))
            }
            other => KeyValue::Text(other.as_sql(true).trim_matches('\'').to_owned()),
        }
    }

    pub fn to_mysql(&self) -> mysql::Value {
        match self {
            KeyValue::Int(i) => mysql::Value::Int(*i),
            KeyValue::UInt(u) => mysql::Value::UInt(*u),
            KeyValue::Bytes(b) => mysql::Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .unwrap_or_default(),
            ),
            KeyValue::Text(t) => mysql::Value::Bytes(t.clone().into_bytes()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskProgress {
    /// Rows with a key up to this one were delivered; `None`: start at the first row.
    pub after: Option<Vec<KeyValue>>,
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

#[derive(Debug, thiserror::Error)]
#[error("cannot save the backfill progress to {path}: {error}")]
pub struct ProgressError {
    path: PathBuf,
    #[source]
    error: std::io::Error,
}

pub struct ProgressFile {
    path: PathBuf,
    tasks: Mutex<BTreeMap<String, TaskProgress>>,
}

pub fn file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("backfill.json")
}

impl ProgressFile {
    /// Reads the file; a missing or unreadable one is empty (an unreadable one is
    /// warned about: its backfills start again, which only re-sends rows).
    pub fn open(data_dir: &Path) -> ProgressFile {
        let path = file_path(data_dir);
        let tasks = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warn!(
                    "ignoring {}: {e}; unfinished backfills start from the first row",
                    path.display()
                );
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        ProgressFile {
            path,
            tasks: Mutex::new(tasks),
        }
    }

    pub fn get(&self, task_id: &str) -> Option<TaskProgress> {
        self.tasks.lock().get(task_id).cloned()
    }

    pub fn set(&self, task_id: &str, progress: TaskProgress) -> Result<(), ProgressError> {
        let mut g = self.tasks.lock();
        g.insert(task_id.to_owned(), progress);
        let text = serde_json::to_vec_pretty(&*g).unwrap_or_default();
        crate::fsutil::replace_file(&self.path, &text)
            .map_err(|(path, error)| ProgressError { path, error })
    }
}
