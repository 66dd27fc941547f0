//! Installing providers: fetch from a source (a local file or directory, an `https://` URL, a
//! git repository at a revision), copy the exact bytes into a content-addressed store under
//! `$XDG_DATA_HOME/cpi/store/`, and record them in a lock file (`cpi.lock`: source, revision,
//! the sha256 of every file) so an install can be reproduced exactly and any changed byte is
//! refused.
//!
//! Approval is separate (see [`crate::approval`]): the lock pins content, a grant pins what a
//! person approved.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::request;

/// Largest provider file accepted from a source.
pub const MAX_JSON: usize = 4 << 20;
/// Largest component accepted from a source.
pub const MAX_COMPONENT: usize = 64 << 20;

/// One fetched file: its path inside the provider (`name.json`, `name.wasm`) and its bytes.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Relative path (`/`-separated, no `..`).
    pub path: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
}

/// Where a provider comes from, parsed from what the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A provider file, or a directory holding one.
    Path(PathBuf),
    /// An `https://` URL of a provider file (plain `http://` only to loopback, when allowed).
    Url(String),
    /// A git repository, a revision and an optional subdirectory.
    Git {
        /// The repository URL (`https://...`, `file:///...`, a local path).
        url: String,
        /// The revision asked for (a branch, a tag, a commit; `HEAD` by default).
        rev: String,
        /// The directory inside the repository holding the provider.
        subdir: String,
    },
}

impl Source {
    /// Parses `PATH`, `https://...` or `git+URL[@REV][#SUBDIR]`.
    pub fn parse(text: &str) -> Result<Source> {
        if let Some(rest) = text.strip_prefix("git+") {
            let (rest, subdir) = rest.split_once('#').unwrap_or((rest, ""));
            let after_scheme = rest.find("://").map(|i| i + 3).unwrap_or(0);
            let (url, rev) = match rest.rsplit_once('@') {
                Some((url, rev))
                    if url.len() >= after_scheme
                        && url[after_scheme..].contains('/')
                        && !rev.is_empty()
                        && !rev.contains(':') =>
                {
                    (url, rev)
                }
                _ => (rest, "HEAD"),
            };
            if url.starts_with('-') || rev.starts_with('-') || url.is_empty() {
                return Err(Error::validation(format!("invalid git source {text:?}")));
            }
            if subdir.split('/').any(|s| s == "..") || subdir.starts_with('/') {
                return Err(Error::validation(format!(
                    "the subdirectory in {text:?} must stay inside the repository"
                )));
            }
            return Ok(Source::Git {
                url: url.to_string(),
                rev: rev.to_string(),
                subdir: subdir.trim_matches('/').to_string(),
            });
        }
        if text.starts_with("https://") || text.starts_with("http://") {
            return Ok(Source::Url(text.to_string()));
        }
        Ok(Source::Path(PathBuf::from(text)))
    }

    /// How the lock file records it.
    pub fn describe(&self) -> String {
        match self {
            Source::Path(p) => p
                .canonicalize()
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            Source::Url(u) => u.clone(),
            Source::Git { url, subdir, .. } if subdir.is_empty() => format!("git+{url}"),
            Source::Git { url, subdir, .. } => format!("git+{url}#{subdir}"),
        }
    }
}

/// What a fetch produced: the files and the exact revision (a commit id for git).
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The provider's files, the JSON file first.
    pub files: Vec<Fetched>,
    /// The resolved revision (git commit id), if the source has one.
    pub revision: Option<String>,
}

/// Wall-clock limit of each git command and each download of a fetch, unless told otherwise.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Fetch options.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Allow plain `http://` to a loopback address (tests; never for other hosts).
    pub allow_http_loopback: bool,
    /// For git: fetch exactly this commit instead of resolving the requested revision.
    pub revision: Option<String>,
    /// Wall-clock limit of each git command (then it and its process group are killed) and
    /// of each download.
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            allow_http_loopback: false,
            revision: None,
            timeout: FETCH_TIMEOUT,
        }
    }
}

