//! The on-disk compile cache: compiled components keyed by the component's sha256 and the
//! engine's configuration hash, and the sha256 of each component file remembered by the file's
//! identity and change times.
//!
//! Loading a precompiled component skips validation, so cpi only ever loads files it wrote
//! itself: the cache directory must be owned by the current user and not writable by anyone
//! else, and each entry must be a regular file owned by the user with mode 0600. Anything else
//! is ignored (and recompiled), never trusted. Whether the directory is usable is decided once,
//! before anything is read or written there ([`usable_dir`]): a directory others can write is
//! left as found and the cache is off for that run. It is never `chmod`-ed private and then
//! believed, since someone else may already have renamed one entry onto another's name.
//!
//! Remembered digests ([`recall_digest`], [`remember_digest`]) spare a warm run reading and
//! hashing the component (18 MB for a Python one). They are safe because compiled entries are
//! content-addressed: a remembered sha256 only selects which compiled entry runs, and that
//! entry was compiled from bytes that had exactly that sha256, so the code that runs is always
//! the code the grants were pinned to. A component changed on disk changes its `ctime`, which
//! no unprivileged process can set, so its remembered digest no longer matches and it is
//! hashed again (and loses its grants). docs/decisions.md has the whole argument.

use std::fs;
use std::hash::{Hash, Hasher};

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file for a component compiled by `engine`.
pub fn entry(dir: &Path, engine: &wasmtime::Engine, sha: &str) -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    dir.join(format!("{sha}-{:016x}.cwasm", hasher.finish()))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `dir` can hold the cache this run: created private (0700) when missing; an
/// existing one must already be the user's own and not writable by group or others
/// ([`cpi::fsread::check_private_dir`]). Decided before anything is read or written there.
pub fn usable_dir(dir: &Path) -> bool {
    if fs::symlink_metadata(dir).is_err() {
        if let Some(parent) = dir.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let _ = fs::DirBuilder::new().mode(0o700).create(dir);
    }
    match cpi::fsread::check_private_dir(dir) {
        Ok(()) => true,
        Err(err) => {
            tracing::warn!("not using the component compile cache: {err}");
            false
        }
    }
}

/// Whether `path` is a cache entry cpi wrote: in a private directory, a private regular file.
pub fn trusted(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    cpi::fsread::check_private_dir(dir).is_ok()
        && meta.file_type().is_file()
        && meta.uid() == euid()
        && meta.permissions().mode() & 0o077 == 0
}

/// How long a component file must have been left unchanged before its digest is remembered.
///
/// A write in the same timestamp tick as the change the digest was taken after would leave the
/// times unchanged (the "racy clean" problem git has with its index); file systems tick in
/// nanoseconds to 2 seconds (FAT). A file changed less than this long before it was hashed is
/// simply hashed again on the next load.
const SETTLED: Duration = Duration::from_secs(3);

