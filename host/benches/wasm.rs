//! Component benchmarks: the warm path (fresh store + instantiate + `parse`) of the Rust SDK
//! example, and loading a component from the on-disk compile cache.
//!
//! Needs the example built first:
//! `cargo build --release --target wasm32-wasip2 -p cpi-example-rust-cloudco`.

use std::path::Path;
use std::sync::Arc;

use cpi::policy::Capabilities;
use cpi::wasm::{CallContext, Sandbox, SandboxLimits};
use criterion::{Criterion, criterion_group, criterion_main};

const LIST: &str = "[\n  {\"id\": \"wrk-1\", \"name\": \"a\", \"status\": \"running\", \"type\": \"standard-2\", \"region\": \"us-central\"},\n  {\"id\": \"wrk-2\", \"name\": \"b\", \"status\": \"stopped\", \"type\": \"standard-2\", \"region\": \"us-central\"}\n]\n";

fn bench(c: &mut Criterion) {
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/release/cpi_example_rust_cloudco.wasm");
    if !wasm.is_file() {
        eprintln!(
            "skipping component benches: build the example first ({})",
            wasm.display()
        );
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _entered = rt.enter();
    let cache = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    let component = sandbox.load(&wasm).unwrap();
    let ctx = Arc::new(
        CallContext::new(
            "bench",
            Capabilities::default(),
            Default::default(),
            Vec::new(),
        )
        .unwrap(),
    );

    c.bench_function("component: fresh store + instantiate + parse (warm)", |b| {
        b.iter(|| component.parse(ctx.clone(), "list_workers", LIST).unwrap())
    });
    c.bench_function(
        "component: load from the compile cache (new sandbox)",
        |b| {
            b.iter(|| {
                let fresh =
                    Sandbox::new(SandboxLimits::default(), Some(cache.path().to_path_buf()))
                        .unwrap();
                fresh.load(&wasm).unwrap()
            })
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
