//! Command-line syntax (clap). No behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

/// Drive any cloud or virtualization platform through one interface.
#[derive(Debug, Parser)]
#[command(name = "cpi", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "\
Exit codes: 0 ok, 1 validation report has errors, 2 usage, 10 ValidationError,
11 AuthenticationError, 12 ResourceNotFoundError, 13 QuotaExceededError, 14 RateLimitError,
15 ProviderError, 16 TimeoutError, 17 CapabilityDeniedError, 18 UnsupportedError, 19 InternalError";

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Also load provider files from DIR (repeatable; besides the built-in providers and the
    /// user config dir, the only way a project's directory is searched).
    #[arg(long = "provider-dir", value_name = "DIR", global = true)]
    pub provider_dirs: Vec<PathBuf>,
    /// Config file with per-provider values (default: $XDG_CONFIG_HOME/cpi/cpi.toml).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Output format on stdout [default: table on a terminal, json when piped].
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT", global = true)]
    pub output: Option<OutputFormat>,
    /// Same as --output json.
    // After parsing (`output::configure`), true whenever stdout gets JSON or YAML.
    #[arg(long, global = true, conflicts_with = "output")]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// How stdout is written (set by `output::configure` from the flags above).
    #[arg(skip)]
    pub settings: crate::output::Settings,
}

/// What stdout gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Readable text: `key  value` lines and aligned tables.
    #[default]
    Table,
    /// JSON (one document; errors in the §10.2 shape).
    Json,
    /// YAML (the same document as JSON).
    Yaml,
}

/// The kind of provider file `cpi new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewType {
    /// Actions run a CLI program.
    Command,
    /// Actions call an HTTP API.
    Endpoint,
}

