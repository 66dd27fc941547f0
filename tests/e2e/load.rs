//! Load: `cpi serve` against the simulator with many concurrent clients. Ignored by default
//! (it runs for 30 s); run it with
//! `cargo test --release -p cpi-cli --test e2e load -- --ignored --nocapture`
//! (`CPI_LOAD_CLIENTS`, `CPI_LOAD_SECS` and `CPI_LOAD_ROUNDS` change the defaults of 200
//! clients for 30 s in 3 rounds; RSS after the first round must hold over the others).
//!
//! A last phase floods the server with callers that have no token (`CPI_FLOOD_THREADS`,
//! default 32, for `CPI_FLOOD_SECS`, default 10): half send headers and part of a body and
//! hold the connection, half open connections and send nothing. Authenticated clients keep
//! running meanwhile: none may fail, their p99 is reported, and RSS after the flood must come
//! back to the plateau of the rounds before it.

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

/// What one round of load produced.
struct Round {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    elapsed: Duration,
}

/// `clients` threads posting `body` to `/v1/run` as fast as they can for `secs` seconds.
fn round(served: &Served, body: &serde_json::Value, clients: usize, secs: u64) -> Round {
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
    latencies.sort();
    Round {
        latencies,
        errors,
        elapsed: started.elapsed(),
    }
}

#[test]
#[ignore = "a 30-second load run; see the module docs"]
fn serve_under_load_has_no_errors_and_no_memory_growth() {
    let clients = env_or("CPI_LOAD_CLIENTS", 200) as usize;
    let secs = env_or("CPI_LOAD_SECS", 30);
    // The first round brings connection buffers and pools to their working size; memory that
    // keeps growing over the rounds after it is a leak.
    let rounds = env_or("CPI_LOAD_ROUNDS", 3).max(2);
    let w = World::new();
    let served = Served::start(&w, &["--concurrency", "32"]);
    let body = json!({"provider": "truenas", "action": "list_workers",
                      "params": crate::serve::truenas_params(&w)});
    // Warm up (and create one dataset so the answers carry data).
    let (status, _) = served.run(&body);
    assert_eq!(status, 200);
    let pid = served.pid();
    let rss_start = rss_kib(pid);
    let mut rss_after = Vec::new();
    let mut all = Vec::new();
    let mut errors = Vec::new();
    let mut elapsed = Duration::ZERO;
    for n in 1..=rounds {
        let r = round(&served, &body, clients, secs.div_ceil(rounds));
        let rss = rss_kib(pid);
        let pct = |p: f64| {
            r.latencies[((r.latencies.len() as f64 * p) as usize).min(r.latencies.len() - 1)]
        };
        println!(
            "round {n}: {} requests, {:.0} req/s, p50 {:?}, p99 {:?}, errors {}; RSS {rss} KiB",
            r.latencies.len(),
            r.latencies.len() as f64 / r.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.99),
            r.errors.len(),
        );
        rss_after.push(rss);
        all.extend(r.latencies);
        errors.extend(r.errors);
        elapsed += r.elapsed;
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    let (first, last) = (rss_after[0], *rss_after.last().unwrap());
    println!(
        "load: {clients} clients for {secs} s in {rounds} rounds: {} requests, {:.0} req/s, \
         p50 {:?}, p99 {:?}, max {:?}, errors {}; RSS {rss_start} KiB at start, {first} KiB \
         after round 1, {last} KiB after round {rounds}",
        all.len(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.last().unwrap(),
        errors.len(),
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        last <= first + first / 10 + 2048,
        "RSS kept growing after the first round: {rss_after:?} KiB"
    );
    flood_phase(&served, &body, clients, last);
}

/// Raises this process's open-file limit to its hard limit (the flood holds thousands of
/// connections; `cpi serve`, started before, keeps its own limit).
fn more_files() {
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max.min(1 << 16);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Token-less callers hammer the server while `clients` authenticated ones keep working.
fn flood_phase(served: &Served, body: &serde_json::Value, clients: usize, plateau: u64) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    more_files();
    let threads = env_or("CPI_FLOOD_THREADS", 32) as usize;
    let secs = env_or("CPI_FLOOD_SECS", 10);
    let pid = served.pid();
    let addr = served.url.trim_start_matches("http://").to_string();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let opened = std::sync::Arc::new(AtomicU64::new(0));
    let flood: Vec<_> = (0..threads)
        .map(|n| {
            let (addr, stop, opened) = (addr.clone(), stop.clone(), opened.clone());
            std::thread::spawn(move || {
                let mut held = std::collections::VecDeque::new();
                let half_body = format!(
                    "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n{}",
                    "a".repeat(30_000)
                );
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut stream) = std::net::TcpStream::connect(&addr) else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    opened.fetch_add(1, Ordering::Relaxed);
                    if n % 2 == 0 {
                        let _ = stream.write_all(half_body.as_bytes());
                    }
                    held.push_back(stream);
                    if held.len() > 200 {
                        held.pop_front();
                    }
                }
            })
        })
        .collect();
    let peak = std::sync::Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let during = round(served, body, clients, secs);
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    sampler.join().unwrap();
    // Closed connections and freed buffers settle within the header timeout.
    std::thread::sleep(Duration::from_secs(12));
    let after = rss_kib(pid);
    let pct = |p: f64| {
        during.latencies[((during.latencies.len() as f64 * p) as usize)
            .min(during.latencies.len().saturating_sub(1))]
    };
    println!(
        "flood: {threads} token-less threads opened {} connections in {secs} s; meanwhile \
         {clients} clients made {} requests, p50 {:?}, p99 {:?}, errors {}; RSS {plateau} KiB \
         before, {} KiB at most during, {after} KiB after",
        opened.load(Ordering::Relaxed),
        during.latencies.len(),
        pct(0.50),
        pct(0.99),
        during.errors.len(),
        peak.load(Ordering::Relaxed),
    );
    assert!(
        during.errors.is_empty(),
        "{} errors during the flood, first: {:?}",
        during.errors.len(),
        during.errors.first()
    );
    assert!(
        after <= plateau + plateau / 5 + 4096,
        "RSS did not come back after the flood: {plateau} KiB before, {after} KiB after"
    );
}
