//! End-to-end tests: the `cpi` binary as a user runs it, against the simulated cloud.

mod support;

mod providers;
mod wasm;

mod compat;

mod hostile;
