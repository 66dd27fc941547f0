//! `cpi-sim`: the simulated cloud that cpi tests and demos run against.
//!
//! It has two halves:
//! - [`Sim`], an HTTP server on loopback that speaks a small cloud API (workers at
//!   `/instances`) and a TrueNAS-flavoured API (`/pool`, `/jail`), the same routes being
//!   served at the root and under `/api/v2.0`, with bearer auth, lazy lifecycle
//!   transitions, a quota, fault injection and state persisted atomically to a JSON file;
//! - [`cloudco::main`], the `cloudco-cli` program (§4.1 of the CPI standard), a
//!   synchronous client of that server.

pub mod cloudco;
mod conn;
mod server;
mod state;
mod util;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use server::{Sim, SimConfig};

/// Errors that stop the simulator from starting.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The state file exists but is not valid simulator state; it is left untouched.
    #[error("state file {} is corrupt (refusing to overwrite it): {source}", path.display())]
    CorruptState {
        /// The offending file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The listening socket could not be bound (or the address is not loopback).
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