/// The language of a component project `cpi new --component` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewComponent {
    /// Rust with the guest SDK (cargo, wasm32-wasip2).
    Rust,
    /// Python (componentize-py).
    Python,
    /// JavaScript (ComponentizeJS).
    Js,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the providers found in the search directories.
    #[command(
        after_help = "Examples:\n  cpi providers\n  cpi providers --provider-dir ./my-providers --output json"
    )]
    Providers,
    /// Show one provider (defaults, actions, parameters, returned fields), or one action in
    /// full: where each parameter comes from, every step's target, retries, statuses.
    #[command(
        after_help = "Examples:\n  cpi show cloudco\n  cpi show proxmox create_worker\n  cpi show truenas --output yaml"
    )]
    Show(commands::show::Args),
    /// Check provider files for compliance with the standard (errors and warnings).
    #[command(
        after_help = "Examples:\n  cpi validate                       # every file in ./providers\n  cpi validate providers/hetzner.json\n  cpi validate my-providers/ --output json"
    )]
    Validate(commands::validate::Args),
    /// Run providers' fixtures: saved platform output must parse into the expected JSON.
    #[command(
        after_help = "Fixtures live in fixtures/NAME/*.json beside the provider file; see the README.\n\nExamples:\n  cpi test              # every provider that has fixtures\n  cpi test hetzner docker\n  cpi test --record libvirt list_workers -p libvirt_uri=qemu:///system"
    )]
    Test(commands::test::Args),
    /// Run one action of a provider.
    #[command(
        after_help = "Examples:\n  cpi run cloudco create_worker -p name=web-1\n  cpi run truenas get_worker -p worker_id=3 --json\n  cpi run cloudco delete_worker -p worker_id=wrk-1 --dry-run\n  cpi run cloudco create_worker --batch workers.jsonl --parallel 8"
    )]
    Run(commands::run::Args),
    /// Apply an action's parse rules to saved output (test rules without a cloud).
    #[command(
        after_help = "Examples:\n  cpi parse cloudco get_worker --input saved-output.txt\n  cloudco-cli worker list --output json | cpi parse cloudco list_workers"
    )]
    Parse(commands::parse::Args),
    /// Run the §8 lifecycle: initialize_cli, configure_auth, test_auth, test_install.
    #[command(
        after_help = "Examples:\n  cpi init cloudco\n  cpi init truenas -p api_url=http://127.0.0.1:8787/api/v2.0 -p api_key=TOKEN"
    )]
    Init(commands::init::Args),
    /// Serve the standard's request shape over HTTP: POST /v1/run {"provider", "action",
    /// "params"}, GET /v1/providers, GET /healthz. Loopback only, bearer token required.
    #[command(
        after_help = "The token is generated on first start into $XDG_CONFIG_HOME/cpi/serve.token (mode 0600).\n\nExamples:\n  cpi serve\n  curl -H \"Authorization: Bearer $(cat ~/.config/cpi/serve.token)\" \\\n       -d '{\"provider\": \"cloudco\", \"action\": \"list_workers\"}' http://127.0.0.1:8786/v1/run"
    )]
    Serve(commands::serve::Args),
    /// Run the simulated cloud (HTTP API on loopback) until interrupted.
    #[command(
        after_help = "Examples:\n  cpi sim\n  cpi sim --addr 127.0.0.1:9000 --state /tmp/sim.json --transition-ms 100"
    )]
    Sim(commands::sim::Args),
    /// Wait until a worker reaches a status (polls get_worker with backoff).
    #[command(
        after_help = "Examples:\n  cpi wait cloudco wrk-1a2b3c4d --for running --wait-timeout 10m"
    )]
    Wait(commands::wait::Args),
    /// Review what a provider that is not built in can do (the programs and argument shapes
    /// it runs, which of them are arbitrary code, the hosts it contacts, the environment it
    /// reads) and approve it: on a terminal it asks, in scripts pass --yes. The approval is
    /// pinned to the provider's files and path: any change needs a new one. For a component
    /// provider, grant a subset with --run/--net.
    #[command(
        after_help = "Examples:\n  cpi grant hetzner                            # review, then asks on a terminal\n  cpi grant hetzner --yes                      # approve in a script\n  cpi grant hetzner --approve sha256:3f2a...   # in CI: only this exact capability set\n  cpi grant cloudco-wasm --all --env CLOUDCO_API_URL\n  cpi grant cloudco-wasm --run 'cloudco-cli worker -**'"
    )]
    Grant(commands::grant::Args),
    /// Install a provider from a local file or directory, an https:// URL, or a git repository
    /// at a revision (git+URL@REV#SUBDIR): shows what it can do, asks for approval, copies it
    /// into the store and records it in the lock file. With --locked, installs every provider
    /// of the lock file exactly as recorded and refuses any changed byte.
    #[command(
        after_help = "Examples:\n  cpi install ./hetzner.json\n  cpi install https://example.org/providers/hetzner.json --sha256 3f2a...\n  cpi install 'git+https://example.org/cpi-providers.git@v1.4#hetzner'\n  cpi install --locked --lock team.lock --yes"
    )]
    Install(commands::install::Args),
    /// Fetch installed providers again: an unchanged capability request moves the approval,
    /// a grown one is reviewed and asked again.
    #[command(after_help = "Examples:\n  cpi update\n  cpi update hetzner")]
    Update(commands::update::Args),
    /// Remove an installed provider, its approval and its store entry.
    #[command(after_help = "Examples:\n  cpi uninstall hetzner")]
    Uninstall(commands::uninstall::Args),
    /// Remove every grant of a component provider.
    #[command(after_help = "Examples:\n  cpi revoke cloudco-wasm")]
    Revoke(commands::revoke::Args),
    /// List stored grants.
    #[command(after_help = "Examples:\n  cpi grants\n  cpi grants --output json")]
    Grants,
    /// Start the simulated cloud and drive both standard example providers through the
    /// lifecycle and every required method.
    #[command(after_help = "Examples:\n  cpi demo\n  cpi demo --output json")]
    Demo,
    /// Write Markdown documentation (§11) for providers, generated from their files and
    /// fixtures.
    #[command(
        after_help = "Examples:\n  cpi docs cloudco                       # Markdown on stdout\n  cpi docs --all --out docs/providers    # NAME.md per provider, plus README.md"
    )]
    Docs(commands::docs::Args),
    /// Print the JSON Schema of provider files (for editors and other tools).
    #[command(
        after_help = "Examples:\n  cpi schema > schema/provider.schema.json\n\nIn a provider file, \"$schema\": \"../schema/provider.schema.json\" lets editors check it as you type."
    )]
    Schema,
    /// Start a new provider: a provider file with every required method stubbed and a
    /// fixture, or (--component) a WebAssembly component project.
    #[command(
        after_help = "Examples:\n  cpi new acme --type command          # providers/acme.json + providers/fixtures/acme/\n  cpi new acme --type endpoint --dir my-providers\n  cpi new acme --component rust        # ./acme/: Cargo.toml, src/lib.rs, acme.json\n  cpi new acme --component python --dir ~/src\n\nThen: cpi validate providers/acme.json && cpi test acme"
    )]
    New(commands::new::Args),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  cpi completions bash > ~/.local/share/bash-completion/completions/cpi\n  cpi completions zsh > ~/.zfunc/_cpi\n  cpi completions fish > ~/.config/fish/completions/cpi.fish"
    )]
    Completions(commands::completions::Args),
}

