//! Load: `cpi serve` against the simulator with many concurrent clients. Ignored by default
//! (it runs for 30 s); run it with
//! `cargo test --release -p cpi --test e2e load -- --ignored --nocapture`
//! (`CPI_LOAD_CLIENTS` and `CPI_LOAD_SECS` change the defaults of 200 clients for 30 s).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::serve::Served;
use crate::support::World;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "a 30-second load run; see the module docs"]
fn serve_under_load_has_no_errors_and_no_memory_growth() {
    let clients = env_or("CPI_LOAD_CLIENTS", 200) as usize;
    let secs = env_or("CPI_LOAD_SECS", 30);
    let w = World::new();
    let served = Served::start(&w, &["--concurrency", "32"]);
    let body = json!({"provider": "truenas", "action": "list_workers",
                      "params": crate::serve::truenas_params(&w)});
    // Warm up (and create one dataset so the answers carry data).
    let (status, _) = served.run(&body);
    assert_eq!(status, 200);
    let pid = served.pid();
    let rss_before = rss_kib(pid);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (url, token, body) = (served.url.clone(), served.token.clone(), body.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                let (mut latencies, mut errors) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match client
                        .post(format!("{url}/v1/run"))
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                    {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes();
                            latencies.push(t.elapsed());
                        }
                        Ok(r) => {
                            errors.push(format!("{}: {}", r.status(), r.text().unwrap_or_default()))
                        }
                        Err(e) => errors.push(e.to_string()),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for t in threads {
        let (l, e) = t.join().unwrap();
        latencies.extend(l);
        errors.extend(e);
    }
    let elapsed = started.elapsed();
    let rss_after = rss_kib(pid);
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "load: {clients} clients for {secs} s: {} requests, {:.0} req/s, p50 {:?}, p99 {:?}, \
         max {:?}, errors {}; RSS {} KiB before, {} KiB after",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.last().unwrap(),
        errors.len(),
        rss_before,
        rss_after
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        rss_after < rss_before.max(20_000) * 3,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
