//! Guest SDK for cpi providers written as WebAssembly components.
//!
//! The WIT world in `../wit` and the bindings over it arrive with the WASM component work; this
//! crate reserves the name and the place in the workspace so the layout already tells the story:
//! `host/` runs providers, `guest-sdk/` is what a provider author depends on, `wit/` is the
//! contract between the two.

/// The version of the cpi WIT package this SDK targets.
pub const WIT_VERSION: &str = "0.1.0";
