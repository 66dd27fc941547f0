//! Provider discovery (§8.1): every `*.json` file in the search directories, by name.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::Provider;
use crate::error::{Error, Result};

/// The directories searched by default, in order: `./providers`, then
/// `$XDG_CONFIG_HOME/cpi/providers` (or the platform's user config dir).
pub fn default_search_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("providers")];
    if let Some(config) = dirs::config_dir() {
        dirs.push(config.join("cpi").join("providers"));
    }
    dirs
}

/// The providers found on disk, by name, plus the files that failed to load.
#[derive(Debug, Default)]
pub struct Registry {
    providers: IndexMap<String, Provider>,
    problems: Vec<Error>,
}

impl Registry {
    /// Loads every `*.json` file in `dirs` (missing directories are skipped).
    ///
    /// A file that fails to parse is recorded in [`Registry::problems`] and does not stop the
    /// others from loading; two files declaring the same provider name are an error naming both.
    pub fn discover(dirs: &[PathBuf]) -> Result<Registry> {
        let mut registry = Registry::default();
        // The same directory named twice (`--provider-dir providers` from the repo root) is
        // searched once.
        let mut seen = Vec::new();
        for dir in dirs {
            let canonical = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if seen.contains(&canonical) {
                continue;
            }
            seen.push(canonical);
            for path in provider_files(dir)?.into_iter().chain(component_files(dir)) {
                let loaded = if path.extension().is_some_and(|e| e == "wasm") {
                    Provider::standalone_component(&path)
                } else {
                    Provider::load(&path)
                };
                match loaded {
                    Ok(provider) => registry.insert(provider)?,
                    Err(err) => registry.problems.push(err),
                }
            }
        }
        registry.providers.sort_keys();
        Ok(registry)
    }

    /// Adds one provider; a duplicate name is a validation error naming both files.
    pub fn insert(&mut self, provider: Provider) -> Result<()> {
        if let Some(existing) = self.providers.get(&provider.name) {
            return Err(Error::validation(format!(
                "duplicate provider name '{}': defined in both {} and {}",
                provider.name,
                existing.source.display(),
                provider.source.display()
            ))
            .with_detail("provider", provider.name.clone())
            .with_detail(
                "files",
                vec![
                    existing.source.display().to_string(),
                    provider.source.display().to_string(),
                ],
            ));
        }
        self.providers.insert(provider.name.clone(), provider);
        Ok(())
    }

    /// Looks a provider up by name, with an error listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Provider> {
        self.providers.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            let mut msg = format!("no provider named '{name}'");
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

    /// All loaded providers, sorted by name.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// Files that were found but could not be loaded.
    pub fn problems(&self) -> &[Error] {
        &self.problems
    }
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
pub(crate) fn provider_files(dir: &Path) -> Result<Vec<PathBuf>> {
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
    fn duplicate_names_name_both_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "one.json", "same");
        write(b.path(), "two.json", "same");
        let err = Registry::discover(&[a.path().into(), b.path().into()]).unwrap_err();
        assert!(
            err.message().contains("one.json") && err.message().contains("two.json"),
            "{err}"
        );
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