/// How `cpi serve` listens and what it accepts.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback unless --allow-remote).
    #[arg(long, default_value = "127.0.0.1:8786")]
    pub addr: std::net::SocketAddr,
    /// Where the bearer token is kept (default: $XDG_CONFIG_HOME/cpi/serve.token).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_body: usize,
    /// How many actions run at once (1 to 4096); further requests wait their turn.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub concurrency: usize,
    /// How many connections are open at once (1 to 65536); at the cap the longest-idle one
    /// is closed.
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Time a connection has to send a request's headers (and the TLS handshake), counted
    /// from when it opens or finishes a request: the idle timeout.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub header_timeout: std::time::Duration,
    /// Time an authorized request has to send its body.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub body_timeout: std::time::Duration,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen on a non-loopback address (use --tls-cert/--tls-key, or TLS in front of it).
    #[arg(long)]
    pub allow_remote: bool,
}

/// Parameter values and limits for commands that run actions.
#[derive(Debug, Args)]
pub struct ParamArgs {
    /// A parameter value, NAME=VALUE (repeatable; overrides env, config and defaults).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Give up on a command or request after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub timeout: f64,
    /// Attempts in all for actions safe to repeat (get_*, list_*, has_*, test_*, idempotent),
    /// on rate limits, timeouts, connection failures and 5xx; create_* is never retried.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub attempts: u32,
    /// For this run only, let a component run a command pattern it requested (repeatable).
    #[arg(long = "allow-run", value_name = "PATTERN")]
    pub allow_run: Vec<String>,
    /// For this run only, let a component reach an HTTP origin it requested (repeatable).
    #[arg(long = "allow-net", value_name = "URL")]
    pub allow_net: Vec<String>,
    /// CPU budget per component call, in fuel units (about one per instruction).
    #[arg(long, value_name = "UNITS", default_value_t = 20_000_000_000)]
    pub wasm_fuel: u64,
    /// Memory cap per component instance, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub wasm_memory_mb: usize,
    /// Wall-clock limit of one component call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub wasm_timeout: f64,
    /// Wall-clock limit of all of one run's component calls together, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub wasm_run_timeout: f64,
}

/// Options shared by install, update and uninstall.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Approve without asking (for scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Approve without asking only if what the provider asks for has exactly this capability
    /// digest (shown by the review): CI approves one exact set and refuses growth.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "yes")]
    pub approve: Option<String>,
    /// The lock file (default: $XDG_CONFIG_HOME/cpi/cpi.lock).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Allow plain http:// to a loopback address (tests only; never another host).
    #[arg(long)]
    pub allow_http_loopback: bool,
    /// Wall-clock limit of each git command and each download while fetching a provider.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration)]
    pub fetch_timeout: std::time::Duration,
}

/// A duration flag's value (`90s`, `10m`, `1h 30m`): more than zero, since a zero limit would
/// only make the command fail at once.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be more than zero".to_string()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}
