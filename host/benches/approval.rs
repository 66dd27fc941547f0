//! What the approval check costs a `cpi run` of a provider that is not built in.
//!
//! - `approval/check`: [`cpi::approval::check`] for the repository's `providers/cloudco.json`
//!   with its grant on disk: open the grant with the stored-trust checks (`O_NOFOLLOW`,
//!   `fstat`, owner and mode), parse it, compare the pins (canonical path, sha256 of the
//!   JSON) and build the enforced capabilities. This is the whole per-run price of approval.
//! - `approval/load`: [`cpi::Provider::load`] of the same file (reading, hashing and parsing
//!   it), which every run pays built in or not, for scale.
//!
//! Run: `cargo bench -p cpi --bench approval -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;

use cpi::Provider;
use cpi::grants::GrantStore;
use criterion::{Criterion, criterion_group, criterion_main};

fn approval(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers/cloudco.json");
    let file = dir.path().join("cloudco.json");
    std::fs::copy(&source, &file).expect("copy providers/cloudco.json");
    let provider = Provider::load(&file).expect("cloudco.json loads");
    let store = GrantStore::new(dir.path().join("grants"));
    let grant = cpi::approval::approve_json(&provider, &[]).expect("derive its request");
    store.save(&grant).expect("save the grant");
    cpi::approval::check(Some(&store), &provider).expect("approved");

    let mut group = c.benchmark_group("approval");
    group.bench_function("check", |b| {
        b.iter(|| cpi::approval::check(Some(black_box(&store)), black_box(&provider)).unwrap())
    });
    group.bench_function("load", |b| {
        b.iter(|| Provider::load(black_box(&file)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, approval);
criterion_main!(benches);
