//! Provider discovery (§8.1): the built-in providers, then every `*.json` and standalone
//! `*.wasm` file in the search directories, by name.
//!
//! The working directory is never searched: a cloned repository must not add, shadow or
//! break a provider by carrying a `providers/` directory. Project directories come only from
//! `--provider-dir` or the user config's `provider_dirs`. A name declared twice is an error for
//! that name alone; every other provider keeps working.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{Provider, builtin};
use crate::error::{Error, Result};
use crate::fsread::{self, Kind};

/// The directories searched by default: the user's own `$XDG_CONFIG_HOME/cpi/providers` (or
/// the platform's user config dir). Never `./providers`.
pub fn default_search_dirs() -> Vec<PathBuf> {
    dirs::config_dir()
        .map(|config| config.join("cpi").join("providers"))
        .into_iter()
        .collect()
}

/// The providers found, by name, plus the files that failed to load and the names that more
/// than one source declares.
#[derive(Debug, Default)]
pub struct Registry {
    providers: IndexMap<String, Provider>,
    /// Names declared by more than one source, with every source: such a name is refused.
    conflicts: IndexMap<String, Vec<PathBuf>>,
    problems: Vec<Error>,
    /// Built-in providers are loaded only when named (see [`Registry::for_name`]).
    lazy_builtins: bool,
}

impl Registry {
    /// The built-in providers plus every provider file in `dirs` (see [`Registry::discover`]).
    pub fn with_builtins(dirs: &[PathBuf]) -> Result<Registry> {
        let mut registry = Registry::default();
        for loaded in builtin::providers() {
            match loaded {
                Ok(provider) => registry.insert(provider),
                Err(err) => registry.problems.push(err),
            }
        }
        registry.add_dirs(dirs)?;
        Ok(registry)
    }

    /// What [`Registry::get`]`(name)` needs, and no more: the built-in provider `name` (when
    /// there is one) and every file in `dirs`. A built-in provider of another name is loaded
    /// only when a file declares that name too, so that copies and conflicts are judged as
    /// [`Registry::with_builtins`] judges them: `get(name)`, [`Registry::problems`] and
    /// [`Registry::conflicts`] answer as they would there, while [`Registry::providers`]
    /// lacks the built-in providers nobody named. A `cpi run` parses one built-in file, not
    /// all of them.
    pub fn for_name(dirs: &[PathBuf], name: &str) -> Result<Registry> {
        let mut registry = Registry {
            lazy_builtins: true,
            ..Registry::default()
        };
        registry.load_builtin(name);
        registry.add_dirs(dirs)?;
        Ok(registry)
    }

    /// With lazy built-ins, loads the built-in provider `name` (if there is one) unless it is
    /// in already.
    fn load_builtin(&mut self, name: &str) {
        if !self.lazy_builtins
            || self.providers.contains_key(name)
            || self.conflicts.contains_key(name)
            || builtin::text(name).is_none()
        {
            return;
        }
        match builtin::provider(name) {
            Ok(provider) => self.insert(provider),
            Err(err) => self.problems.push(err),
        }
    }

    /// Loads every `*.json` file in `dirs` (missing directories are skipped), without the
    /// built-in providers.
    ///
    /// A file that fails to load is recorded in [`Registry::problems`] and does not stop the
    /// others; a name two files declare is refused by [`Registry::get`], naming both.
    pub fn discover(dirs: &[PathBuf]) -> Result<Registry> {
        let mut registry = Registry::default();
        registry.add_dirs(dirs)?;
        Ok(registry)
    }

