//! End-to-end tests: the `cpi` binary as a user runs it, against the simulated cloud.

mod support;

mod authoring;

mod exposure;
mod faults;
mod limits;
mod load;
mod operations;
mod providers;
mod reported;
mod serve;
mod tls;
mod wasm;

mod guests;

mod compat;

mod hostile;