/// Fetches a provider's files from `source`.
pub async fn fetch(source: &Source, options: &FetchOptions) -> Result<Fetch> {
    match source {
        Source::Path(path) => fetch_path(path).map(|files| Fetch {
            files,
            revision: None,
        }),
        Source::Url(url) => fetch_url(url, options).await,
        Source::Git { url, rev, subdir } => {
            let rev = options.revision.as_deref().unwrap_or(rev);
            fetch_git(url, rev, subdir, options.timeout).await
        }
    }
}

fn read_capped(path: &Path, cap: usize) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::validation(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Error::validation(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > cap as u64 {
        return Err(Error::validation(format!(
            "{} is {} bytes; at most {cap} are accepted",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path)
        .map_err(|e| Error::validation(format!("cannot read {}: {e}", path.display())))
}

/// The component path a provider file names, checked to stay beside it.
fn component_of(json: &[u8], at: &str) -> Result<Option<String>> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| Error::validation(format!("{at} is not a provider file: {e}")))?;
    match value.get("component").and_then(|c| c.as_str()) {
        None => Ok(None),
        Some(rel) => {
            if rel.starts_with('/') || rel.split('/').any(|s| s == ".." || s.is_empty()) {
                return Err(Error::validation(format!(
                    "{at}: its component {:?} must be a path beside it, without '..'",
                    crate::escape::line(rel)
                )));
            }
            Ok(Some(rel.to_string()))
        }
    }
}

fn fetch_path(path: &Path) -> Result<Vec<Fetched>> {
    let file = if path.is_dir() {
        let mut found = crate::provider::provider_files(path)?;
        if found.len() != 1 {
            return Err(Error::validation(format!(
                "{} holds {} provider files; name the one to install",
                path.display(),
                found.len()
            )));
        }
        found.remove(0)
    } else {
        path.to_path_buf()
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::validation(format!("cannot name {}", file.display())))?
        .to_string();
    let json = read_capped(&file, MAX_JSON)?;
    let mut files = Vec::new();
    if let Some(rel) = component_of(&json, &name)? {
        let base = file.parent().unwrap_or(Path::new("."));
        files.push(Fetched {
            bytes: read_capped(&base.join(&rel), MAX_COMPONENT)?,
            path: rel,
        });
    }
    files.insert(
        0,
        Fetched {
            path: name,
            bytes: json,
        },
    );
    Ok(files)
}

async fn get_capped(client: &reqwest::Client, url: &str, cap: usize) -> Result<Vec<u8>> {
    let fail = |e: String| Error::provider(format!("cannot download {url}: {e}"));
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        body.extend_from_slice(&chunk);
        if body.len() > cap {
            return Err(fail(format!("more than {cap} bytes")));
        }
    }
    Ok(body)
}

async fn fetch_url(text: &str, options: &FetchOptions) -> Result<Fetch> {
    let url = url::Url::parse(text)
        .map_err(|e| Error::validation(format!("invalid URL {text:?}: {e}")))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback && options.allow_http_loopback => {}
        _ => {
            return Err(Error::validation(format!(
                "{text}: providers are installed over https only (plain http only to a loopback \
                 address with --allow-http-loopback)"
            )));
        }
    }
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| n.ends_with(".json"))
        .ok_or_else(|| Error::validation(format!("{text}: the URL must name a .json file")))?
        .to_string();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(options.timeout)
        .build()
        .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
    let json = get_capped(&client, text, MAX_JSON).await?;
    let mut files = vec![Fetched {
        path: name.clone(),
        bytes: json,
    }];
    if let Some(rel) = component_of(&files[0].bytes, &name)? {
        let at = url
            .join(&rel)
            .map_err(|e| Error::validation(format!("component URL: {e}")))?;
        files.push(Fetched {
            bytes: get_capped(&client, at.as_str(), MAX_COMPONENT).await?,
            path: rel,
        });
    }
    Ok(Fetch {
        files,
        revision: None,
    })
}

