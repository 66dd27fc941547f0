//! `cpi sim`: the simulated cloud in the foreground.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cpi::{Error, Result};
use cpi_sim::{Sim, SimConfig};

use super::runtime;
use crate::output::outln;

/// The arguments of `cpi sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub addr: std::net::SocketAddr,
    /// State file (default: $XDG_DATA_HOME/cpi/sim/state.json).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// How long workers take to change state, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub transition_ms: u64,
}

/// Runs the simulated cloud in the foreground.
pub fn exec(args: Args) -> Result<ExitCode> {
    serve_sim(
        args.addr,
        args.state,
        Duration::from_millis(args.transition_ms),
    )
}

fn serve_sim(addr: SocketAddr, state: Option<PathBuf>, transition: Duration) -> Result<ExitCode> {
    if !addr.ip().is_loopback() {
        return Err(Error::validation(format!(
            "the simulator only listens on loopback addresses, not {addr}"
        )));
    }
    let state = match state {
        Some(path) => path,
        None => dirs::data_dir()
            .ok_or_else(|| Error::internal("no user data directory; pass --state FILE"))?
            .join("cpi/sim/state.json"),
    };
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    runtime()?.block_on(async move {
        let mut cfg = SimConfig::new(&state);
        cfg.addr = addr;
        cfg.transition = transition;
        let sim = Sim::start(cfg)
            .await
            .map_err(|e| match e {
                // A file the user gave that is not simulator state: bad input, not a cpi fault.
                cpi_sim::SimError::CorruptState { .. } => {
                    Error::validation(format!("simulator: {e}"))
                        .with_detail("state_file", state.display().to_string())
                }
                e => Error::internal(format!("simulator: {e}")),
            })?;
        let url = sim.url();
        outln!("cpi sim listening on {url}  (Ctrl-C to stop)");
        outln!("  state file: {}", state.display());
        outln!("  api token:  {}", sim.token());
        outln!("  login:      {} / {}", sim.username(), sim.password());
        outln!();
        outln!(
            "  truenas:  cpi run truenas list_workers -p api_url={url}/api/v2.0 -p api_key={}",
            sim.token()
        );
        outln!(
            "  cloudco:  export CLOUDCO_API_URL={url} CLOUDCO_API_KEY={}",
            sim.token()
        );
        outln!("            (cloudco-cli: cargo build --release -p cpi-sim, or link cpi as cloudco-cli)");
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::internal(format!("signal handler: {e}")))?;
        sim.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
