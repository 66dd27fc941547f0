//! The config file: per-provider parameter values (`[providers.NAME]` tables in TOML).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parsed config: provider name → parameter values.
#[derive(Debug, Clone, Default)]
pub struct Config {
    providers: Map<String, Value>,
}

/// The default config path: `$XDG_CONFIG_HOME/cpi/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("cpi").join("config.toml"))
}

impl Config {
    /// Loads `path`; a missing file is an empty config unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(err) => {
                return Err(Error::validation(format!(
                    "cannot read config file {}: {err}",
                    path.display()
                )));
            }
        };
        Config::parse(&text, path)
    }

    /// Parses config text; `path` is named in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let bad = |why: String| Error::validation(format!("config file {}: {why}", path.display()));
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
        let json = serde_json::to_value(&table).map_err(|e| bad(e.to_string()))?;
        let mut providers = Map::new();
        if let Some(section) = json.get("providers") {
            let Value::Object(map) = section else {
                return Err(bad("`providers` must be a table".into()));
            };
            for (name, values) in map {
                if !values.is_object() {
                    return Err(bad(format!(
                        "`providers.{name}` must be a table of parameter values"
                    )));
                }
                providers.insert(name.clone(), values.clone());
            }
        }
        Ok(Config { providers })
    }

    /// The parameter values configured for `provider`.
    pub fn provider(&self, provider: &str) -> Map<String, Value> {
        match self.providers.get(provider) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_provider_tables() {
        let c = Config::parse(
            "[providers.truenas]\napi_url = \"http://x\"\nport = 8\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.provider("truenas")["api_url"], "http://x");
        assert!(c.provider("other").is_empty());
        let err = Config::parse("providers = 3", Path::new("c.toml")).unwrap_err();
        assert!(err.message().contains("c.toml"));
    }
}
