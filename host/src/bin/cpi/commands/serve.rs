//! `cpi serve`: the HTTP API (see `cpi::serve`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cpi::serve::{self, ServeOptions, Server};
use cpi::{Error, Result};

use super::{config, engine, registry, runtime};
use crate::cli::{Global, ParamArgs};

pub struct Options {
    pub addr: SocketAddr,
    pub token_file: Option<PathBuf>,
    pub max_body: usize,
    pub concurrency: usize,
    pub allow_remote: bool,
}

pub fn exec(g: &Global, opts: Options, args: &ParamArgs) -> Result<ExitCode> {
    if !args.params.is_empty() {
        return Err(Error::validation(
            "cpi serve takes no -p values: requests carry their params, and per-provider \
             values belong in cpi.toml",
        ));
    }
    if opts.concurrency == 0 || opts.max_body == 0 {
        return Err(Error::validation(
            "--concurrency and --max-body must be positive",
        ));
    }
    serve::check_bind(opts.addr, opts.allow_remote)?;
    let token_path = match opts.token_file {
        Some(path) => path,
        None => serve::default_token_path()
            .ok_or_else(|| Error::validation("no user config directory: pass --token-file FILE"))?,
    };
    let token = serve::load_or_create_token(&token_path)?;
    let server = Arc::new(Server::new(
        registry(g)?,
        engine(args)?,
        config(g)?,
        token,
        ServeOptions {
            max_body: opts.max_body,
            concurrency: opts.concurrency,
        },
    ));
    let rt = runtime()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| Error::validation(format!("cannot listen on {}: {e}", opts.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::internal(e.to_string()))?;
        // One line a script can wait for; the token itself is never printed.
        eprintln!(
            "cpi serve listening on http://{local}  (token in {}; Ctrl-C to stop)",
            token_path.display()
        );
        server.serve(listener, shutdown_signal()).await
    })?;
    if !g.quiet {
        eprintln!("cpi serve stopped");
    }
    Ok(ExitCode::SUCCESS)
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
