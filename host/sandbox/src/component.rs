//! One loaded component: compiled (or taken from the cache), checked for the API version,
//! pre-instantiated once, and called with a fresh store per hook call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use wasmtime::Store;

use super::bindings::{Instance, Pre, cpi::provider::types};
use super::guest_log::Level;
use super::host::{CallContext, State, from_guest, from_wit};
use super::wait::CallDeadline;
use super::{API_VERSION, API_VERSIONS, Sandbox, SandboxLimits, cache};
use cpi::error::{Error, ErrorKind, Result};
use cpi::policy::{Capabilities, CommandRule, HttpRule};

/// What a component declares about itself.
#[derive(Debug)]
pub struct Manifest {
    /// Provider name.
    pub name: String,
    /// The component's version.
    pub version: String,
    /// The API version it was built against.
    pub api_version: String,
    /// The capabilities it requests.
    pub requested: Capabilities,
    /// A full provider definition, for standalone components.
    pub provider_json: Option<String>,
    /// Actions whose output its `parse` hook parses.
    pub parses: Vec<String>,
    /// Actions its `invoke` hook runs entirely.
    pub invokes: Vec<String>,
    /// Whether its `map-status` hook replaces the status table.
    pub maps_status: bool,
    /// Environment variables its commands need (granted with `cpi grant --env`).
    pub env: Vec<EnvRequest>,
    /// The parameters its actions take, as a provider definition declares them.
    pub parameters: indexmap::IndexMap<String, cpi::provider::ParamDecl>,
}

/// An environment variable a component asks for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvRequest {
    /// The variable's name.
    pub name: String,
    /// Why the component needs it (provider-supplied text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A loaded, pre-instantiated component.
pub struct Component {
    path: PathBuf,
    sha256: String,
    manifest: Manifest,
    pre: Pre,
    engine: wasmtime::Engine,
    limits: SandboxLimits,
}

impl std::fmt::Debug for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Component")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .finish()
    }
}

const EXPORT: &str = "cpi:provider/provider@";

impl Component {
    /// Checks and pre-instantiates a compiled component, then asks it for its manifest.
    /// `name` is the provider it is loaded as: the one name its errors use.
    pub(super) fn load(
        sandbox: &Sandbox,
        name: &str,
        path: &Path,
        compiled: wasmtime::component::Component,
        sha256: String,
    ) -> Result<Component> {
        let shown = who(name, path);
        let version = check_api_version(&sandbox.engine, &compiled, &shown)?;
        let instance_pre = sandbox.linker.instantiate_pre(&compiled).map_err(|e| {
            Error::validation(format!(
                "{shown} imports something cpi does not provide: {e:#}"
            ))
        })?;
        let pre = Pre::new(version, instance_pre)
            .map_err(|e| Error::validation(format!("{shown} is not a cpi provider: {e:#}")))?;
        let mut component = Component {
            path: path.to_path_buf(),
            sha256,
            manifest: Manifest {
                name: String::new(),
                version: String::new(),
                api_version: String::new(),
                requested: Capabilities::default(),
                provider_json: None,
                parses: Vec::new(),
                invokes: Vec::new(),
                maps_status: false,
                env: Vec::new(),
                parameters: Default::default(),
            },
            pre,
            engine: sandbox.engine.clone(),
            limits: sandbox.limits.clone(),
        };
        // `describe` may run nothing and reach nothing: an empty capability set.
        let scope = cpi::exec::Scope {
            provider: name.into(),
            grants: Some(Capabilities::default()),
            env: Vec::new(),
        };
        let ctx = Arc::new(CallContext::new(
            cpi::exec::Gate::new(Default::default()),
            scope,
        )?);
        let raw = component.call(ctx, |p, store| p.describe(store))?;
        component.manifest = convert_manifest(raw, &shown, version)?;
        Ok(component)
    }

    /// Hex sha256 of the component file (what grants are pinned to).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The manifest the component declared.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Which guest SDK built the component (its [`SDK_SECTION`] custom section), read from
    /// the file; `None` when it has none (built without the SDK) or cannot be read.
    pub fn sdk_version(&self) -> Option<String> {
        let bytes = cpi::fsread::read(&self.path, cpi::fsread::Kind::Component).ok()?;
        sdk_stamp(&bytes)
    }

