//! The on-disk compile cache: compiled components keyed by the component's sha256 and the
//! engine's configuration hash.
//!
//! Loading a precompiled component skips validation, so cpi only ever loads files it wrote
//! itself: the cache directory must be owned by the current user and not writable by anyone
//! else, and each entry must be a regular file owned by the user with mode 0600. Anything else
//! is ignored (and recompiled), never trusted.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

/// Whether `path` is a cache entry cpi wrote: in a private directory, a private regular file.
pub fn trusted(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let (Ok(dir_meta), Ok(meta)) = (fs::metadata(dir), fs::symlink_metadata(path)) else {
        return false;
    };
    dir_meta.is_dir()
        && dir_meta.uid() == euid()
        && dir_meta.permissions().mode() & 0o022 == 0
        && meta.file_type().is_file()
        && meta.uid() == euid()
        && meta.permissions().mode() & 0o077 == 0
}

/// Writes a cache entry atomically with mode 0600 in a 0700 directory; failures only cost a
/// recompilation next time, so they are logged, not returned.
pub fn store(path: &Path, bytes: &[u8]) {
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().expect("entries live in a directory");
        fs::create_dir_all(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(err) = result {
        tracing::warn!(
            "could not write the component cache entry {}: {err}",
            path.display()
        );
    }
}
