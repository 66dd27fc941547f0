//! The providers shipped with cpi, built into the binary by `host/build.rs`: versioned with it,
//! trusted as cpi itself is, and found from any directory. Their fixtures come along, so
//! `cpi test` and `cpi docs` work on them without the repository.

use std::path::PathBuf;

use super::{Origin, Provider};
use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// The directory name shown for built-in files (`<built-in>/aws-ec2.json`); never read.
pub const SOURCE_DIR: &str = "<built-in>";

/// Every shipped provider, loaded and marked [`Origin::BuiltIn`].
pub fn providers() -> Vec<Result<Provider>> {
    PROVIDERS
        .iter()
        .map(|(file, text)| load(file, text))
        .collect()
}

/// The shipped provider named `name`, loaded.
pub fn provider(name: &str) -> Result<Provider> {
    let text = text(name).ok_or_else(|| {
        Error::validation(format!(
            "no built-in provider named '{}'",
            crate::escape::line(name)
        ))
    })?;
    load(&format!("{name}.json"), text)
}

/// The text of the shipped provider named `name`, if there is one.
pub fn text(name: &str) -> Option<&'static str> {
    PROVIDERS
        .iter()
        .find(|(file, _)| file.strip_suffix(".json") == Some(name))
        .map(|(_, text)| *text)
}

/// The fixtures of the shipped provider `name`: (file name, text), sorted by file name.
pub fn fixtures(name: &str) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
    FIXTURES
        .iter()
        .filter(move |(dir, _, _)| *dir == name)
        .map(|(_, file, text)| (*file, *text))
}

/// The path shown for a built-in file (`<built-in>/aws-ec2.json`).
pub fn shown_path(file: &str) -> PathBuf {
    PathBuf::from(SOURCE_DIR).join(file)
}

fn load(file: &str, text: &str) -> Result<Provider> {
    let mut provider = Provider::from_json(text, &shown_path(file))?;
    if provider.component.is_some() {
        return Err(Error::internal(format!(
            "built-in provider {file} names a component; built-in providers are JSON only"
        )));
    }
    provider.origin = Origin::BuiltIn;
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_provider_is_built_in_under_its_file_name() {
        let loaded: Vec<Provider> = providers().into_iter().map(|p| p.unwrap()).collect();
        assert!(loaded.len() >= 11);
        for provider in &loaded {
            assert!(provider.is_builtin());
            assert!(text(&provider.name).is_some_and(|t| !t.is_empty()));
            assert!(fixtures(&provider.name).next().is_some() || provider.name == "truenas");
        }
    }
}