/// Largest stdout kept from a git command other than reading a blob (a listing, a commit id).
const MAX_GIT_LISTING: usize = 1 << 20;

/// Largest file a git command may write: a clone's pack holds the provider's whole history,
/// which a provider's few files keep far below this; a hostile server's endless pack stops
/// here instead of at a full disk.
const MAX_GIT_FILE: u64 = 256 << 20;

/// Runs `git ARGS` (never a shell) through [`crate::exec::command`]: only local and https
/// transports, no prompt and no credential helper (a source needing a password fails instead
/// of waiting for one), stdout kept up to `cap` bytes, stderr capped, no file written past
/// [`MAX_GIT_FILE`], and past `timeout` the command and its process group are killed.
async fn git(args: &[&str], cap: usize, timeout: Duration) -> Result<Vec<u8>> {
    let limits = crate::exec::Limits {
        timeout,
        max_output: cap,
        max_stderr: 16 << 10,
        max_file_bytes: Some(MAX_GIT_FILE),
    };
    git_limited(args, &limits).await
}

/// [`git`] under explicit limits.
async fn git_limited(args: &[&str], limits: &crate::exec::Limits) -> Result<Vec<u8>> {
    let argv: Vec<String> = [
        "git",
        "-c",
        "protocol.allow=never",
        "-c",
        "protocol.file.allow=always",
        "-c",
        "protocol.https.allow=always",
        "-c",
        "credential.helper=",
        "-c",
        "core.askPass=",
    ]
    .iter()
    .chain(args)
    .map(|a| a.to_string())
    .collect();
    // What the error names: the subcommand, past `-C DIR`.
    let sub = match args {
        ["-C", _, sub, ..] | [sub, ..] => format!("git {sub}"),
        [] => "git".to_string(),
    };
    let env = [
        ("GIT_TERMINAL_PROMPT", "0"),
        ("GIT_ASKPASS", ""),
        ("SSH_ASKPASS", ""),
        ("GCM_INTERACTIVE", "never"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let spec = crate::exec::command::Spec {
        argv: &argv,
        env: &env,
        inherit_env: true,
        stdin: None,
    };
    let raw = crate::exec::command::run_raw(&spec, limits)
        .await
        .map_err(|e| git_error(&sub, e, limits))?;
    if raw.exit_code != 0 {
        // A pack cut off at the file limit shows as index-pack failing.
        let hint = match limits.max_file_bytes {
            Some(bytes) if raw.stderr.contains("index-pack") => format!(
                " (a git source may write no file over {bytes} bytes; this one's pack may be \
                 larger)"
            ),
            _ => String::new(),
        };
        return Err(Error::provider(format!(
            "{sub} failed (exit status {}): {}{hint}",
            raw.exit_code,
            crate::escape::line(&crate::exec::excerpt(raw.stderr.trim(), 2048))
        ))
        .with_detail("command", sub));
    }
    Ok(raw.stdout)
}

/// What a git command that could not finish means: a timeout or an output flood named with
/// the git command and the limit it passed.
fn git_error(sub: &str, e: Error, limits: &crate::exec::Limits) -> Error {
    match e.kind() {
        ErrorKind::Timeout => Error::new(
            ErrorKind::Timeout,
            format!(
                "{sub} did not finish within {}; it and its process group were killed \
                 (raise the limit with --fetch-timeout)",
                humantime::format_duration(limits.timeout)
            ),
        )
        .with_detail("command", sub)
        .with_detail("timeout_secs", limits.timeout.as_secs_f64()),
        _ if e.details().contains_key("limit_bytes") => Error::provider(format!(
            "{sub} printed more than {} bytes; it was stopped",
            limits.max_output
        ))
        .with_detail("command", sub)
        .with_detail("limit_bytes", limits.max_output),
        _ => e,
    }
}

/// Reads `path` at `commit` from a bare clone: its size is asked first and anything over `cap`
/// refused without reading it; the read itself stops at `cap` in case the answer was wrong.
async fn git_blob(
    repo: &str,
    commit: &str,
    path: &str,
    cap: usize,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let object = format!("{commit}:{path}");
    let too_big = |size: String| {
        Error::validation(format!(
            "{} (commit {commit}) is {size} bytes; at most {cap} are accepted from a git source",
            crate::escape::line(path)
        ))
        .with_detail("file", path)
        .with_detail("limit_bytes", cap)
    };
    let size = git(&["-C", repo, "cat-file", "-s", &object], 64, timeout).await?;
    let size: u64 = String::from_utf8_lossy(&size).trim().parse().map_err(|_| {
        Error::provider(format!(
            "git cat-file -s did not give the size of {}",
            crate::escape::line(path)
        ))
    })?;
    if size > cap as u64 {
        return Err(too_big(size.to_string()));
    }
    match git(&["-C", repo, "cat-file", "blob", &object], cap, timeout).await {
        Err(e) if e.details().contains_key("limit_bytes") => {
            Err(too_big(format!("more than {cap}")))
        }
        other => other,
    }
}

async fn fetch_git(url: &str, rev: &str, subdir: &str, timeout: Duration) -> Result<Fetch> {
    let tmp = tempfile::tempdir().map_err(|e| Error::internal(format!("temp dir: {e}")))?;
    let repo = tmp.path().join("repo.git");
    let repo_s = repo.display().to_string();
    let small = MAX_GIT_LISTING;
    git(
        &["clone", "--quiet", "--bare", "--", url, &repo_s],
        small,
        timeout,
    )
    .await?;
    let spec = format!("{rev}^{{commit}}");
    let resolved = git(
        &[
            "-C",
            &repo_s,
            "rev-parse",
            "--verify",
            "--end-of-options",
            &spec,
        ],
        small,
        timeout,
    )
    .await?;
    let commit = String::from_utf8_lossy(&resolved).trim().to_string();
    let prefix = if subdir.is_empty() {
        String::new()
    } else {
        format!("{subdir}/")
    };
    // The blobs of the commit, not a checked-out tree (`core.autocrlf` would change bytes).
    let dot = format!("{prefix}.");
    let ls_tree = ["-C", &repo_s, "ls-tree", "--name-only", &commit, &dot];
    let listing = match git(&ls_tree, small, timeout).await {
        Ok(listing) => listing,
        Err(e) if e.kind() == ErrorKind::Timeout => return Err(e),
        Err(_) => git(&ls_tree[..5], small, timeout).await?,
    };
    let names: Vec<String> = String::from_utf8_lossy(&listing)
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l).to_string())
        .filter(|l| l.ends_with(".json") && !l.contains('/'))
        .collect();
    if names.len() != 1 {
        return Err(Error::validation(format!(
            "git+{url}#{subdir} at {commit}: {} provider files; name the directory holding one",
            names.len()
        )));
    }
    let blob = |rel: &str| format!("{prefix}{rel}");
    let json = git_blob(&repo_s, &commit, &blob(&names[0]), MAX_JSON, timeout).await?;
    let mut files = vec![Fetched {
        path: names[0].clone(),
        bytes: json,
    }];
    if let Some(rel) = component_of(&files[0].bytes, &names[0])? {
        files.push(Fetched {
            bytes: git_blob(&repo_s, &commit, &blob(&rel), MAX_COMPONENT, timeout).await?,
            path: rel,
        });
    }
    Ok(Fetch {
        files,
        revision: Some(commit),
    })
}