    /// Runs `f` against a fresh instance in a fresh store, within the fuel, memory and
    /// wall-clock limits, mapping traps to errors. A capability denial during the call is
    /// the call's error, whatever the guest made of it.
    fn call<R>(
        &self,
        ctx: Arc<CallContext>,
        f: impl FnOnce(&Instance, &mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let name = ctx.name.clone();
        let (left, limit) = self.time_left(&ctx);
        if left.is_zero() {
            return Err(limit.error(&name, &self.limits));
        }
        let log = ctx.log.clone();
        let deadline = CallDeadline {
            at: Instant::now() + left,
            limit,
        };
        let mut store = Store::new(&self.engine, State::new(ctx, &self.limits, deadline));
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| Error::internal(format!("fuel: {e}")))?;
        arm_deadline(&mut store, deadline, self.limits.fuel);
        let outcome = self
            .pre
            .instantiate(&mut store)
            .and_then(|instance| f(&instance, &mut store));
        let output = store.data().take_log();
        if !output.trim().is_empty() {
            let text = format!("component output:\n{}", output.trim_end());
            log.message(&name, Level::Debug, &text, self.limits.log_bytes + 256);
        }
        log.flush(&name);
        if let Some(denied) = store.data().denied() {
            return Err(denied);
        }
        outcome.map_err(|err| trap_error(&name, &self.limits, err))
    }

    /// The wall-clock time a call may take now, and which limit that is: the per-call limit,
    /// or what is left of the run's.
    fn time_left(&self, ctx: &CallContext) -> (Duration, Limit) {
        let run_left = self.limits.run_time.saturating_sub(ctx.started.elapsed());
        if run_left < self.limits.call_time {
            (run_left, Limit::Run)
        } else {
            (self.limits.call_time, Limit::Call)
        }
    }

    /// Calls the `parse` hook; the result must be valid JSON within the size limit.
    pub fn parse(&self, ctx: Arc<CallContext>, action: &str, raw: &str) -> Result<Value> {
        let name = ctx.name.clone();
        let out = self.call(ctx, |p, store| p.parse(store, action, raw))?;
        self.json_result(&name, out.map_err(from_wit)?, "parse")
    }

