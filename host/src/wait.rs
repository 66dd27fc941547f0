//! Waiting for a worker to reach a status: polls `get_worker` with backoff, succeeds on the
//! target status, fails fast on `error` or a status the worker cannot come back from.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::params::Inputs;
use crate::provider::Provider;
use crate::status::WORKER_STATUSES;

/// How to wait.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// The standard status to wait for (`running`, `stopped`, ...).
    pub target: String,
    /// Give up after this long.
    pub timeout: Duration,
    /// First delay between polls; it grows by half each poll up to `max_interval`.
    pub interval: Duration,
    /// Longest delay between polls.
    pub max_interval: Duration,
}

impl WaitOptions {
    /// Waiting for `target` for at most `timeout`, polling from every 250 ms up to every 5 s.
    pub fn new(target: &str, timeout: Duration) -> Result<WaitOptions> {
        if !WORKER_STATUSES.contains(&target) || target == "unknown" {
            return Err(Error::validation(format!(
                "cannot wait for '{target}': expected one of running, stopped, starting, stopping, \
                 provisioning, terminating, error, suspended"
            )));
        }
        Ok(WaitOptions {
            target: target.to_string(),
            timeout,
            interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
        })
    }
}

/// Polls `get_worker` (with `inputs`, which carry `worker_id`) until the worker's status is
/// the target. `progress` sees every polled status and the time waited so far.
pub async fn wait_for(
    engine: &Engine,
    provider: &Provider,
    inputs: &Inputs,
    opts: &WaitOptions,
    mut progress: impl FnMut(&str, Duration),
) -> Result<Value> {
    let started = Instant::now();
    let mut delay = opts.interval;
    let mut last: Option<String> = None;
    loop {
        // A poll, retries and all, ends with the wait: a hung CLI cannot stretch it (a run
        // dropped part-way kills its command's process group).
        let left = opts.timeout.saturating_sub(started.elapsed());
        let poll = tokio::time::timeout(left, engine.run(provider, "get_worker", inputs));
        let Ok(worker) = poll.await else {
            return Err(timed_out(opts, last.as_deref()));
        };
        let worker = worker?;
        let status = worker
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        progress(&status, started.elapsed());
        if status == opts.target {
            return Ok(worker);
        }
        if status == "error" || dead_end(&status, &opts.target) {
            return Err(Error::provider(format!(
                "the worker is '{status}' and will not become '{}'",
                opts.target
            ))
            .with_detail("status", status)
            .with_detail("waited_secs", started.elapsed().as_secs_f64()));
        }
        let left = opts.timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(timed_out(opts, Some(&status)));
        }
        last = Some(status);
        tokio::time::sleep(delay.min(left)).await;
        delay = delay.mul_f64(1.5).min(opts.max_interval);
    }
}

/// The wait ran out of time; `status` is the last one a poll answered, if any did.
fn timed_out(opts: &WaitOptions, status: Option<&str>) -> Error {
    let target = &opts.target;
    let Some(status) = status else {
        return Error::new(
            ErrorKind::Timeout,
            format!(
                "the worker did not become '{target}' within {:?}: no poll answered in time",
                opts.timeout
            ),
        );
    };
    Error::new(
        ErrorKind::Timeout,
        format!(
            "the worker did not become '{target}' within {:?}; its status is '{status}'",
            opts.timeout
        ),
    )
    .with_detail("status", status)
}

/// Statuses a worker cannot leave for `target`: a terminating worker never runs again.
fn dead_end(status: &str, target: &str) -> bool {
    status == "terminating" && target != "terminating"
}
