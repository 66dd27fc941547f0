//! Writing stored state so that it survives a crash or a power loss: a file is written beside
//! its destination, flushed to disk, renamed over it, and the directory holding it flushed
//! too, so the rename itself is on disk before anything else (a lock file, a grant) names it.

use std::fs::{File, Permissions};
use std::io::{Result, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Flushes a directory's entries (files created, renamed or removed in it) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably (mode 0600): a temporary file in the
/// same directory, `fsync`, rename, then `fsync` of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}
