//! Retries: when and how often a failed attempt at an action that is safe to repeat is tried
//! again, and the hold every call keeps after one of them meets a rate limit.

use std::time::Duration;

use serde_json::Value;

use super::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::params::Inputs;
use crate::provider::Provider;

/// When and how often a failed action that is safe to repeat is tried again: exponential
/// backoff with full jitter, honouring `Retry-After`, on rate limits, timeouts, connection
/// failures and 5xx answers. `create_*` and other non-idempotent actions are never retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retries).
    pub attempts: u32,
    /// The first backoff delay; each retry doubles it.
    pub base: Duration,
    /// The longest delay between attempts; a `Retry-After` beyond it is not waited for.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, or `None` when `err` is final.
    pub fn delay(&self, attempt: u32, err: &Error) -> Option<Duration> {
        // The gate marks transport failures and 5xx answers transient; rate limits and
        // timeouts always are.
        if attempt >= self.attempts || !err.is_transient() {
            return None;
        }
        match err.details().get("retry_after").and_then(Value::as_u64) {
            Some(secs) if Duration::from_secs(secs) > self.max_delay => None,
            _ => Some(self.backoff(attempt, err)),
        }
    }

    /// The backoff after failed attempt `attempt`: `Retry-After` when given (capped at
    /// `max_delay`), else exponential with jitter.
    pub fn backoff(&self, attempt: u32, err: &Error) -> Duration {
        let backoff = self
            .base
            .saturating_mul(1u32 << (attempt.max(1) - 1).min(16))
            .min(self.max_delay);
        let jittered = backoff.mul_f64(0.5 + 0.5 * random_unit());
        match err.details().get("retry_after").and_then(Value::as_u64) {
            Some(secs) => Duration::from_secs(secs).min(self.max_delay).max(jittered),
            None => jittered,
        }
    }
}

/// Whether repeating an action is safe: by its name (§5 read-only verbs) or its flag.
pub fn is_repeatable(provider: &Provider, action_name: &str) -> bool {
    if let Some(flag) = provider.actions.get(action_name).and_then(|a| a.idempotent) {
        return flag;
    }
    cpi_contract::verbs::is_retryable(action_name)
}

/// A number in [0, 1) for jitter (not for secrets).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

impl Engine {
    /// Attempts the action until it succeeds, fails for good, or may not be repeated; a rate
    /// limit holds back every call of this engine, retried or not.
    pub(super) async fn run_retrying(
        &self,
        provider: &Provider,
        action_name: &str,
        inputs: &Inputs,
    ) -> Result<Value> {
        let retry = &self.retry;
        let repeatable = is_repeatable(provider, action_name);
        let mut attempt = 1;
        loop {
            let held = self.throttle.wait().await;
            if !held.is_zero() {
                tracing::info!(
                    "{}/{action_name}: held back {held:?} by a rate limit another call met",
                    provider.name
                );
            }
            let err = match self.attempt(provider, action_name, inputs).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if err.kind() == ErrorKind::RateLimit {
                // Everyone backs off, whether or not this action may be retried.
                self.throttle.hold(retry.backoff(attempt, &err));
            }
            let Some(delay) = retry.delay(attempt, &err).filter(|_| repeatable) else {
                return Err(if attempt > 1 {
                    err.with_detail("attempts", attempt)
                } else {
                    err
                });
            };
            tracing::info!(
                "{}/{action_name}: attempt {attempt} of {} failed ({}: {}); retrying in {delay:?}",
                provider.name,
                retry.attempts,
                err.kind(),
                err.message()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}
