//! Tools for people writing providers, on top of the runtime (crate `cpi`): what `cpi
//! validate`, `cpi docs`, `cpi new`, `cpi schema`, `cpi test` and `cpi record` compute.
//!
//! - [`validate`]: the compliance report, a list of small checks of a provider file;
//! - [`docs`]: Markdown documentation generated from a provider file;
//! - [`scaffold`]: a new provider (JSON, or a component in Rust, Python or JavaScript);
//! - [`schema`]: the JSON Schema of provider files;
//! - [`fixture`], [`record`]: saved outputs with the results they must parse to, and
//!   recording them from a real run.
#![deny(missing_docs)]

pub mod docs;
pub mod fixture;
pub mod record;
pub mod scaffold;
pub mod schema;
pub mod validate;