    /// Calls the `map-status` hook.
    pub fn map_status(&self, ctx: Arc<CallContext>, raw: &str) -> Result<&'static str> {
        let status = self.call(ctx, |p, store| p.map_status(store, raw))?;
        Ok(match status {
            types::WorkerStatus::Running => "running",
            types::WorkerStatus::Stopped => "stopped",
            types::WorkerStatus::Starting => "starting",
            types::WorkerStatus::Stopping => "stopping",
            types::WorkerStatus::Provisioning => "provisioning",
            types::WorkerStatus::Terminating => "terminating",
            types::WorkerStatus::Error => "error",
            types::WorkerStatus::Suspended => "suspended",
            types::WorkerStatus::Unknown => "unknown",
        })
    }

    /// Calls the `invoke` hook with the action's parameters; a capability the guest was
    /// denied is reported as such whatever the guest returned (see [`Component::call`]).
    pub fn invoke(
        &self,
        ctx: Arc<CallContext>,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        let name = ctx.name.clone();
        let params = Value::Object(params.clone()).to_string();
        let mut failed = None;
        let out = self.call(ctx, |p, store| {
            let out = p.invoke(&mut *store, action, &params);
            failed = store.data().failed.clone();
            out
        })?;
        match out {
            Ok(text) => self.json_result(&name, text, "invoke"),
            Err(err) => Err(from_guest(err, failed)),
        }
    }

    fn json_result(&self, name: &str, text: String, hook: &str) -> Result<Value> {
        if text.len() > self.limits.max_result_bytes {
            return Err(Error::provider(format!(
                "component '{name}' returned {} bytes from {hook}; the limit is {}",
                text.len(),
                self.limits.max_result_bytes
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            Error::provider(format!(
                "component '{name}' returned invalid JSON from {hook}: {e}"
            ))
        })
    }
}

/// The compiled form of the component with this sha256 from the compile cache, if there is a
/// trusted entry for it.
pub(super) fn from_cache(sandbox: &Sandbox, sha: &str) -> Option<wasmtime::component::Component> {
    let entry = cache::entry(sandbox.cache_dir.as_deref()?, &sandbox.engine, sha);
    if !cache::trusted(&entry) {
        return None;
    }
    // SAFETY: `trusted` checked the entry is a private file in a private directory owned by
    // this user, i.e. one cpi wrote with `Component::serialize` for this engine's config.
    match unsafe { wasmtime::component::Component::deserialize_file(&sandbox.engine, &entry) } {
        Ok(component) => Some(component),
        Err(err) => {
            tracing::debug!("ignoring cache entry {}: {err}", entry.display());
            None
        }
    }
}

/// Compiles `bytes` (whose sha256 is `sha`), or takes the compiled form from the cache.
pub(super) fn compile(
    sandbox: &Sandbox,
    path: &Path,
    bytes: &[u8],
    sha: &str,
) -> Result<wasmtime::component::Component> {
    if let Some(component) = from_cache(sandbox, sha) {
        return Ok(component);
    }
    // wasmtime's own error for a file without the header quotes the file's first bytes.
    if !bytes.starts_with(b"\0asm") {
        return Err(Error::validation(format!(
            "{} is not a WebAssembly component (it does not start with the `\\0asm` header)",
            cpi::escape::line(&path.display().to_string())
        ))
        .with_detail("file", path.display().to_string()));
    }
    let component = wasmtime::component::Component::new(&sandbox.engine, bytes).map_err(|e| {
        Error::validation(format!(
            "{} is not a valid WebAssembly component: {e:#}",
            path.display()
        ))
    })?;
    if let Some(dir) = sandbox.cache_dir.as_deref()
        && let Ok(serialized) = component.serialize()
    {
        cache::store(&cache::entry(dir, &sandbox.engine, sha), &serialized);
    }
    Ok(component)
}

/// The custom section in which the guest SDK stamps its name and version
/// (`cpi-guest-sdk 0.1.0`), so a bug report can say which SDK built a component.
pub const SDK_SECTION: &str = "cpi:sdk-version";

/// The text of the first [`SDK_SECTION`] in `bytes` (the component, or a module inside it),
/// at most 64 bytes of it; `None` without one or past a part that does not parse.
pub fn sdk_stamp(bytes: &[u8]) -> Option<String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::CustomSection(section)) if section.name() == SDK_SECTION => {
                let text = String::from_utf8_lossy(section.data());
                return Some(cpi_contract::excerpt(text.trim(), 64));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// How errors name a component: the provider name it runs as, and its file.
fn who(name: &str, path: &Path) -> String {
    format!(
        "component '{name}' ({})",
        cpi::escape::line(&path.display().to_string())
    )
}

/// The `cpi:provider` version the component exports, if cpi runs it.
fn check_api_version(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    shown: &str,
) -> Result<&'static str> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    match exports.iter().find_map(|name| name.strip_prefix(EXPORT)) {
        Some(version) if API_VERSIONS.contains(&version) => Ok(API_VERSIONS
            .into_iter()
            .find(|v| *v == version)
            .unwrap_or(API_VERSION)),
        Some(other) => Err(Error::validation(format!(
            "{shown} was built for cpi:provider@{other}; this cpi runs cpi:provider@{}. \
             Rebuild it against the current guest SDK",
            API_VERSIONS.join(", @")
        ))
        .with_detail("api_version", other)),
        None => Err(Error::validation(format!(
            "{shown} is not a cpi provider component: it does not export cpi:provider/provider (it exports: {})",
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ))),
    }
}

