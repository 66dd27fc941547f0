//! `cpi install`, `cpi update`, `cpi uninstall`: providers from a source into the
//! content-addressed store, recorded in the lock file, approved as they are installed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cpi::escape;
use cpi::install::{self, Fetch, FetchOptions, Lock, LockedProvider, Source};
use cpi::{Error, ErrorKind, Provider, Result};

use super::grant::{self, Choice};
use super::{registry, runtime};
use crate::cli::{Global, InstallArgs};
use crate::output::outln;

/// The arguments of `cpi install`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the provider comes from (not with --locked).
    #[arg(required_unless_present = "locked", conflicts_with = "locked")]
    pub source: Option<String>,
    #[command(flatten)]
    pub opts: InstallArgs,
    /// Install every provider of the lock file exactly as recorded.
    #[arg(long)]
    pub locked: bool,
    /// The sha256 the provider file must have.
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
}

/// Installs one provider, or (`--locked`) every provider of the lock file.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    let options = Options::from_args(args.opts, args.sha256);
    match args.source {
        Some(source) if !args.locked => install(g, &source, &options),
        _ => install_locked(g, &options),
    }
}

impl Options {
    /// The options of `install`, `update` and `uninstall` (`sha256` only for `install`).
    pub fn from_args(opts: crate::cli::InstallArgs, sha256: Option<String>) -> Options {
        Options {
            yes: opts.yes,
            approve: opts.approve,
            sha256,
            allow_http_loopback: opts.allow_http_loopback,
            fetch_timeout: opts.fetch_timeout,
            lock: opts.lock,
        }
    }
}

/// What `cpi install` was given.
pub struct Options {
    /// Approve without asking.
    pub yes: bool,
    /// Approve without asking only this capability digest (`--approve`).
    pub approve: Option<String>,
    /// The sha256 the provider file must have.
    pub sha256: Option<String>,
    /// Allow plain http to a loopback address.
    pub allow_http_loopback: bool,
    /// Wall-clock limit of each git command and each download.
    pub fetch_timeout: std::time::Duration,
    /// The lock file to read (`--locked`) or write.
    pub lock: Option<PathBuf>,
}

fn paths(options: &Options) -> Result<(PathBuf, PathBuf)> {
    let lock = options
        .lock
        .clone()
        .or_else(install::default_lock_path)
        .ok_or_else(|| Error::internal("no user config directory for the lock file"))?;
    let store = install::default_store_dir()
        .ok_or_else(|| Error::internal("no user data directory for the store"))?;
    Ok((lock, store))
}

fn choice(yes: bool, approve: Option<&str>) -> Choice<'_> {
    Choice {
        yes,
        approve,
        all: false,
        run: &[],
        net: &[],
        env: &[],
        nested: true,
    }
}

/// A progress line: stdout for tables, stderr when stdout carries JSON.
fn note(g: &Global, line: &str) {
    if g.json {
        eprintln!("{line}");
    } else {
        outln!("{line}");
    }
}

/// Provider names are `[a-z0-9][a-z0-9_-]*`.
fn check_name(name: &str) -> Result<()> {
    let ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "provider name {:?} is not [a-z0-9][a-z0-9_-]*",
            escape::line(name)
        )))
    }
}

/// Stores a fetch, loads the stored provider, reviews it and asks for approval; the store
/// entry, the provider and whether it was approved.
fn store_and_approve(
    g: &Global,
    fetch: &Fetch,
    store: &Path,
    yes: bool,
    approve: Option<&str>,
) -> Result<(PathBuf, Provider)> {
    let entry = install::store(store, &fetch.files)?;
    let provider = Provider::load(&entry.join(&fetch.files[0].path))?;
    check_name(&provider.name)?;
    let approved = match provider.component {
        None => grant::grant_json(g, &provider, &choice(yes, approve))?,
        Some(_) => grant::grant_component(g, &provider, &choice(yes, approve))?,
    };
    if !approved {
        return Err(Error::new(
            ErrorKind::CapabilityDenied,
            format!(
                "'{}' was not installed: it was not approved (pass --yes, or --approve with its capability digest, in scripts)",
                escape::line(&provider.name)
            ),
        ));
    }
    Ok((entry, provider))
}

