//! Durable file replacement, shared by the checkpoint and the dead-letter file: a
//! reader of either file sees the old or the new content, whole, even after a crash.
//! Plain file-system helpers; they know nothing of what the files hold.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Writes `content` to a temporary file beside `path`, fsyncs it, renames it over `path`
/// and fsyncs the directory, so that a reader sees the old or the new content, whole.
/// On error returns the path the failing step was working on.
pub fn replace_file(path: &Path, content: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let write_tmp = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(content)?;
        file.sync_all()
    };
    if let Err(e) = write_tmp() {
        let _ = std::fs::remove_file(&tmp);
        return Err((tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err((path.to_owned(), e));
    }
    sync_dir(&dir).map_err(|e| (dir, e))
}

/// Makes a rename or a new file in `dir` durable. Only Unix can open a directory for
/// that; elsewhere the rename is as durable as the platform makes it.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
