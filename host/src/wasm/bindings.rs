//! Rust bindings generated from `wit/provider.wit` (the host side).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "provider-component",
    imports: { default: trappable },
});
