//! What a component declares about itself: name, version and the capabilities it asks for.

/// The `cpi:provider` WIT package version this SDK is built against; [`Manifest`] reports it
/// as the component's `api-version`, and cpi refuses components built for another one (the
/// contract's, which a test checks against `wit/`).
pub use cpi_contract::API_VERSION;

/// A program the component asks to run, with its argument patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCapability {
    /// The program name (`cloudco-cli`).
    pub program: String,
    /// Argument patterns: an exact string, `*` for exactly one argument, or a trailing `**`
    /// for any remaining arguments; neither matches an option (`-x`) unless it starts with
    /// `-` itself (`-*`, `--output=*`, a trailing `-**`).
    pub args: Vec<String>,
}

/// Who a component is, what it asks to do, and which hooks it implements.
///
/// Built with chained calls; the SDK fills in [`API_VERSION`]. Nothing is granted by asking:
/// the user grants (a subset of) these capabilities, and every host call is checked against
/// the grant.
///
/// ```
/// use cpi_guest_sdk::Manifest;
///
/// let manifest = Manifest::new("cloudco-wasm", "0.1.0")
///     .command("cloudco-cli", &["worker", "-**"])
///     .http("http://127.0.0.1:8787")
///     .parses(&["list_workers"])
///     .invokes(&["get_worker"])
///     .maps_status();
/// assert_eq!(manifest.name(), "cloudco-wasm");
/// assert_eq!(manifest.invoked_actions(), ["get_worker"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) commands: Vec<CommandCapability>,
    pub(crate) http: Vec<String>,
    pub(crate) provider_json: Option<String>,
    pub(crate) parses: Vec<String>,
    pub(crate) invokes: Vec<String>,
    pub(crate) maps_status: bool,
    pub(crate) env: Vec<EnvVar>,
    pub(crate) parameters: Vec<Parameter>,
}

/// An environment variable the component's commands need (the user grants it, or not, with
/// `cpi grant NAME --env VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Why the component needs it, shown when asking for the grant.
    pub description: Option<String>,
}

/// The type of a declared parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any text (the default).
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// A parameter the component's actions take, declared like a provider definition's
/// `parameters` (shown by `cpi show` and `cpi grant`).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// The parameter's name.
    pub name: String,
    /// Its type.
    pub kind: ParamType,
    /// What it is.
    pub description: Option<String>,
    /// A regex the whole value must match.
    pub pattern: Option<String>,
    /// The only values accepted (empty: any).
    pub choices: Vec<String>,
    /// Smallest value (a number) or shortest length (a string).
    pub min: Option<f64>,
    /// Largest value (a number) or longest length (a string).
    pub max: Option<f64>,
    /// Whether the value is a secret whatever its name.
    pub secret: bool,
}

impl Parameter {
    /// A parameter `name` of type `kind`, with nothing else declared.
    pub fn new(name: impl Into<String>, kind: ParamType) -> Parameter {
        Parameter {
            name: name.into(),
            kind,
            description: None,
            pattern: None,
            choices: Vec::new(),
            min: None,
            max: None,
            secret: false,
        }
    }

    /// What the parameter is.
    pub fn description(mut self, text: impl Into<String>) -> Parameter {
        self.description = Some(text.into());
        self
    }

    /// A regex the whole value must match.
    pub fn pattern(mut self, regex: impl Into<String>) -> Parameter {
        self.pattern = Some(regex.into());
        self
    }

    /// Marks the value as a secret.
    pub fn secret(mut self) -> Parameter {
        self.secret = true;
        self
    }
}