    fn add_dirs(&mut self, dirs: &[PathBuf]) -> Result<()> {
        // The same directory named twice (`--provider-dir providers` from the repo root) is
        // searched once.
        let mut seen = Vec::new();
        for dir in dirs {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            // A `NAME.wasm` that provider file `NAME` of this directory names as its
            // `component` is that provider's, not a standalone provider `NAME` conflicting
            // with it (under another name it is both: a standalone provider and a component).
            let mut claimed: Vec<PathBuf> = Vec::new();
            for path in provider_files(dir)?.into_iter().chain(component_files(dir)) {
                if claimed.contains(&path.canonicalize().unwrap_or_else(|_| path.clone())) {
                    continue;
                }
                let loaded = load_file(&path);
                if let Ok((provider, _)) = &loaded {
                    self.load_builtin(&provider.name);
                }
                match loaded {
                    Ok((provider, text)) if self.is_builtin_copy(&provider, text.as_deref()) => {}
                    Ok((provider, _)) => {
                        if let Some(component) = provider.component_path()
                            && component.file_stem() == Some(provider.name.as_ref())
                        {
                            claimed.push(component.canonicalize().unwrap_or(component));
                        }
                        self.insert(provider);
                    }
                    Err(err) => self.problems.push(err),
                }
            }
        }
        self.providers.sort_keys();
        Ok(())
    }

    /// A file holding exactly the bytes of the built-in provider of its name (a checkout's
    /// `providers/`) is that provider, not a second one.
    fn is_builtin_copy(&self, provider: &Provider, text: Option<&str>) -> bool {
        self.providers
            .get(&provider.name)
            .is_some_and(|existing| existing.is_builtin())
            && text.is_some()
            && text == builtin::text(&provider.name)
    }

    /// Adds one provider. A name that is already taken becomes a conflict: [`Registry::get`]
    /// refuses it, naming every file that declares it, and lists no provider under it.
    pub fn insert(&mut self, provider: Provider) {
        if let Some(sources) = self.conflicts.get_mut(&provider.name) {
            sources.push(provider.source);
            return;
        }
        match self.providers.shift_remove(&provider.name) {
            Some(existing) => {
                let sources = vec![existing.source, provider.source];
                self.conflicts.insert(provider.name, sources);
            }
            None => {
                self.providers.insert(provider.name.clone(), provider);
            }
        }
    }

    /// Looks a provider up by name, with an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        if let Some(sources) = self.conflicts.get(name) {
            return Err(conflict(name, sources));
        }
        self.providers.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            let mut msg = format!("no provider named '{}'", crate::escape::line(name));
            if known.is_empty() {
                msg.push_str(" (no providers found; use --provider-dir DIR)");
            } else {
                msg.push_str(&format!(" (known: {})", known.join(", ")));
            }
            for problem in &self.problems {
                msg.push_str(&format!("; note: {}", problem.message()));
            }
            Error::validation(msg).with_detail("provider", name)
        })
    }

    /// All loaded providers whose name is not in conflict, sorted by name.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// Files that were found but could not be loaded.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }

    /// One error per name declared by more than one source (see [`Registry::insert`]).
    pub fn conflicts(&self) -> Vec<Error> {
        self.conflicts
            .iter()
            .map(|(name, sources)| conflict(name, sources))
            .collect()
    }
}

/// The error for a name several sources declare: names them all and says what to do.
fn conflict(name: &str, sources: &[PathBuf]) -> Error {
    let shown: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
    let builtin = sources.iter().any(|s| s.starts_with(builtin::SOURCE_DIR));
    let fix = if builtin {
        "a provider file may not reuse a built-in provider's name: rename yours (its \"name\") \
         or remove it"
    } else {
        "rename one of them (its \"name\") or remove it"
    };
    Error::validation(format!(
        "provider name '{name}' is declared more than once, so it is not used: {}; {fix}",
        crate::escape::line(&shown.join(", "))
    ))
    .with_detail("provider", name)
    .with_detail("files", shown)
}

/// Loads one provider file (or standalone component), with its text when it is JSON.
fn load_file(path: &Path) -> Result<(Provider, Option<String>)> {
    if path.extension().is_some_and(|e| e == "wasm") {
        return Ok((Provider::standalone_component(path)?, None));
    }
    let text = fsread::read_string(path, Kind::Provider)?;
    let provider = Provider::from_json(&text, path)?;
    Ok((provider, Some(text)))
}

/// Standalone component files (`*.wasm`) directly inside `dir`, sorted.
fn component_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm") && path.is_file())
        .collect();
    files.sort();
    files
}

