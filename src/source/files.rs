//! Binlog files on disk as a source (`pikachu replay-binlog`): which events of which
//! files to read, and each file's events with their offsets in it.
//!
//! Offsets are the file's own (a relay log's event headers carry the source server's
//! positions, not the relay log's), so a row read from an archived copy of a binlog
//! file has the same `file:pos:n` id as when it was read live. A file that is not a
//! binlog, ends inside an event or holds an unreadable event is an error naming the file
//! and the offset: the reader stops there rather than skip anything. The reader
//! (`reader.rs`) hands the events to the same code as live events; nothing here knows
//! tasks or sinks.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use mysql::binlog::events::Event;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::BinlogFile;

use crate::event::BinlogPosition;

/// What to read: `files` in order, from `from` (an event boundary; default the start)
/// to `to` (the end of the transaction that contains it; default the end).
#[derive(Clone, Debug)]
pub struct FilePlan {
    pub files: Vec<PathBuf>,
    pub from: Option<BinlogPosition>,
    pub to: Option<BinlogPosition>,
}

/// Why a file cannot be read (further).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot open {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a binlog file (it does not start with the binlog magic bytes \\xfe b i n)",
        .path.display()
    )]
    NotBinlog { path: PathBuf },
    #[error("{}: cannot read the event at offset {offset}: {source}", .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: the file ends inside an event at offset {offset} (the file has {len} bytes): it \
         is truncated, or was still being written when it was copied",
        .path.display()
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
    #[error(
        "{}: the file ends inside a transaction (its last complete transaction ends at \
         offset {offset}); give the next binlog file too, or use a complete copy",
        .path.display()
    )]
    EndsInsideTransaction { path: PathBuf, offset: u64 },
    #[error(
        "{} ends with a rotate to {next}, but the next file given is {given}: {next} is \
         missing between them",
        .path.display()
    )]
    Gap {
        path: PathBuf,
        next: String,
        given: String,
    },
    #[error("--from {file}:{pos}: {why}")]
    BadFrom { file: String, pos: u64, why: String },
}

/// The name a file's rows are identified by: its file name, as the server names it.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// One file's events with (start, end) offsets.
pub struct FileEvents {
    path: PathBuf,
    events: BinlogFile<BufReader<File>>,
    offset: u64,
    len: u64,
    done: bool,
}

impl FileEvents {
    pub fn open(path: &Path) -> Result<FileEvents, FileError> {
        let open = |source| FileError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open)?;
        let len = file.metadata().map_err(open)?.len();
        let events =
            BinlogFile::new(BinlogVersion::Version4, BufReader::new(file)).map_err(|_| {
                FileError::NotBinlog {
                    path: path.to_path_buf(),
                }
            })?;
        Ok(FileEvents {
            path: path.to_path_buf(),
            events,
            // After the 4-byte magic.
            offset: 4,
            len,
            done: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Iterator for FileEvents {
    type Item = Result<(u64, u64, Event), FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.events.next() {
            Some(Ok(event)) => {
                let start = self.offset;
                self.offset += u64::from(event.header().event_size());
                Some(Ok((start, self.offset, event)))
            }
            Some(Err(source)) => {
                self.done = true;
                Some(Err(FileError::Corrupt {
                    path: self.path.clone(),
                    offset: self.offset,
                    source,
                }))
            }
            // The crate ends the iteration at an unexpected end of file, also in the
            // middle of an event: only the byte count tells a truncated file.
            None if self.offset < self.len => {
                self.done = true;
                Some(Err(FileError::Truncated {
                    path: self.path.clone(),
                    offset: self.offset,
                    len: self.len,
                }))
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}

/// `FILE:POS` as given on the command line.
pub fn parse_position(text: &str) -> Result<BinlogPosition, String> {
    let (file, pos) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not FILE:POS (e.g. mysql-bin.000042:4)"))?;
    let pos: u64 = pos
        .parse()
        .map_err(|_| format!("{text:?}: {pos:?} is not a byte offset"))?;
    if file.is_empty() {
        return Err(format!("{text:?} names no file"));
    }
    Ok(BinlogPosition::new(file, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/binlogs")
            .join(name)
    }

    #[test]
    fn offsets_are_the_files_own() {
        let mut last_end = 4;
        let mut n = 0;
        for item in FileEvents::open(&shared("mariadb-bin.000001")).unwrap() {
            let (start, end, event) = item.unwrap();
            assert_eq!(start, last_end);
            assert_eq!(end, start + u64::from(event.header().event_size()));
            // In a binlog (not a relay log) the header says the same.
            assert_eq!(u64::from(event.header().log_pos()), end);
            last_end = end;
            n += 1;
        }
        assert!(n > 5);
        let len = std::fs::metadata(shared("mariadb-bin.000001"))
            .unwrap()
            .len();
        assert_eq!(last_end, len);
    }

    #[test]
    fn bad_files_name_the_file_and_offset() {
        let e = FileEvents::open(&shared("README.md"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("README.md is not a binlog file"), "{e}");
        let e = FileEvents::open(&shared("binlog_truncated_event.000001"))
            .unwrap()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(
            e.contains("binlog_truncated_event.000001: the file ends inside an event at offset 4"),
            "{e}"
        );
        let e = FileEvents::open(&shared("missing.000001"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("cannot open ") && e.contains("missing.000001"),
            "{e}"
        );
    }

    #[test]
    fn positions_parse() {
        assert_eq!(
            parse_position("mysql-bin.000042:1337").unwrap(),
            BinlogPosition::new("mysql-bin.000042", 1337)
        );
        assert!(parse_position("mysql-bin.000042").is_err());
        assert!(parse_position("x:y").is_err());
        assert!(parse_position(":4").is_err());
    }
}
