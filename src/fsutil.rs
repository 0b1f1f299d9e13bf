//! Durable file replacement, shared by the checkpoint and the dead-letter file: a
//! reader of either file sees the old or the new content, whole, even after a crash.
//! Plain file-system helpers; they know nothing of what the files hold.
//!
//! Everything pikachu keeps in `data_dir` is private to its user: dead letters hold
//! whole rows (names, emails, whatever the table has), so the directory is created
//! `0700` and every file in it `0600`, whatever the process umask.

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
        let mut file = private(&mut OpenOptions::new())
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

/// `options` creating a file readable and writable by its owner only (`0600`). A file
/// that exists already keeps its mode: `exposed` reports it.
pub fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Creates `dir` (and missing parents) as `0700`. A directory that exists keeps its
/// mode: `exposed` reports it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A warning when `path` exists and other users may read or write it (group or other
/// permission bits), naming the `chmod` that fixes it; `None` otherwise.
pub fn exposed(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).ok()?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return None;
        }
        let (wanted, kind) = if meta.is_dir() {
            (0o700, "directory")
        } else {
            (0o600, "file")
        };
        Some(format!(
            "{} is readable by other users (mode {mode:03o}); it holds delivery state and \
             rows: chmod {wanted:03o} {} (pikachu creates this {kind} {wanted:03o})",
            path.display(),
            path.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn data_files_are_private_and_exposed_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("pikachu-fsutil-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let nested = dir.join("data");
        create_private_dir(&nested).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&nested), 0o700);
        let file = nested.join("checkpoint.json");
        replace_file(&file, b"{}").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(exposed(&file), None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warning = exposed(&file).expect("a 0644 file is exposed");
        assert!(
            warning.contains("mode 644") && warning.contains("chmod 600"),
            "{warning}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