fn lock_entry(provider: &Provider, source: &Source, fetch: &Fetch) -> Result<LockedProvider> {
    let files = install::locked_files(&fetch.files);
    let capabilities = match provider.component {
        None => cpi::request::derive(provider)?.digest(),
        Some(_) => String::new(),
    };
    Ok(LockedProvider {
        name: provider.name.clone(),
        kind: if provider.component.is_some() {
            "component"
        } else {
            "json"
        }
        .into(),
        source: source.describe(),
        requested: match source {
            Source::Git { rev, .. } => Some(rev.clone()),
            _ => None,
        },
        revision: fetch.revision.clone(),
        digest: install::digest(&files),
        capabilities,
        files,
    })
}

/// `cpi install SOURCE`.
fn install(g: &Global, source: &str, options: &Options) -> Result<ExitCode> {
    let (lock_path, store) = paths(options)?;
    let source = Source::parse(source)?;
    let fetch = runtime()?.block_on(install::fetch(
        &source,
        &FetchOptions {
            allow_http_loopback: options.allow_http_loopback,
            timeout: options.fetch_timeout,
            revision: None,
        },
    ))?;
    let json_sha = cpi::request::sha256(&fetch.files[0].bytes);
    match (&options.sha256, &source) {
        (Some(want), _) if want.trim_start_matches("sha256:") != json_sha => {
            return Err(Error::validation(format!(
                "the downloaded provider file has sha256 {json_sha}, not {want}: refused"
            )));
        }
        (None, Source::Url(_)) => eprintln!(
            "notice: no --sha256 given: trusting this download on first use (sha256 {json_sha}); \
             the lock file pins it from now on"
        ),
        _ => {}
    }
    let mut lock = Lock::load(&lock_path)?;
    let name_in_file = Provider::from_json(
        &String::from_utf8_lossy(&fetch.files[0].bytes),
        Path::new(&fetch.files[0].path),
    )?
    .name;
    check_name(&name_in_file)?;
    if lock.get(&name_in_file).is_none()
        && let Ok(existing) = registry(g)?.get(&name_in_file)
    {
        return Err(Error::validation(format!(
            "a provider named '{}' already exists ({}); uninstall or rename one",
            escape::line(&name_in_file),
            existing.source.display()
        )));
    }
    let (entry, provider) =
        store_and_approve(g, &fetch, &store, options.yes, options.approve.as_deref())?;
    lock.version = 1;
    lock.put(lock_entry(&provider, &source, &fetch)?);
    lock.save(&lock_path)?;
    if g.json {
        let locked = lock.get(&provider.name);
        crate::output::print_machine(
            g,
            &serde_json::json!({"installed": provider.name,
            "source": source.describe(), "store": entry.display().to_string(),
            "lock": lock_path.display().to_string(), "entry": locked}),
        );
    } else {
        outln!(
            "installed {} from {} into {}; recorded in {}",
            escape::line(&provider.name),
            escape::line(&source.describe()),
            entry.display(),
            lock_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn source_of(entry: &LockedProvider) -> Result<Source> {
    let source = Source::parse(&entry.source)?;
    Ok(match source {
        Source::Git { url, subdir, .. } => Source::Git {
            url,
            subdir,
            rev: entry.requested.clone().unwrap_or_else(|| "HEAD".into()),
        },
        other => other,
    })
}

/// `cpi install --locked`: every provider of the lock, exactly as recorded, or nothing.
fn install_locked(g: &Global, options: &Options) -> Result<ExitCode> {
    let (lock_path, store) = paths(options)?;
    let lock = Lock::load(&lock_path)?;
    if lock.providers.is_empty() {
        return Err(Error::validation(format!(
            "{} records no providers",
            lock_path.display()
        )));
    }
    let rt = runtime()?;
    let mut fetched = Vec::new();
    for entry in &lock.providers {
        let fetch = rt.block_on(install::fetch(
            &source_of(entry)?,
            &FetchOptions {
                allow_http_loopback: options.allow_http_loopback,
                timeout: options.fetch_timeout,
                revision: entry.revision.clone(),
            },
        ))?;
        install::verify(entry, &fetch.files)?;
        fetched.push(fetch);
    }
    let user_lock = install::default_lock_path();
    let mut mine = match &user_lock {
        Some(p) if *p != lock_path => Some(Lock::load(p)?),
        _ => None,
    };
    for (entry, fetch) in lock.providers.iter().zip(&fetched) {
        store_and_approve(g, fetch, &store, options.yes, options.approve.as_deref())?;
        if let Some(mine) = &mut mine {
            mine.version = 1;
            mine.put(entry.clone());
        }
        note(
            g,
            &format!(
                "installed {} exactly as locked ({})",
                escape::line(&entry.name),
                entry.digest
            ),
        );
    }
    if let (Some(mine), Some(path)) = (mine, user_lock) {
        mine.save(&path)?;
    }
    if g.json {
        let names: Vec<&str> = lock.providers.iter().map(|p| p.name.as_str()).collect();
        crate::output::print_machine(g, &serde_json::json!({"installed": names}));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cpi update [NAME]`: fetch again; unchanged → nothing; grown → review and ask again.
pub fn update(g: &Global, name: Option<&str>, options: &Options) -> Result<ExitCode> {
    let (lock_path, store) = paths(options)?;
    let mut lock = Lock::load(&lock_path)?;
    let names: Vec<String> = match name {
        Some(n) => {
            lock.get(n).ok_or_else(|| {
                Error::validation(format!("'{}' is not installed", escape::line(n)))
            })?;
            vec![n.to_string()]
        }
        None => lock.providers.iter().map(|p| p.name.clone()).collect(),
    };
    let rt = runtime()?;
    for name in names {
        let entry = lock.get(&name).cloned().expect("listed");
        let source = source_of(&entry)?;
        let fetch = rt.block_on(install::fetch(
            &source,
            &FetchOptions {
                allow_http_loopback: options.allow_http_loopback,
                timeout: options.fetch_timeout,
                revision: None,
            },
        ))?;
        let files = install::locked_files(&fetch.files);
        if install::digest(&files) == entry.digest {
            note(g, &format!("{}: up to date", escape::line(&name)));
            continue;
        }
        for f in &files {
            match entry.files.iter().find(|o| o.path == f.path) {
                None => note(
                    g,
                    &format!("{}: + {}", escape::line(&name), escape::line(&f.path)),
                ),
                Some(o) if o.sha256 != f.sha256 => note(
                    g,
                    &format!("{}: ~ {}", escape::line(&name), escape::line(&f.path)),
                ),
                Some(_) => {}
            }
        }
        let entry_dir = install::store(&store, &fetch.files)?;
        let provider = Provider::load(&entry_dir.join(&fetch.files[0].path))?;
        let grown = grows(&provider)?;
        let yes = options.yes || !grown;
        if !grown {
            note(
                g,
                &format!(
                    "{}: what it asks for did not grow; moving the approval to the new version",
                    escape::line(&name)
                ),
            );
        }
        store_and_approve(g, &fetch, &store, yes, options.approve.as_deref())?;
        lock.put(lock_entry(&provider, &source, &fetch)?);
        lock.save(&lock_path)?;
        note(g, &format!("{}: updated", escape::line(&name)));
    }
    if g.json {
        crate::output::print_machine(g, &serde_json::json!({"updated": true}));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a provider asks for more than its stored approval (always, for components and
/// for providers without one).
fn grows(provider: &Provider) -> Result<bool> {
    if provider.component.is_some() {
        return Ok(true);
    }
    let old = grant::store()?
        .load(&provider.name)?
        .and_then(|g| g.request);
    let Some(old) = old else { return Ok(true) };
    Ok(!cpi::request::derive(provider)?
        .growth_since(&old)
        .is_empty())
}

/// `cpi uninstall NAME`: out of the lock, its approval removed, its store entry deleted.
pub fn uninstall(g: &Global, name: &str, options: &Options) -> Result<ExitCode> {
    let (lock_path, store) = paths(options)?;
    let mut lock = Lock::load(&lock_path)?;
    let Some(entry) = lock.get(name).cloned() else {
        return Err(Error::validation(format!(
            "'{}' is not installed",
            escape::line(name)
        )));
    };
    lock.providers.retain(|p| p.name != name);
    lock.save(&lock_path)?;
    grant::store()?.remove(name)?;
    if !lock.providers.iter().any(|p| p.digest == entry.digest) {
        let dir = store.join(cpi::request::sha256(entry.digest.as_bytes()));
        let _ = std::fs::remove_dir_all(dir);
    }
    if g.json {
        crate::output::print_machine(g, &serde_json::json!({"uninstalled": name}));
    } else {
        outln!("uninstalled {}", escape::line(name));
    }
    Ok(ExitCode::SUCCESS)
}