impl Manifest {
    /// A manifest for provider `name` (`cpi run NAME ...`; letters, digits, `-` and `_`) at
    /// the component's own `version`, asking for nothing.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Manifest {
        Manifest {
            name: name.into(),
            version: version.into(),
            commands: Vec::new(),
            http: Vec::new(),
            provider_json: None,
            parses: Vec::new(),
            invokes: Vec::new(),
            maps_status: false,
            env: Vec::new(),
            parameters: Vec::new(),
        }
    }

    /// Asks for the environment variable `name` for the component's commands, saying why.
    pub fn env(mut self, name: &str, description: &str) -> Manifest {
        self.env.push(EnvVar {
            name: name.to_string(),
            description: Some(description.to_string()).filter(|d| !d.is_empty()),
        });
        self
    }

    /// Declares a parameter the component's actions take.
    pub fn parameter(mut self, parameter: Parameter) -> Manifest {
        self.parameters.push(parameter);
        self
    }

    /// Asks to run `program` with arguments matching `args`: each pattern is an exact string,
    /// `*` (exactly one argument) or, last, `**` (any remaining arguments); a wildcard matches
    /// an option (`-x`) only when it starts with `-` (`-*`, `--output=*`, `-**`). Without it, every
    /// [`exec::Command`](crate::exec::Command) for `program` is refused.
    pub fn command(mut self, program: &str, args: &[&str]) -> Manifest {
        self.commands.push(CommandCapability {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
        self
    }

    /// Asks to reach an HTTP destination: `scheme://host:port`, optionally with a path prefix
    /// (`https://api.example.com:443/v1`).
    pub fn http(mut self, destination: &str) -> Manifest {
        self.http.push(destination.to_string());
        self
    }

    /// Ships a full provider definition (provider JSON text), making the component
    /// standalone: cpi takes the actions, parameters and targets from it and calls the hooks
    /// for the actions named in [`parses`](Manifest::parses) and
    /// [`invokes`](Manifest::invokes).
    pub fn provider_json(mut self, json: impl Into<String>) -> Manifest {
        self.provider_json = Some(json.into());
        self
    }

    /// Declares the actions whose raw output [`Provider::parse`](crate::Provider::parse)
    /// turns into JSON (instead of the definition's parse rules).
    pub fn parses(mut self, actions: &[&str]) -> Manifest {
        self.parses.extend(actions.iter().map(|a| a.to_string()));
        self
    }

    /// Declares the actions [`Provider::invoke`](crate::Provider::invoke) runs entirely.
    pub fn invokes(mut self, actions: &[&str]) -> Manifest {
        self.invokes.extend(actions.iter().map(|a| a.to_string()));
        self
    }

    /// Declares that [`Provider::map_status`](crate::Provider::map_status) replaces the
    /// built-in status table.
    pub fn maps_status(mut self) -> Manifest {
        self.maps_status = true;
        self
    }

    /// The provider name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The component's own version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The API version reported to the host (always [`API_VERSION`]).
    pub fn api_version(&self) -> &str {
        API_VERSION
    }

    /// The programs asked for.
    pub fn commands(&self) -> &[CommandCapability] {
        &self.commands
    }

    /// The HTTP destinations asked for.
    pub fn http_destinations(&self) -> &[String] {
        &self.http
    }

    /// The provider definition, if the component ships one.
    pub fn provider_definition(&self) -> Option<&str> {
        self.provider_json.as_deref()
    }

    /// The actions `parse` handles.
    pub fn parsed_actions(&self) -> &[String] {
        &self.parses
    }

    /// The actions `invoke` runs.
    pub fn invoked_actions(&self) -> &[String] {
        &self.invokes
    }

    /// The environment variables asked for.
    pub fn env_vars(&self) -> &[EnvVar] {
        &self.env
    }

    /// The declared parameters.
    pub fn parameters(&self) -> &[Parameter] {
        &self.parameters
    }

    /// Whether `map_status` replaces the status table.
    pub fn maps_status_hook(&self) -> bool {
        self.maps_status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_matches_the_wit_package() {
        let wit = include_str!("../../wit/provider.wit");
        let package = format!("package cpi:provider@{API_VERSION};");
        assert!(
            wit.lines().any(|l| l.trim() == package),
            "wit/provider.wit does not declare `{package}`"
        );
    }

    #[test]
    fn builder_accumulates() {
        let m = Manifest::new("p", "1.0.0")
            .command("a", &["x", "*"])
            .command("b", &["**"])
            .http("https://h:443")
            .parses(&["one"])
            .parses(&["two"])
            .provider_json("{}");
        assert_eq!(m.commands().len(), 2);
        assert_eq!(m.commands()[0].args, ["x", "*"]);
        assert_eq!(m.parsed_actions(), ["one", "two"]);
        assert_eq!(m.http_destinations(), ["https://h:443"]);
        assert_eq!(m.provider_definition(), Some("{}"));
        assert!(!m.maps_status_hook());
        assert_eq!(m.api_version(), API_VERSION);
    }
}
