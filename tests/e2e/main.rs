//! End-to-end tests: the `cpi` binary as a user runs it, against the simulated cloud.

mod support;

mod approval;
mod authoring;

mod exposure;
mod faults;
mod limits;
mod load;
mod operations;
mod params;
mod providers;
mod reported;
mod sandbox;
mod serve;
mod tls;
mod wasm;

mod gate;

mod guests;

mod compat;

mod hostile;
mod install;

mod discovery;
mod real_aws;
mod real_libvirt;
mod recording;
mod stored_trust;
mod tables;
mod untrusted_files;
