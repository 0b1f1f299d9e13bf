//! The dead-letter file: requests that finally failed (and row events that could not be
//! decoded), one JSON object per line under `data_dir`, so that nothing is ever lost.
//!
//! Append-only and shared by the reader and the workers; it never retries anything.
//! A `write` returns only once the line is on disk (flushed and fsynced): callers may
//! acknowledge the events of a letter (complete their sequence numbers) only after it
//! returned `Ok`, so a crash in between delivers them again instead of losing them.
//!
//! `read_all` and `rewrite` serve the replay command; `rewrite` replaces the file and
//! must not run while a daemon appends to the same file (its lines would go to the
//! replaced file and be lost).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::fsutil::{replace_file, sync_dir};

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

/// Errors of the replay-side functions (`read_all`, `rewrite`).
// The messages repeat the source's text because callers log only the top level.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("cannot read dead-letter file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// A line is not a dead letter. `line` counts from 1.
    #[error(
        "dead-letter file {} line {line} is not a dead letter ({error}); an incomplete last \
         line left by a crash can be deleted (its events were not acknowledged and are \
         delivered again)",
        path.display()
    )]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        error: serde_json::Error,
    },
    #[error("cannot write dead-letter file {}: {error}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: io::Error,
    },
}

/// Append-only writer; each `write` is flushed and fsynced before it returns.
pub struct DeadLetters {
    path: PathBuf,
    file: Mutex<Appender>,
}

struct Appender {
    file: File,
    /// The file may end in the middle of a line (a failed write, or a crash during one):
    /// the next line starts with a newline so that it stays readable on its own.
    torn: bool,
}

impl DeadLetters {
    pub fn open(data_dir: &Path) -> io::Result<DeadLetters> {
        let path = file_path(data_dir);
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot open dead-letter file {}: {e}", path.display()),
            )
        };
        crate::fsutil::create_private_dir(data_dir).map_err(context)?;
        let existed = path.exists();
        let mut file = crate::fsutil::private(&mut OpenOptions::new())
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(context)?;
        let torn = ends_mid_line(&mut file).map_err(context)?;
        if !existed {
            // The new directory entry must survive a crash as much as the lines in it.
            sync_dir(data_dir).map_err(context)?;
        }
        Ok(DeadLetters {
            path,
            file: Mutex::new(Appender { file, torn }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and fsyncs it. On error nothing may be assumed written: the
    /// caller must not acknowledge the letter's events (it may try again; a retried line
    /// can then appear twice, which at-least-once allows).
    pub fn write(&self, letter: &DeadLetter) -> io::Result<()> {
        let mut line = Vec::with_capacity(256);
        line.push(b'\n');
        serde_json::to_writer(&mut line, letter)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        line.push(b'\n');

        let mut out = self.file.lock();
        let bytes = if out.torn { &line[..] } else { &line[1..] };
        let result = out.file.write_all(bytes).and_then(|()| {
            out.file.flush()?;
            out.file.sync_data()
        });
        match result {
            Ok(()) => {
                out.torn = false;
                Ok(())
            }
            Err(e) => {
                out.torn = true;
                Err(io::Error::new(
                    e.kind(),
                    format!(
                        "cannot append to dead-letter file {}: {e}",
                        self.path.display()
                    ),
                ))
            }
        }
    }
}

/// True when the file is not empty and its last byte is not a newline.
fn ends_mid_line(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Every letter in the file at `path`, in file order. A missing file holds none.
/// Blank lines are skipped; any other line that is not a dead letter is an error naming
/// its line number.
pub fn read_all(path: &Path) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(DeadLetterError::Read {
                path: path.to_owned(),
                error,
            })
        }
    };
    let mut letters = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let letter = serde_json::from_str(line).map_err(|e| DeadLetterError::Parse {
            path: path.to_owned(),
            line: i + 1,
            error: e,
        })?;
        letters.push(letter);
    }
    Ok(letters)
}