/// Checks a manifest (from a component exporting `version`) and converts it.
fn convert_manifest(raw: types::Manifest, shown: &str, version: &str) -> Result<Manifest> {
    let bad = |why: String| Error::validation(format!("{shown}: invalid manifest: {why}"));
    if raw.api_version != version {
        return Err(bad(format!(
            "api-version {:?} does not match the cpi:provider@{version} it exports",
            raw.api_version
        )));
    }
    if raw.name.is_empty()
        || raw.name.len() > 64
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(format!(
            "name {:?} must be 1-64 letters, digits, '-' or '_'",
            raw.name
        )));
    }
    // Every string below is shown on the grant screen: one that could rewrite the terminal
    // (controls, bidi, zero-width) would let a manifest hide what it asks for.
    let shown = std::iter::once(&raw.version)
        .chain(
            raw.commands
                .iter()
                .flat_map(|c| std::iter::once(&c.program).chain(&c.args)),
        )
        .chain(&raw.http)
        .chain(raw.env.iter().map(|e| &e.name))
        .chain(raw.parameters.iter().map(|p| &p.name));
    for text in shown {
        if text.chars().any(cpi::escape::is_unsafe) {
            return Err(bad(format!(
                "{} holds control, bidi or zero-width characters, which could disguise a \
                 requested capability",
                cpi::escape::line(text)
            )));
        }
    }
    let mut requested = Capabilities::default();
    for cmd in raw.commands {
        let rule = CommandRule {
            program: cmd.program,
            args: cmd.args,
        };
        rule.check().map_err(|e| bad(e.message().to_string()))?;
        requested.commands.push(rule);
    }
    for http in raw.http {
        requested
            .http
            .push(HttpRule::parse(&http).map_err(|e| bad(e.message().to_string()))?);
    }
    let env = raw
        .env
        .into_iter()
        .map(|e| env_request(e).map_err(&bad))
        .collect::<Result<_>>()?;
    let mut parameters = indexmap::IndexMap::new();
    for decl in raw.parameters {
        let name = decl.name.clone();
        let decl = param_decl(decl).map_err(|why| bad(format!("parameter {name:?}: {why}")))?;
        parameters.insert(name, decl);
    }
    Ok(Manifest {
        name: raw.name,
        version: raw.version,
        api_version: raw.api_version,
        requested,
        provider_json: raw.provider_json,
        parses: raw.parses,
        invokes: raw.invokes,
        maps_status: raw.maps_status,
        env,
        parameters,
    })
}

/// A requested environment variable: a plain name (never a dynamic loader's, which no grant
/// can give).
fn env_request(raw: types::EnvRequest) -> std::result::Result<EnvRequest, String> {
    let name = &raw.name;
    let plain = !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let upper = name.to_ascii_uppercase();
    if !plain || upper.starts_with("LD_") || upper.starts_with("DYLD_") {
        return Err(format!(
            "environment variable {:?} must be letters, digits and '_' (and not LD_* or DYLD_*)",
            cpi::escape::line(name)
        ));
    }
    Ok(EnvRequest {
        name: raw.name,
        description: raw.description,
    })
}

/// A parameter declaration as a provider definition's `parameters` holds it (and checked as
/// one: its pattern must compile).
fn param_decl(raw: types::ParamDecl) -> std::result::Result<cpi::provider::ParamDecl, String> {
    let kind = match raw.type_ {
        types::ParamType::String => "string",
        types::ParamType::Integer => "integer",
        types::ParamType::Number => "number",
        types::ParamType::Boolean => "boolean",
    };
    let mut json = serde_json::json!({"type": kind});
    let fields = [
        ("description", raw.description.map(Value::from)),
        ("pattern", raw.pattern.map(Value::from)),
        ("min", raw.min.map(Value::from)),
        ("max", raw.max.map(Value::from)),
        ("secret", raw.secret.then_some(Value::Bool(true))),
        (
            "enum",
            (!raw.choices.is_empty()).then(|| Value::from(raw.choices)),
        ),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            json[key] = value;
        }
    }
    let decl: cpi::provider::ParamDecl = serde_json::from_value(json).map_err(|e| e.to_string())?;
    if let Some(Err(why)) = decl.regex() {
        return Err(format!("its pattern does not compile: {why}"));
    }
    Ok(decl)
}

/// Which wall-clock limit a call runs under.
#[derive(Debug, Clone, Copy)]
pub(super) enum Limit {
    /// `SandboxLimits::call_time`.
    Call,
    /// What is left of `SandboxLimits::run_time`.
    Run,
}

impl Limit {
    fn error(self, name: &str, limits: &SandboxLimits) -> Error {
        let (what, limit, flag) = match self {
            Limit::Call => ("one call", limits.call_time, "--wasm-timeout"),
            Limit::Run => ("one run", limits.run_time, "--wasm-run-timeout"),
        };
        Error::new(
            ErrorKind::Timeout,
            format!(
                "component '{name}' ran past its wall-clock limit of {limit:?} for {what} and \
                 was stopped (raise it with {flag})"
            ),
        )
        .with_detail("limit", flag.trim_start_matches("--"))
    }
}

/// The error a store's epoch callback stops a call with.
#[derive(Debug)]
pub(super) struct Expired(pub(super) Limit);

