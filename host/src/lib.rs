//! cpi — a Cloud Provider Interface host.
//!
//! # Brief overview
//!
//! A [`Provider`](provider::Provider) is a JSON file describing how to drive one cloud: each
//! action has a target (a CLI command template or an HTTP endpoint template), the parameters
//! it takes, and parse rules that turn raw output into JSON. Running an action flows through
//! the modules in this order:
//!
//! 1. [`provider`] loads and discovers provider files;
//! 2. [`params`] resolves parameter values (command line > env > config > defaults);
//! 3. [`template`] and [`target`] substitute them safely into an [`Invocation`](target::Invocation);
//! 4. [`exec`] runs it (the only side effects), with timeouts and output caps;
//! 5. [`parse`] applies the parse rules, [`status`] normalizes statuses;
//! 6. errors at any step are an [`Error`](error::Error) whose kind is a §10 category.
//!
//! [`engine::Engine`] ties the pipeline together. The component sandbox is crate
//! `cpi-sandbox` (the engine reaches it through [`engine::ComponentHost`]); the tools for
//! writing providers (validate, docs, scaffolding, fixtures) are crate `cpi-authoring`.
//!
//! # Example
//!
//! ```
//! use cpi::{parse::CompiledRules, provider::ParseRules};
//!
//! let rules: ParseRules = serde_json::from_str(
//!     r#"{"type": "object", "patterns": {"version": {"regex": "version ([\\d.]+)"}}}"#,
//! ).unwrap();
//! let parsed = CompiledRules::compile(&rules).unwrap().apply("cloudco-cli version 1.4.2").unwrap();
//! assert_eq!(parsed, serde_json::json!({"version": "1.4.2"}));
//! ```
#![deny(missing_docs)]

pub mod approval;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod escape;
pub mod exec;
pub mod exposed;
pub mod fsread;
pub mod fswrite;
pub mod grants;
pub mod install;
pub mod params;
pub mod parse;
pub mod policy;
pub mod provider;
pub mod request;
pub mod secret;
pub mod status;
pub mod target;
pub mod template;
pub mod throttle;
pub mod wait;

pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use provider::{Provider, Registry};
