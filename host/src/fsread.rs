//! Reading a file that came from a provider or a user directory, without trusting it.
//!
//! Every such file (a provider's JSON, its component, its fixtures and their `output_file`,
//! `ca_cert_file`, the config file, secret and token files) is read through [`read`] or
//! [`open`], which:
//!
//! - accept a **regular file** only: a FIFO, a device (`/dev/zero`), a socket or a directory
//!   is refused before a byte is read;
//! - open it with `O_NONBLOCK`, so `open()` on a FIFO that slipped in between the check and
//!   the open returns at once instead of waiting for a writer;
//! - cap its size per [`Kind`] from `fstat` on the opened file (a 3 GiB sparse file costs one
//!   system call) and again while reading (a file growing under us stops at the cap);
//! - never put the file's content in an error: a message names the file, what it is for and
//!   what is wrong with it, never its bytes.
//!
//! Stored trust (grants, approvals, lock files, the `serve` token, compile-cache entries) is
//! read with [`read_private`] and its directory checked with [`check_private_dir`]: it is
//! believed only from the user's own files, never "repaired" with a `chmod` and then believed.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// What a file is for: sets its size cap and how errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A provider file (`NAME.json`): 4 MiB.
    Provider,
    /// A WebAssembly component (`component`, `NAME.wasm`): 64 MiB.
    Component,
    /// A fixture file or its `output_file`: 16 MiB.
    Fixture,
    /// The config file (`cpi.toml`): 1 MiB.
    Config,
    /// A PEM file (`ca_cert_file`): 1 MiB.
    Certificate,
    /// A secret or token file (`{ file = … }`, `serve.token`): 64 KiB.
    Secret,
    /// A stored grant, approval or lock file: 1 MiB.
    Stored,
}

impl Kind {
    /// The most bytes a file of this kind may hold.
    pub const fn limit(self) -> u64 {
        match self {
            Kind::Provider => 4 << 20,
            Kind::Component => 64 << 20,
            Kind::Fixture => 16 << 20,
            Kind::Config | Kind::Certificate | Kind::Stored => 1 << 20,
            Kind::Secret => 64 << 10,
        }
    }

    /// How errors name a file of this kind.
    pub const fn noun(self) -> &'static str {
        match self {
            Kind::Provider => "provider file",
            Kind::Component => "component",
            Kind::Fixture => "fixture file",
            Kind::Config => "config file",
            Kind::Certificate => "certificate file",
            Kind::Secret => "secret file",
            Kind::Stored => "stored file",
        }
    }
}

/// What was wrong with a file (never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The path does not exist.
    Missing,
    /// The path is not a regular file; the text says what it is (`a FIFO`, `a directory`).
    NotRegular(&'static str),
    /// The file is larger than its kind allows.
    TooLarge {
        /// The size found (from `fstat`, or the cap plus one when it grew while read).
        size: u64,
        /// The cap for its kind.
        limit: u64,
    },
    /// The file is not UTF-8 text where text is expected.
    NotText,
    /// Any other I/O failure (permission denied, ...), as the OS describes it.
    Io(String),
    /// Stored trust in a place someone else could have written (see [`read_private`]).
    NotPrivate(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("no such file"),
            Problem::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            Problem::TooLarge { size, limit } => {
                write!(f, "it is {size} bytes, over the {limit}-byte limit")
            }
            Problem::NotText => f.write_str("it is not UTF-8 text"),
            Problem::Io(why) => f.write_str(why),
            Problem::NotPrivate(why) => write!(
                f,
                "{why}, so cpi does not trust it (someone else could have written it): check \
                 it, then remove it or make it yours with `chmod go-w`"
            ),
        }
    }
}

/// A file that could not be read as a `kind`: names the file and the problem, not its bytes.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read {} {}: {problem}", kind.noun(), crate::escape::line(&path.display().to_string()))]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// What it was read as.
    pub kind: Kind,
    /// What was wrong.
    pub problem: Problem,
}

impl ReadError {
    /// True when the file does not exist (callers with a default treat that as "absent").
    pub fn is_missing(&self) -> bool {
        self.problem == Problem::Missing
    }
}

impl From<ReadError> for Error {
    fn from(err: ReadError) -> Error {
        let file = err.path.display().to_string();
        Error::validation(err.to_string()).with_detail("file", file)
    }
}

/// Opens `path` as a regular file of `kind` within its size cap; returns the open file and
/// its metadata (from `fstat` on that very file, so what was checked is what is read).
pub fn open(path: &Path, kind: Kind) -> Result<(File, Metadata), ReadError> {
    let fail = |problem| ReadError {
        path: path.to_path_buf(),
        kind,
        problem,
    };
    // Checked before opening, so a device is never even opened ...
    let meta = std::fs::metadata(path).map_err(|e| fail(io_problem(&e)))?;
    check(&meta, kind).map_err(fail)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(io_problem(&e)))?;
    // ... and again on the open file, which may not be the one just checked.
    let meta = file.metadata().map_err(|e| fail(io_problem(&e)))?;
    check(&meta, kind).map_err(fail)?;
    Ok((file, meta))
}

/// Reads a whole regular file of `kind`, within its size cap.
pub fn read(path: &Path, kind: Kind) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open(path, kind)?;
    read_open(&file, &meta, path, kind)
}

/// Reads the rest of a file from [`open`], stopping at its kind's cap.
pub fn read_open(
    file: &File,
    meta: &Metadata,
    path: &Path,
    kind: Kind,
) -> Result<Vec<u8>, ReadError> {
    let fail = |problem| ReadError {
        path: path.to_path_buf(),
        kind,
        problem,
    };
    let limit = kind.limit();
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit)).unwrap_or(0));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(io_problem(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(fail(Problem::TooLarge {
            size: limit + 1,
            limit,
        }));
    }
    Ok(bytes)
}