/// Replaces the file at `path` with exactly `letters`, atomically: a crash leaves either
/// the old file or the new one, never a mix. An empty slice leaves an empty file.
pub fn rewrite(path: &Path, letters: &[DeadLetter]) -> Result<(), DeadLetterError> {
    let mut content = Vec::with_capacity(letters.len() * 256);
    for letter in letters {
        serde_json::to_writer(&mut content, letter).map_err(|e| DeadLetterError::Write {
            path: path.to_owned(),
            error: io::Error::new(io::ErrorKind::InvalidData, e),
        })?;
        content.push(b'\n');
    }
    replace_file(path, &content).map_err(|(path, error)| DeadLetterError::Write { path, error })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;

    /// A fresh, empty directory under the system temp dir, removed when dropped.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "pikachu-test-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn letter(n: usize) -> DeadLetter {
        DeadLetter {
            task_id: "users".into(),
            ids: vec![format!("mysql-bin.000001:{n}:0")],
            url: "http://127.0.0.1:1/hook".into(),
            body: serde_json::json!({"id": format!("mysql-bin.000001:{n}:0"), "n": n}),
            status: Some(400),
            error: "HTTP 400".into(),
            attempts: 1,
            failed_at: crate::clock::rfc3339_utc(1_700_000_000),
        }
    }

    #[test]
    fn written_letters_read_back_in_order_and_survive_reopening() {
        let dir = TempDir::new("dl-roundtrip");
        let dl = DeadLetters::open(&dir.0).expect("open creates the directory");
        dl.write(&letter(1)).unwrap();
        dl.write(&letter(2)).unwrap();
        drop(dl);
        let dl = DeadLetters::open(&dir.0).unwrap();
        dl.write(&letter(3)).unwrap();
        assert_eq!(dl.path(), file_path(&dir.0));
        let back = read_all(&file_path(&dir.0)).unwrap();
        assert_eq!(back, vec![letter(1), letter(2), letter(3)]);
        let text = std::fs::read_to_string(file_path(&dir.0)).unwrap();
        assert_eq!(text.lines().count(), 3, "one JSON object per line: {text}");
    }

    #[test]
    fn concurrent_writers_never_interleave_lines() {
        let dir = TempDir::new("dl-threads");
        let dl = Arc::new(DeadLetters::open(&dir.0).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dl = dl.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        dl.write(&letter(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut ids: Vec<String> = read_all(dl.path())
            .unwrap()
            .into_iter()
            .flat_map(|l| l.ids)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 100);
    }

    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_letter() {
        let dir = TempDir::new("dl-torn");
        std::fs::create_dir_all(&dir.0).unwrap();
        // A crash in the middle of a write left half a line.
        std::fs::write(file_path(&dir.0), b"{\"task_id\":\"us").unwrap();
        let dl = DeadLetters::open(&dir.0).unwrap();
        dl.write(&letter(7)).unwrap();
        let text = std::fs::read_to_string(dl.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            serde_json::from_str::<DeadLetter>(lines[1]).unwrap(),
            letter(7)
        );
        let err = read_all(dl.path()).expect_err("the torn line is reported");
        let shown = err.to_string();
        assert!(
            matches!(err, DeadLetterError::Parse { line: 1, .. }),
            "{shown}"
        );
        assert!(
            shown.contains("line 1") && shown.contains("dead-letters.jsonl"),
            "{shown}"
        );
    }

    #[test]
    fn rewrite_replaces_the_content_atomically() {
        let dir = TempDir::new("dl-rewrite");
        let dl = DeadLetters::open(&dir.0).unwrap();
        for n in 0..5 {
            dl.write(&letter(n)).unwrap();
        }
        let path = file_path(&dir.0);
        let mut kept = read_all(&path).unwrap();
        kept.retain(|l| l.ids[0].ends_with(":1:0") || l.ids[0].ends_with(":3:0"));
        rewrite(&path, &kept).unwrap();
        assert_eq!(read_all(&path).unwrap(), vec![letter(1), letter(3)]);
        rewrite(&path, &[]).unwrap();
        assert!(read_all(&path).unwrap().is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("dead-letters.jsonl")]
        );
    }

    #[test]
    fn a_missing_file_holds_no_letters() {
        let dir = TempDir::new("dl-missing");
        assert!(read_all(&file_path(&dir.0)).unwrap().is_empty());
    }

    #[test]
    fn blank_lines_are_skipped_and_garbage_is_reported_with_its_line() {
        let dir = TempDir::new("dl-garbage");
        std::fs::create_dir_all(&dir.0).unwrap();
        let path = file_path(&dir.0);
        let good = serde_json::to_string(&letter(1)).unwrap();
        std::fs::write(&path, format!("{good}\n\n{good}\nnot json\n")).unwrap();
        match read_all(&path) {
            Err(DeadLetterError::Parse { line, .. }) => assert_eq!(line, 4),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }
}
