//! How `pikachu backfill` reaches the running daemon: a request file in
//! `data_dir/backfill-requests/` (written atomically, read and removed by the daemon
//! within a second), and `data_dir/backfill-status.json`, which the daemon rewrites
//! every second while backfills exist. Only who may write `data_dir` (0700) can ask.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub task: String,
    /// A SQL condition limiting the rows (`--where`).
    #[serde(default, rename = "where")]
    pub condition: Option<String>,
    #[serde(default)]
    pub cancel: bool,
}

pub fn requests_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backfill-requests")
}

pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("backfill-status.json")
}

/// Leaves a request for the daemon; returns the file written.
pub fn submit(data_dir: &Path, request: &Request) -> std::io::Result<PathBuf> {
    let dir = requests_dir(data_dir);
    crate::fsutil::create_private_dir(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let path = dir.join(format!("{nanos:024}-{}.json", std::process::id()));
    let text = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    crate::fsutil::replace_file(&path, &text).map_err(|(_, e)| e)?;
    Ok(path)
}

/// The requests waiting in `dir` (`requests_dir`), oldest first; each is removed as it
/// is taken. A file that is not a request is removed with a warning.
pub fn take(dir: &Path) -> Vec<Request> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let parsed = std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Request>(&b).map_err(|e| e.to_string()));
        let _ = std::fs::remove_file(&p);
        match parsed {
            Ok(r) => out.push(r),
            Err(e) => log::warn!("ignoring the backfill request {}: {e}", p.display()),
        }
    }
    out
}
