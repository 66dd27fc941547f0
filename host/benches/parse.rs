//! Parser and discovery benchmarks.
//!
//! - `parse/array`: the §4.1 `list_workers` rules over 10,000 workers, one JSON object a line.
//! - `parse/properties`: §4.1 `get_worker`-style fields plus the §10.1.3 `array_patterns`
//!   (`Disk-N-ID` / `Disk-N-Size`) over a worker with a few hundred disks.
//! - `discover`: `Registry::discover` over 1 and 100 provider files (the standard's cloudco
//!   file, renamed), i.e. what every `cpi run` pays before running anything.
//!
//! Run: `cargo bench -p cpi --bench parse -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::{Path, PathBuf};

use cpi::parse::CompiledRules;
use cpi::provider::ParseRules;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

const WORKERS: usize = 10_000;
const DISKS: usize = 300;

/// The repository's `providers/cloudco.json` (the §4.1 example provider).
fn cloudco() -> (PathBuf, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers/cloudco.json");
    let text = std::fs::read_to_string(&path).expect("providers/cloudco.json");
    (
        path,
        serde_json::from_str(&text).expect("cloudco.json is JSON"),
    )
}

fn rules(value: &Value) -> ParseRules {
    serde_json::from_value(value.clone()).expect("parse rules")
}

/// `cloudco-cli worker list --output json`, one worker a line.
fn worker_list(n: usize) -> String {
    let mut out = String::with_capacity(n * 160);
    out.push_str("[\n");
    for i in 0..n {
        let status = ["running", "stopped", "provisioning"][i % 3];
        out.push_str(&format!(
            "  {{\"id\": \"wrk-{i:08x}\", \"name\": \"web-{i}\", \"status\": \"{status}\", \
             \"type\": \"standard-2\", \"image\": \"ubuntu-20-04\", \"region\": \"us-central\", \
             \"ip\": \"10.0.{}.{}\"}}{}\n",
            i / 256 % 256,
            i % 256,
            if i + 1 < n { "," } else { "" }
        ));
    }
    out.push_str("]\n");
    out
}

/// `cloudco-cli worker describe` with numbered disks after the worker's own fields.
fn worker_with_disks(disks: usize) -> String {
    let mut out = String::from(
        "{\n  \"id\": \"wrk-0000beef\",\n  \"name\": \"db-1\",\n  \"status\": \"running\",\n  \
         \"type\": \"standard-8\",\n  \"image\": \"debian-12\",\n  \"region\": \"us-west\",\n  \
         \"ip\": \"10.0.0.7\"\n}\n",
    );
    for i in 0..disks {
        out.push_str(&format!(
            "Disk-{i}-ID: disk-{i:06x}\nDisk-{i}-Size: {}GB\n",
            10 + i % 500
        ));
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let (_, provider) = cloudco();
    let actions = &provider["actions"];

    let list = CompiledRules::compile(&rules(&actions["list_workers"]["parse_rules"]))
        .expect("list_workers rules compile");
    let output = worker_list(WORKERS);
    let parsed = list.apply(&output).expect("list parses");
    assert_eq!(parsed.as_array().map(Vec::len), Some(WORKERS));

    let mut get = actions["get_worker"]["parse_rules"].clone();
    get["array_patterns"] = serde_json::json!({"disks": {"prefix": "Disk", "index": "(\\d+)",
        "object": {
            "id": {"regex": "Disk-(\\d+)-ID:\\s+([a-z0-9-]+)", "group": 2},
            "size": {"regex": "Disk-(\\d+)-Size:\\s+(\\d+)GB", "transform": "number"}}}});
    let props = CompiledRules::compile(&rules(&get)).expect("get_worker rules compile");
    let detail = worker_with_disks(DISKS);
    let parsed = props.apply(&detail).expect("properties parse");
    assert_eq!(parsed["disks"].as_array().map(Vec::len), Some(DISKS));
    assert_eq!(parsed["id"], "wrk-0000beef");

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(WORKERS as u64));
    group.bench_function("array/list_workers_10k", |b| {
        b.iter(|| list.apply(black_box(&output)).expect("parses"))
    });
    group.throughput(Throughput::Elements(DISKS as u64));
    group.bench_function("properties/get_worker_300_disks", |b| {
        b.iter(|| props.apply(black_box(&detail)).expect("parses"))
    });
    group.throughput(Throughput::Elements(1));
    let get_rules = rules(&get);
    group.bench_function("compile/get_worker_with_array_patterns", |b| {
        b.iter(|| CompiledRules::compile(black_box(&get_rules)).expect("compiles"))
    });
    group.finish();
}

/// A directory with `n` copies of cloudco.json, each with its own file and provider name.
fn provider_dir(n: usize) -> tempfile::TempDir {
    let (_, mut provider) = cloudco();
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..n {
        provider["name"] = Value::from(format!("cloudco-{i:03}"));
        let text = serde_json::to_string_pretty(&provider).expect("serialize");
        std::fs::write(dir.path().join(format!("cloudco-{i:03}.json")), text).expect("write");
    }
    dir
}

fn bench_discover(c: &mut Criterion) {
    let mut group = c.benchmark_group("discover");
    for n in [1, 100] {
        let dir = provider_dir(n);
        let dirs = vec![dir.path().to_path_buf()];
        let registry = cpi::Registry::discover(&dirs).expect("discover");
        assert_eq!(registry.providers().count(), n);
        assert!(registry.problems().is_empty());
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("{n}_providers"), |b| {
            b.iter_batched(
                || dirs.clone(),
                |dirs| cpi::Registry::discover(black_box(&dirs)).expect("discover"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_discover);
criterion_main!(benches);
