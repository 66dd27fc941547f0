//! Every way a guest can wait ends at its call's deadline.
//!
//! The epoch check that enforces `--wasm-timeout` / `--wasm-run-timeout` runs only while the
//! guest's own code runs, never inside a host call. In WASI p2 a guest waits in exactly two
//! kinds of host calls: `wasi:io/poll` (`poll`, `pollable.block`: a sleep, an HTTP answer, a
//! stream's readiness) and the blocking methods of `wasi:io/streams`. wasmtime-wasi's own
//! versions block the thread until the awaited thing happens, which for a clock may be never
//! (`subscribe-duration(u64::MAX)`), and for a body stream nobody reads, too. They are shadowed
//! here by the same functions run under the call's deadline: past it the call traps with the
//! timeout error, as the epoch check would. Everything else in WASI returns at once (the
//! guest has no files, sockets or stdin to wait on); the cpi host imports bound their own
//! waits by the same deadline (see `host.rs`, `http.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::{poll, streams};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamResult};

use super::component::{Expired, Limit};
use super::host::State;

/// The `wasi:io/poll` interface as wasmtime-wasi 48 registers it (its `wasi:io` version;
/// guests importing any 0.2.x version are linked to it).
const POLL: &str = "wasi:io/poll@0.2.12";
/// The `wasi:io/streams` interface as wasmtime-wasi 48 registers it.
const STREAMS: &str = "wasi:io/streams@0.2.12";

/// When the current hook call must end, and which limit that is.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallDeadline {
    /// The instant the call's wall-clock limit runs out.
    pub(super) at: Instant,
    /// Which limit that is (named in the error).
    pub(super) limit: Limit,
}

impl CallDeadline {
    /// The time left before the deadline (zero once past).
    pub(super) fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The trap that ends a call at its deadline (reported as the limit's timeout error).
    pub(super) fn expired(&self) -> wasmtime::Error {
        wasmtime::Error::new(Expired(self.limit))
    }

    /// Fails with [`Self::expired`] once the deadline has passed.
    pub(super) fn check(&self) -> wasmtime::Result<()> {
        if Instant::now() >= self.at {
            return Err(self.expired());
        }
        Ok(())
    }

    /// Runs `wait` to its end on the tokio runtime (as wasmtime-wasi's sync bindings do),
    /// or traps with [`Self::expired`] when the deadline comes first.
    pub(super) fn wait<F: Future>(&self, wait: F) -> wasmtime::Result<F::Output> {
        let at = tokio::time::Instant::from_std(self.at);
        // The timer is made inside the runtime `in_tokio` enters (the calling thread may have
        // none).
        wasmtime_wasi::runtime::in_tokio(async move { tokio::time::timeout_at(at, wait).await })
            .map_err(|_| self.expired())
    }
}

/// Shadows wasmtime-wasi's waiting functions in `linker` (which must already hold WASI p2)
/// with ones bounded by the call's deadline.
pub(super) fn add_to_linker(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = shadow_poll(linker).and_then(|()| shadow_streams(linker));
    linker.allow_shadowing(false);
    added
}

/// `poll` and `[method]pollable.block`, bounded.
fn shadow_poll(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    let mut inst = linker.instance(POLL)?;
    inst.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, State>, (list,): (Vec<Resource<DynPollable>>,)| {
            let (table, deadline) = store.data_mut().waiting();
            Ok((deadline.wait(poll::Host::poll(table, list))??,))
        },
    )?;
    inst.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, State>, (pollable,): (Resource<DynPollable>,)| {
            let (table, deadline) = store.data_mut().waiting();
            deadline.wait(poll::HostPollable::block(table, pollable))?
        },
    )
}

/// A stream operation's result as the guest gets it (`result<T, stream-error>`).
type Streamed<T> = wasmtime::Result<(Result<T, streams::StreamError>,)>;

/// Converts a stream operation's outcome for the guest (a trap stays a trap).
fn streamed<T>(table: &mut ResourceTable, outcome: StreamResult<T>) -> Streamed<T> {
    Ok((match outcome {
        Ok(value) => Ok(value),
        Err(err) => Err(streams::Host::convert_stream_error(table, err)?),
    },))
}

/// The blocking methods of `input-stream` and `output-stream`, bounded.
fn shadow_streams(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    use streams::{HostInputStream as In, HostOutputStream as Out};
    type Store<'a> = StoreContextMut<'a, State>;
    let mut inst = linker.instance(STREAMS)?;
    inst.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store: Store<'_>, (s, len): (Resource<DynInputStream>, u64)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(In::blocking_read(table, s, len))?;
            streamed(table, outcome)
        },
    )?;
    inst.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store: Store<'_>, (s, len): (Resource<DynInputStream>, u64)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(In::blocking_skip(table, s, len))?;
            streamed(table, outcome)
        },
    )?;
    inst.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: Store<'_>, (s, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(Out::blocking_write_and_flush(table, s, bytes))?;
            streamed(table, outcome)
        },
    )?;
    inst.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: Store<'_>, (s, len): (Resource<DynOutputStream>, u64)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(Out::blocking_write_zeroes_and_flush(table, s, len))?;
            streamed(table, outcome)
        },
    )?;
    inst.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: Store<'_>, (s,): (Resource<DynOutputStream>,)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(Out::blocking_flush(table, s))?;
            streamed(table, outcome)
        },
    )?;
    inst.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store: Store<'_>,
         (dest, src, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let (table, deadline) = store.data_mut().waiting();
            let outcome = deadline.wait(Out::blocking_splice(table, dest, src, len))?;
            streamed(table, outcome)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait that never ends traps with the call's timeout once the deadline has passed.
    #[test]
    fn a_wait_past_the_deadline_traps_with_the_limit() {
        let deadline = CallDeadline {
            at: Instant::now(),
            limit: Limit::Run,
        };
        let err = deadline
            .wait(std::future::pending::<()>())
            .expect_err("a wait that never ends");
        assert!(matches!(
            err.downcast_ref::<Expired>(),
            Some(Expired(Limit::Run))
        ));
        assert!(deadline.check().is_err());
    }

    /// What is ready is still answered, and a call with time left waits as usual.
    #[test]
    fn a_ready_wait_is_answered() {
        let past = CallDeadline {
            at: Instant::now(),
            limit: Limit::Call,
        };
        assert_eq!(past.wait(async { 7 }).expect("ready"), 7);
        let later = CallDeadline {
            at: Instant::now() + Duration::from_secs(3600),
            limit: Limit::Call,
        };
        assert_eq!(later.wait(async { 8 }).expect("ready"), 8);
        assert!(later.check().is_ok());
    }
}