impl std::fmt::Display for Expired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "wall-clock limit reached ({:?})", self.0)
    }
}

impl std::error::Error for Expired {}

/// Checks the store at every epoch tick (see [`super::TICK`]): past `deadline` the call
/// stops, and so it does once the fuel its code used plus the fuel charged for its host calls
/// reaches the budget. (Waits in host calls end at the deadline by themselves: see
/// [`super::wait`].)
fn arm_deadline(store: &mut Store<State>, deadline: CallDeadline, budget: u64) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |cx| {
        deadline.check()?;
        let used = budget.saturating_sub(cx.get_fuel()?);
        if used.saturating_add(cx.data().host_fuel()) >= budget {
            return Err(wasmtime::Trap::OutOfFuel.into());
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
}

fn trap_error(name: &str, limits: &SandboxLimits, err: wasmtime::Error) -> Error {
    if let Some(Expired(limit)) = err.downcast_ref::<Expired>() {
        return limit.error(name, limits);
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => Error::new(
            ErrorKind::Timeout,
            format!(
                "component '{name}' used up its CPU budget ({} fuel units, host calls \
                 included) and was stopped (raise it with --wasm-fuel)",
                limits.fuel
            ),
        )
        .with_detail("limit", "wasm-fuel"),
        Some(wasmtime::Trap::StackOverflow) => Error::provider(format!(
            "component '{name}' overflowed its stack (runaway recursion) and was stopped"
        )),
        Some(trap) => Error::provider(format!("component '{name}' trapped: {trap}")),
        None => {
            let text = format!("{err:#}");
            if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
                Error::provider(format!(
                    "component '{name}' exceeded its memory cap ({} MiB) and was stopped",
                    limits.memory_bytes >> 20
                ))
            } else {
                Error::provider(format!(
                    "component '{name}' failed: {}",
                    cpi::escape::text(&text)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(program: &str, args: &[&str], http: &[&str]) -> types::Manifest {
        types::Manifest {
            name: "spoof".into(),
            version: "1.0.0".into(),
            api_version: API_VERSION.into(),
            commands: vec![types::CommandCapability {
                program: program.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
            }],
            http: http.iter().map(|h| h.to_string()).collect(),
            provider_json: None,
            parses: Vec::new(),
            invokes: Vec::new(),
            maps_status: false,
            env: Vec::new(),
            parameters: Vec::new(),
        }
    }

    #[test]
    fn the_sdk_stamp_is_read_from_a_module_inside_the_component() {
        let module =
            wat::parse_str(r#"(module (@custom "cpi:sdk-version" "cpi-guest-sdk 9.8.7"))"#)
                .unwrap();
        assert_eq!(sdk_stamp(&module).as_deref(), Some("cpi-guest-sdk 9.8.7"));
        let component = wat::parse_str(
            r#"(component (core module (@custom "cpi:sdk-version" "cpi-guest-sdk 1.2.3")))"#,
        )
        .unwrap();
        assert_eq!(
            sdk_stamp(&component).as_deref(),
            Some("cpi-guest-sdk 1.2.3")
        );
        let plain = wat::parse_str("(component (core module))").unwrap();
        assert_eq!(sdk_stamp(&plain), None);
        assert_eq!(sdk_stamp(b"\0asm garbage"), None);
    }

    #[test]
    fn manifest_rules_that_could_rewrite_the_grant_screen_are_refused() {
        let path = &who("spoof", Path::new("spoof.wasm"));
        assert!(
            convert_manifest(
                manifest("echo", &["*"], &["https://a.example"]),
                path,
                API_VERSION
            )
            .is_ok()
        );
        for raw in [
            manifest("\u{1b}[1A\u{1b}[2Kecho", &[], &[]),
            manifest("sh", &["-c", "**\u{202e}"], &[]),
            manifest("echo", &["zero\u{200b}width"], &[]),
            manifest("echo", &[], &["https://a.example\u{1b}]52;c;Zm9v\u{7}"]),
        ] {
            let err = convert_manifest(raw, path, API_VERSION).unwrap_err();
            assert!(err.message().contains("bidi or zero-width"), "{err}");
            assert!(!err.message().contains('\u{1b}'), "{err}");
            assert!(!err.message().contains('\u{202e}'), "{err}");
        }
    }
}