/// What identifies one version of a component file: device, inode, size, modification and
/// status-change times. Writing the file, renaming another over it, `touch -d` and `chmod` all
/// change `ctime`, which only the kernel sets.
fn stamp(meta: &fs::Metadata) -> String {
    format!(
        "{} {}.{:09} {}.{:09}",
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

/// The file remembering the digest of the component file whose metadata is `meta`.
fn digest_entry(dir: &Path, meta: &fs::Metadata) -> PathBuf {
    dir.join(format!("{:x}-{:x}.sha256", meta.dev(), meta.ino()))
}

/// The sha256 remembered for the component file whose (current) metadata is `meta`, if a
/// trusted entry recorded it for exactly this version of the file.
pub fn recall_digest(dir: &Path, meta: &fs::Metadata) -> Option<String> {
    let entry = digest_entry(dir, meta);
    if !trusted(&entry) {
        return None;
    }
    let bytes = cpi::fsread::read_private(&entry, cpi::fsread::Kind::Stored).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (recorded, sha) = text.trim_end().rsplit_once(' ')?;
    let valid = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (valid && recorded == stamp(meta)).then(|| sha.to_string())
}

/// Remembers `sha` for the component file that had metadata `before` when reading it began
/// (at `started`) and `after` once it was read, if the file did not change meanwhile and had
/// settled (see [`SETTLED`]) before it was read.
pub fn remember_digest(
    dir: &Path,
    before: &fs::Metadata,
    after: &fs::Metadata,
    started: SystemTime,
    sha: &str,
) {
    let at = |secs: i64, nsecs: i64| {
        u64::try_from(secs)
            .ok()
            .map(|s| UNIX_EPOCH + Duration::new(s, nsecs.clamp(0, 999_999_999) as u32))
    };
    let settled = |time: Option<SystemTime>| {
        time.and_then(|t| started.duration_since(t).ok())
            .is_some_and(|age| age >= SETTLED)
    };
    if stamp(before) != stamp(after)
        || before.dev() != after.dev()
        || before.ino() != after.ino()
        || !settled(at(before.mtime(), before.mtime_nsec()))
        || !settled(at(before.ctime(), before.ctime_nsec()))
    {
        return;
    }
    let entry = digest_entry(dir, before);
    store(&entry, format!("{} {sha}\n", stamp(before)).as_bytes());
}

/// Writes a cache entry atomically with mode 0600 into a directory [`usable_dir`] accepted;
/// failures only cost a recompilation next time, so they are logged, not returned.
pub fn store(path: &Path, bytes: &[u8]) {
    let result = cpi::fswrite::write_atomic(path, bytes);
    if let Err(err) = result {
        tracing::warn!(
            "could not write the component cache entry {}: {err}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /// A private cache directory and a component file in another directory.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
        let file = root.path().join("p.wasm");
        fs::write(&file, b"\0asm one").unwrap();
        (root, cache, file)
    }

    fn meta(path: &Path) -> fs::Metadata {
        fs::metadata(path).unwrap()
    }

    /// Remembers `SHA` for `file` as if it had been read long after its last change.
    fn remember_settled(cache: &Path, file: &Path) {
        let m = meta(file);
        let later = SystemTime::now() + Duration::from_secs(3600);
        remember_digest(cache, &m, &m, later, SHA);
    }

    #[test]
    fn a_settled_unchanged_file_is_recalled() {
        let (_root, cache, file) = setup();
        remember_settled(&cache, &file);
        assert_eq!(recall_digest(&cache, &meta(&file)).as_deref(), Some(SHA));
    }

    #[test]
    fn a_file_changed_moments_before_it_was_read_is_not_remembered() {
        let (_root, cache, file) = setup();
        let m = meta(&file);
        remember_digest(&cache, &m, &m, SystemTime::now(), SHA);
        assert_eq!(recall_digest(&cache, &m), None);
    }

    #[test]
    fn a_file_that_changed_while_it_was_read_is_not_remembered() {
        let (_root, cache, file) = setup();
        let before = meta(&file);
        std::thread::sleep(Duration::from_millis(30));
        fs::write(&file, b"\0asm two").unwrap();
        let later = SystemTime::now() + Duration::from_secs(3600);
        remember_digest(&cache, &before, &meta(&file), later, SHA);
        assert_eq!(recall_digest(&cache, &before), None);
        assert_eq!(recall_digest(&cache, &meta(&file)), None);
    }

    #[test]
    fn any_change_to_the_file_forgets_its_digest() {
        let (_root, cache, file) = setup();
        remember_settled(&cache, &file);
        // Same size, same inode, modification time put back: the change time still moves.
        let mtime = meta(&file).modified().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        fs::write(&file, b"\0asm two").unwrap();
        fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(meta(&file).len(), 8);
        assert_eq!(recall_digest(&cache, &meta(&file)), None);

        // Another file renamed over it (a new inode).
        remember_settled(&cache, &file);
        let other = file.with_extension("new");
        fs::write(&other, b"\0asm one").unwrap();
        fs::rename(&other, &file).unwrap();
        assert_eq!(recall_digest(&cache, &meta(&file)), None);
    }

    #[test]
    fn entries_in_a_shared_directory_or_with_bad_contents_are_ignored() {
        let (_root, cache, file) = setup();
        remember_settled(&cache, &file);
        let entry = digest_entry(&cache, &meta(&file));
        assert_eq!(
            fs::metadata(&entry).unwrap().permissions().mode() & 0o777,
            0o600
        );
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(recall_digest(&cache, &meta(&file)), None);
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(recall_digest(&cache, &meta(&file)).as_deref(), Some(SHA));

        for bad in [
            "",
            SHA,
            "x y",
            &format!("{} {}", stamp(&meta(&file)), &SHA[1..]),
        ] {
            fs::write(&entry, bad).unwrap();
            assert_eq!(recall_digest(&cache, &meta(&file)), None, "{bad:?}");
        }
        let upper = SHA.to_uppercase();
        fs::write(&entry, format!("{} {upper}\n", stamp(&meta(&file)))).unwrap();
        assert_eq!(recall_digest(&cache, &meta(&file)), None);
    }
}
