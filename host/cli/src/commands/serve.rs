//! `cpi serve`: the HTTP API (see `cpi::serve`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::{self, ServeOptions, Server};
use cpi::{Error, Result};

use super::{config, engine, registry, runtime};
use crate::cli::{Global, ParamArgs, ServeArgs};

/// The arguments of `cpi serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub params: ParamArgs,
}

/// Serves the HTTP API until interrupted.
pub fn exec(g: &Global, args: Args) -> Result<ExitCode> {
    serve_api(g, &args.serve, &args.params)
}

fn serve_api(g: &Global, opts: &ServeArgs, args: &ParamArgs) -> Result<ExitCode> {
    if !args.params.is_empty() {
        return Err(Error::validation(
            "cpi serve takes no -p values: requests carry their params, and per-provider \
             values belong in cpi.toml",
        ));
    }
    let options = options(opts)?;
    serve::check_bind(opts.addr, opts.allow_remote)?;
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls_acceptor(cert, key)?),
        _ => None,
    };
    if !opts.addr.ip().is_loopback() && tls.is_none() {
        eprintln!(
            "warning: serving plain HTTP on {}: the token and every answer cross the network \
             unencrypted; pass --tls-cert and --tls-key, or put TLS in front of it",
            opts.addr
        );
    }
    let token_path = match &opts.token_file {
        Some(path) => path.clone(),
        None => serve::default_token_path()
            .ok_or_else(|| Error::validation("no user config directory: pass --token-file FILE"))?,
    };
    let token = serve::load_or_create_token(&token_path)?;
    let server = Arc::new(Server::new(
        registry(g)?,
        engine(args)?,
        config(g)?,
        token,
        options,
    ));
    let rt = runtime()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| Error::validation(format!("cannot listen on {}: {e}", opts.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::internal(e.to_string()))?;
        // One line a script can wait for; the token itself is never printed.
        eprintln!(
            "cpi serve listening on {scheme}://{local}  (token in {}; Ctrl-C to stop)",
            token_path.display()
        );
        server.serve(listener, tls, shutdown_signal()).await
    })?;
    if !g.quiet {
        eprintln!("cpi serve stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// The server's limits, each checked to be in range (a clear usage error, never a panic).
fn options(opts: &ServeArgs) -> Result<ServeOptions> {
    let range = |flag: &str, value: usize, max: usize| {
        if (1..=max).contains(&value) {
            Ok(value)
        } else {
            Err(Error::validation(format!(
                "{flag} must be between 1 and {max}, got {value}"
            )))
        }
    };
    let duration = |flag: &str, value: Duration| {
        if value.is_zero() || value > Duration::from_secs(86_400) {
            Err(Error::validation(format!(
                "{flag} must be more than 0 and at most 24h, got {value:?}"
            )))
        } else {
            Ok(value)
        }
    };
    Ok(ServeOptions {
        max_body: range("--max-body", opts.max_body, 1 << 30)?,
        concurrency: range("--concurrency", opts.concurrency, 4096)?,
        max_connections: range("--max-connections", opts.max_connections, 65_536)?,
        header_timeout: duration("--header-timeout", opts.header_timeout)?,
        body_timeout: duration("--body-timeout", opts.body_timeout)?,
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