/// Reads a whole regular file of `kind` as UTF-8 text, within its size cap.
pub fn read_string(path: &Path, kind: Kind) -> Result<String, ReadError> {
    String::from_utf8(read(path, kind)?).map_err(|_| ReadError {
        path: path.to_path_buf(),
        kind,
        problem: Problem::NotText,
    })
}

/// Reads stored trust (a grant, approval, lock file, token or cache entry) only if it is the
/// user's own: a regular file, not a symlink, owned by the current user and not writable by
/// group or others. Checked on the open file (`O_NOFOLLOW`, then `fstat`), so what was checked
/// is what is read. A store that keeps such files in a directory of its own (grants, the
/// compile cache) checks that directory with [`check_private_dir`] as well.
pub fn read_private(path: &Path, kind: Kind) -> Result<Vec<u8>, ReadError> {
    let fail = |problem| ReadError {
        path: path.to_path_buf(),
        kind,
        problem,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => fail(Problem::NotPrivate("it is a symlink".into())),
            _ => fail(io_problem(&e)),
        })?;
    let meta = file.metadata().map_err(|e| fail(io_problem(&e)))?;
    check(&meta, kind).map_err(fail)?;
    owned_by_user(&meta).map_err(fail)?;
    read_open(&file, &meta, path, kind)
}

/// Whether `dir` may hold stored trust: a directory owned by the current user that group and
/// others cannot write (followed if it is a symlink: a symlinked `~/.config` is common, and
/// what matters is who can write where it leads). Decided before anything is read from or
/// written to it; cpi never `chmod`s such a directory and then believes what is inside.
pub fn check_private_dir(dir: &Path) -> Result<(), ReadError> {
    let fail = |problem| ReadError {
        path: dir.to_path_buf(),
        kind: Kind::Stored,
        problem,
    };
    let meta = std::fs::metadata(dir).map_err(|e| fail(io_problem(&e)))?;
    if !meta.is_dir() {
        return Err(fail(Problem::NotPrivate("it is not a directory".into())));
    }
    owned_by_user(&meta).map_err(fail)
}

/// Owned by the current user and not writable by group or others.
fn owned_by_user(meta: &Metadata) -> Result<(), Problem> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Problem::NotPrivate(format!(
            "it belongs to uid {}, not to you (uid {me})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Problem::NotPrivate(format!(
            "group or others can write it (mode {mode:04o})"
        )));
    }
    Ok(())
}

/// Refuses anything but a regular file within `kind`'s cap.
fn check(meta: &Metadata, kind: Kind) -> Result<(), Problem> {
    let ty = meta.file_type();
    let what = if ty.is_file() {
        None
    } else if ty.is_dir() {
        Some("a directory")
    } else if ty.is_fifo() {
        Some("a FIFO")
    } else if ty.is_char_device() {
        Some("a character device")
    } else if ty.is_block_device() {
        Some("a block device")
    } else if ty.is_socket() {
        Some("a socket")
    } else {
        Some("a special file")
    };
    if let Some(what) = what {
        return Err(Problem::NotRegular(what));
    }
    if meta.len() > kind.limit() {
        return Err(Problem::TooLarge {
            size: meta.len(),
            limit: kind.limit(),
        });
    }
    Ok(())
}

/// The OS's description of an I/O failure, `Missing` for a path that does not exist.
fn io_problem(err: &std::io::Error) -> Problem {
    match err.kind() {
        std::io::ErrorKind::NotFound => Problem::Missing,
        _ => Problem::Io(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), Kind::Provider).unwrap_err();
        assert_eq!(err.problem, Problem::NotRegular("a directory"));
        let err = read(Path::new("/dev/zero"), Kind::Component).unwrap_err();
        assert_eq!(err.problem, Problem::NotRegular("a character device"));
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read(&fifo, Kind::Component).unwrap_err();
        assert_eq!(err.problem, Problem::NotRegular("a FIFO"));
        assert!(
            read(&dir.path().join("absent"), Kind::Config)
                .unwrap_err()
                .is_missing()
        );
    }

    #[test]
    fn stored_trust_is_read_only_from_the_users_own_files() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("grants");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = dir.join("x.json");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&file, Kind::Stored).unwrap(), b"{}");
        let not_private = |path: &Path| {
            matches!(
                read_private(path, Kind::Stored).unwrap_err().problem,
                Problem::NotPrivate(_)
            )
        };
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(not_private(&file));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(not_private(&link));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_dir(&dir).is_err());
        // Refused, and left as found: nothing chmod-ed it back.
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o777);
    }

    #[test]
    fn the_cap_is_checked_before_reading_and_content_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        let file = File::create(&big).unwrap();
        file.set_len(Kind::Provider.limit() + 1).unwrap();
        let err = read(&big, Kind::Provider).unwrap_err();
        assert!(matches!(err.problem, Problem::TooLarge { .. }), "{err}");
        let binary = dir.path().join("bin.json");
        std::fs::write(&binary, b"SECRET=hunter2\xff").unwrap();
        let err = read_string(&binary, Kind::Provider).unwrap_err();
        assert_eq!(err.problem, Problem::NotText);
        assert!(!err.to_string().contains("hunter2"), "{err}");
        std::fs::write(&binary, b"{}").unwrap();
        assert_eq!(read_string(&binary, Kind::Provider).unwrap(), "{}");
    }
}