/// The `*.json` files directly inside `dir`, sorted; a missing directory has none.
pub fn provider_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Error::validation(format!(
                "cannot read provider directory {}: {err}",
                dir.display()
            )));
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json") && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, name: &str) {
        let text = format!(
            r#"{{"name":"{name}","type":"command","actions":{{"test_install":{{"target":{{"Command":"true"}}}}}}}}"#
        );
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn a_duplicate_name_is_refused_alone_naming_both_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "one.json", "same");
        write(b.path(), "two.json", "same");
        write(b.path(), "other.json", "other");
        let registry = Registry::discover(&[a.path().into(), b.path().into()]).unwrap();
        let err = registry.get("same").unwrap_err();
        assert!(
            err.message().contains("one.json") && err.message().contains("two.json"),
            "{err}"
        );
        assert!(registry.get("other").is_ok());
        assert_eq!(registry.providers().count(), 1);
        assert_eq!(registry.conflicts().len(), 1);
    }

    #[test]
    fn a_built_in_name_in_a_file_is_refused_unless_it_is_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cloudco.json"),
            builtin::text("cloudco").unwrap(),
        )
        .unwrap();
        let registry = Registry::with_builtins(&[dir.path().into()]).unwrap();
        assert!(registry.get("cloudco").unwrap().is_builtin());
        write(dir.path(), "cloudco.json", "cloudco");
        let registry = Registry::with_builtins(&[dir.path().into()]).unwrap();
        let err = registry.get("cloudco").unwrap_err();
        assert!(err.message().contains("built-in"), "{err}");
        assert!(registry.get("truenas").unwrap().is_builtin());
    }

    #[test]
    fn a_registry_for_one_name_judges_it_as_the_full_registry_does() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mine.json", "mine");
        write(dir.path(), "clash.json", "gce");
        std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
        std::fs::write(
            dir.path().join("cloudco.json"),
            builtin::text("cloudco").unwrap(),
        )
        .unwrap();
        let dirs = [dir.path().to_path_buf()];
        let full = Registry::with_builtins(&dirs).unwrap();
        for name in ["cloudco", "truenas", "mine", "gce"] {
            let lazy = Registry::for_name(&dirs, name).unwrap();
            let (a, b) = (lazy.get(name), full.get(name));
            assert_eq!(a.is_ok(), b.is_ok(), "{name}");
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!((&a.source, a.origin), (&b.source, b.origin)),
                (Err(a), Err(b)) => assert_eq!(a.to_json(), b.to_json()),
                _ => unreachable!(),
            }
            let messages = |r: &Registry| -> Vec<String> {
                r.problems()
                    .iter()
                    .chain(&r.conflicts())
                    .map(|e| e.to_string())
                    .collect()
            };
            assert_eq!(messages(&lazy), messages(&full), "{name}");
        }
        // Only what was named, and what a file's name drew in, is parsed.
        let lazy = Registry::for_name(&dirs, "truenas").unwrap();
        let names: Vec<&str> = lazy.providers().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["cloudco", "mine", "truenas"]);
    }

    #[test]
    fn a_component_named_by_a_provider_file_is_not_a_second_provider() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"name":"cc","type":"command","component":"cc.wasm","actions":{}}"#;
        std::fs::write(dir.path().join("cc.json"), text).unwrap();
        std::fs::write(dir.path().join("cc.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("solo.wasm"), b"\0asm").unwrap();
        let text = r#"{"name":"other","type":"command","component":"solo.wasm","actions":{}}"#;
        std::fs::write(dir.path().join("other.json"), text).unwrap();
        let registry = Registry::discover(&[dir.path().into()]).unwrap();
        assert!(registry.get("cc").unwrap().source.ends_with("cc.json"));
        assert!(registry.get("solo").is_ok() && registry.get("other").is_ok());
        assert!(registry.conflicts().is_empty());
    }

    #[test]
    fn a_broken_file_does_not_hide_the_others() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "good.json", "good");
        std::fs::write(dir.path().join("bad.json"), "{ not json").unwrap();
        let registry = Registry::discover(&[dir.path().into()]).unwrap();
        assert!(registry.get("good").is_ok());
        assert_eq!(registry.problems().len(), 1);
        assert!(registry.problems()[0].message().contains("bad.json"));
    }
}
