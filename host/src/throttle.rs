//! Shared back-off: when one call is rate-limited, every call of the same engine waits.
//!
//! A batch running 8 items in parallel, or `cpi serve` handling many clients, must not keep
//! hammering an API that answered 429: the first rate-limited call sets a "not before" instant
//! (its `Retry-After`, or the backoff delay) and every attempt that starts before it sleeps
//! until then. Clones of an [`Engine`](crate::Engine) share one throttle.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A "not before" instant shared by every call of an engine.
#[derive(Debug, Default)]
pub struct Throttle {
    not_before: Mutex<Option<Instant>>,
}

impl Throttle {
    /// Holds every call back for `delay` from now (a later hold wins; an earlier one is kept).
    pub fn hold(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut slot = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none_or(|current| current < until) {
            *slot = Some(until);
        }
    }

    /// How long a call starting now must wait (zero when it may go).
    pub fn remaining(&self) -> Duration {
        let slot = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        slot.map(|until| until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// Waits until calls may go again; returns how long it waited.
    pub async fn wait(&self) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let remaining = self.remaining();
            if remaining.is_zero() {
                return waited;
            }
            tokio::time::sleep(remaining).await;
            waited += remaining;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_extend_but_never_shorten() {
        let t = Throttle::default();
        assert_eq!(t.wait().await, Duration::ZERO);
        t.hold(Duration::from_secs(2));
        t.hold(Duration::from_secs(1));
        assert_eq!(t.remaining(), Duration::from_secs(2));
        let start = Instant::now();
        let (a, b) = tokio::join!(t.wait(), t.wait());
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!((a, b), (Duration::from_secs(2), Duration::from_secs(2)));
        assert_eq!(t.remaining(), Duration::ZERO);
    }
}