/// One file in the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedFile {
    /// Path inside the provider.
    pub path: String,
    /// sha256 of its bytes (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One installed provider in the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedProvider {
    /// Provider name.
    pub name: String,
    /// `json` or `component`.
    pub kind: String,
    /// Where it came from (`/path`, `https://...`, `git+URL[#subdir]`).
    pub source: String,
    /// What the user asked for (a git revision), informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// The exact revision fetched (a git commit id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `h1:` digest over every file (Go's dirhash form).
    pub digest: String,
    /// The sha256 of the capability request approved at install (JSON providers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub capabilities: String,
    /// Every file with its sha256.
    #[serde(rename = "file")]
    pub files: Vec<LockedFile>,
}

/// The lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Format version (1).
    pub version: u32,
    /// Installed providers, by name.
    #[serde(default, rename = "provider")]
    pub providers: Vec<LockedProvider>,
}

/// The default lock file: `$XDG_CONFIG_HOME/cpi/cpi.lock`.
pub fn default_lock_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cpi").join("cpi.lock"))
}

/// The default store: `$XDG_DATA_HOME/cpi/store`.
pub fn default_store_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("cpi").join("store"))
}

impl Lock {
    /// Loads a lock file (a missing one is empty). A lock file is stored trust: it is read
    /// only if it is the user's own regular file, not a symlink and not writable by group or
    /// others ([`crate::fsread::read_private`]).
    pub fn load(path: &Path) -> Result<Lock> {
        let bytes = match crate::fsread::read_private(path, crate::fsread::Kind::Stored) {
            Ok(bytes) => bytes,
            Err(e) if e.is_missing() => {
                return Ok(Lock {
                    version: 1,
                    providers: Vec::new(),
                });
            }
            Err(e) => return Err(Error::new(ErrorKind::CapabilityDenied, format!("lock {e}"))),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::validation(format!("lock file {} is not UTF-8", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| Error::validation(format!("lock file {} is invalid: {e}", path.display())))
    }

    /// Writes the lock file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text =
            toml::to_string_pretty(self).map_err(|e| Error::internal(format!("lock file: {e}")))?;
        crate::fswrite::write_atomic(path, text.as_bytes())
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&LockedProvider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// Adds or replaces the entry for its name.
    pub fn put(&mut self, entry: LockedProvider) {
        self.providers.retain(|p| p.name != entry.name);
        self.providers.push(entry);
        self.providers.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The files of a fetch as the lock records them.
pub fn locked_files(files: &[Fetched]) -> Vec<LockedFile> {
    let mut out: Vec<LockedFile> = files
        .iter()
        .map(|f| LockedFile {
            path: f.path.clone(),
            sha256: request::sha256(&f.bytes),
            size: f.bytes.len() as u64,
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Go's dirhash "h1": sha256 over `<sha256>  <path>\n` lines sorted by path, base64.
pub fn digest(files: &[LockedFile]) -> String {
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(format!("{}  {}\n", f.sha256, f.path));
    }
    format!("h1:{}", base64(&hasher.finalize()))
}

/// Refuses a fetch whose files differ from the lock's, naming file, expected and actual.
pub fn verify(entry: &LockedProvider, files: &[Fetched]) -> Result<()> {
    let got = locked_files(files);
    for want in &entry.files {
        match got.iter().find(|g| g.path == want.path) {
            None => {
                return Err(mismatch(format!(
                    "provider '{}': file {} is in the lock but not in the source",
                    entry.name, want.path
                )));
            }
            Some(g) if g.sha256 != want.sha256 => {
                return Err(mismatch(format!(
                    "provider '{}': file {} has sha256 {} but the lock records {}; the source \
                     changed. If you trust the change, review it with `cpi update {}`",
                    entry.name, want.path, g.sha256, want.sha256, entry.name
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = got
        .iter()
        .find(|g| !entry.files.iter().any(|w| w.path == g.path))
    {
        return Err(mismatch(format!(
            "provider '{}': file {} is not in the lock",
            entry.name, extra.path
        )));
    }
    Ok(())
}

fn mismatch(msg: String) -> Error {
    Error::new(ErrorKind::Validation, msg)
}

/// Writes a fetch into the content-addressed store (temp directory, then a no-clobber rename)
/// and returns the entry's directory. An existing entry must hold exactly these bytes. The
/// store's trust is decided before anything is written there: a store directory someone else
/// can write is refused, never `chmod`-ed and then believed.
pub fn store(store_dir: &Path, files: &[Fetched]) -> Result<PathBuf> {
    let io = |e: std::io::Error| {
        Error::internal(format!(
            "cannot write the store {}: {e}",
            store_dir.display()
        ))
    };
    let locked = locked_files(files);
    let id = request::sha256(digest(&locked).as_bytes());
    let entry = store_dir.join(&id);
    if std::fs::symlink_metadata(store_dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(store_dir)
            .map_err(io)?;
        if let Some(parent) = store_dir.parent() {
            crate::fswrite::sync_dir(parent).map_err(io)?;
        }
    }
    check_store_dir(store_dir)?;
    if std::fs::symlink_metadata(&entry).is_ok() {
        check_store_dir(&entry)?;
        for f in files {
            let on_disk = read_capped(&entry.join(&f.path), MAX_COMPONENT)?;
            if on_disk != f.bytes {
                return Err(mismatch(format!(
                    "the store entry {} was modified ({}); remove it and install again",
                    entry.display(),
                    f.path
                )));
            }
        }
        return Ok(entry);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(store_dir)
        .map_err(io)?;
    // Every file and directory is on disk before the rename makes the entry visible, and the
    // rename is before the lock names it: after a power loss the lock never points at an
    // entry with empty files.
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let path = tmp.path().join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
            dirs.extend(
                parent
                    .ancestors()
                    .take_while(|d| d.starts_with(tmp.path()))
                    .map(Path::to_path_buf),
            );
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .and_then(|mut file| file.write_all(&f.bytes).and_then(|()| file.sync_all()))
            .map_err(io)?;
    }
    for dir in dirs.iter().rev() {
        crate::fswrite::sync_dir(dir).map_err(io)?;
    }
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, &entry) {
        let _ = std::fs::remove_dir_all(&kept);
        if !entry.is_dir() {
            return Err(io(e));
        }
    }
    crate::fswrite::sync_dir(store_dir).map_err(io)?;
    Ok(entry)
}

/// Whether a store directory (the store, or one entry in it) may be believed: the user's own
/// directory, not a symlink, not writable by group or others.
fn check_store_dir(dir: &Path) -> Result<()> {
    let denied = |problem: crate::fsread::Problem| {
        Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "provider store {}: {problem}",
                crate::escape::line(&dir.display().to_string())
            ),
        )
    };
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(denied(
            crate::fsread::Problem::NotPrivate("it is a symlink".into()),
        )),
        _ => crate::fsread::check_private_dir(dir).map_err(|e| denied(e.problem)),
    }
}

/// The store directories of every installed provider (searched like provider directories).
/// The lock file and the store are stored trust: one someone else could have written is an
/// error naming it, not a provider directory.
pub fn installed_dirs() -> Result<Vec<PathBuf>> {
    let (Some(lock), Some(store)) = (default_lock_path(), default_store_dir()) else {
        return Ok(Vec::new());
    };
    let lock = Lock::load(&lock)?;
    if lock.providers.is_empty() {
        return Ok(Vec::new());
    }
    check_store_dir(&store)?;
    let mut dirs = Vec::new();
    for p in &lock.providers {
        let dir = store.join(request::sha256(p.digest.as_bytes()));
        if std::fs::symlink_metadata(&dir).is_err() {
            continue;
        }
        check_store_dir(&dir)?;
        dirs.push(dir);
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!(
            Source::parse("git+file:///tmp/r.git@v1.2#hetzner").unwrap(),
            Source::Git {
                url: "file:///tmp/r.git".into(),
                rev: "v1.2".into(),
                subdir: "hetzner".into()
            }
        );
        assert_eq!(
            Source::parse("git+ssh://git@host/r.git").unwrap(),
            Source::Git {
                url: "ssh://git@host/r.git".into(),
                rev: "HEAD".into(),
                subdir: String::new()
            }
        );
        assert!(Source::parse("git+--upload-pack=x").is_err());
        assert!(Source::parse("git+file:///r#../x").is_err());
        assert_eq!(
            Source::parse("https://x/p.json").unwrap(),
            Source::Url("https://x/p.json".into())
        );
    }

    #[tokio::test]
    async fn a_git_blob_is_read_no_further_than_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().display().to_string();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(["-C", &repo, "-c", "user.name=t", "-c", "user.email=t@e"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        run(&["init", "-q"]);
        std::fs::write(dir.path().join("p.wasm"), vec![b'x'; 1000]).unwrap();
        run(&["add", "."]);
        run(&["commit", "-q", "-m", "one"]);
        let commit = run(&["rev-parse", "HEAD"]);
        let object = format!("{commit}:p.wasm");
        // The read alone (as when the size asked first was wrong) stops at the cap.
        let read = ["-C", &repo, "cat-file", "blob", &object];
        let err = git(&read, 100, FETCH_TIMEOUT).await.unwrap_err();
        assert_eq!(err.details()["limit_bytes"], 100, "{err}");
        assert!(
            err.message()
                .starts_with("git cat-file printed more than 100 bytes"),
            "{err}"
        );
        let err = git_blob(&repo, &commit, "p.wasm", 999, FETCH_TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert!(err.message().contains("p.wasm (commit"), "{err}");
        assert!(
            err.message().contains("is 1000 bytes; at most 999"),
            "{err}"
        );
        let bytes = git_blob(&repo, &commit, "p.wasm", 1000, FETCH_TIMEOUT).await;
        assert_eq!(bytes.unwrap().len(), 1000);
    }

    #[tokio::test]
    async fn a_clone_writes_no_file_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let git_in = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(&src)
                .args(["-c", "user.name=t", "-c", "user.email=t@e"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        std::fs::create_dir(&src).unwrap();
        git_in(&["init", "-q"]);
        // 2 MB that do not compress, sent over a transport (file://, not hard links).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..2_000_000)
            .map(|_| {
                // xorshift64: bytes zlib cannot shrink.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        std::fs::write(src.join("p.wasm"), noise).unwrap();
        git_in(&["add", "."]);
        git_in(&["commit", "-q", "-m", "one"]);
        let url = format!("file://{}", src.display());
        let out = dir.path().join("out.git").display().to_string();
        let clone = [
            "clone",
            "--quiet",
            "--bare",
            "--",
            url.as_str(),
            out.as_str(),
        ];
        let limits = |file| crate::exec::Limits {
            timeout: FETCH_TIMEOUT,
            max_output: MAX_GIT_LISTING,
            max_stderr: 16 << 10,
            max_file_bytes: Some(file),
        };
        let err = git_limited(&clone, &limits(1 << 20)).await.unwrap_err();
        assert!(
            err.message()
                .contains("may write no file over 1048576 bytes"),
            "{err}"
        );
        std::fs::remove_dir_all(&out).ok();
        git_limited(&clone, &limits(MAX_GIT_FILE)).await.unwrap();
    }
    #[test]
    fn digest_matches_go_dirhash() {
        // Go: dirhash.Hash1 over one file "a.json" holding "hello\n".
        let files = locked_files(&[Fetched {
            path: "a.json".into(),
            bytes: b"hello\n".to_vec(),
        }]);
        assert_eq!(
            files[0].sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(base64(b"hi!?"), "aGkhPw==");
        assert!(digest(&files).starts_with("h1:"));
    }
}
