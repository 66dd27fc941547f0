//! The process groups of the commands cpi is running. Each command leads its own group (so a
//! timeout or a flood stops its whole tree), which also means a terminal's Ctrl-C no longer
//! reaches it: a group is killed when its run ends before the command was reaped (an error, a
//! timeout, a dropped future: a client gone, a batch stopped), and every live group at once
//! when cpi itself is interrupted ([`kill_all`]).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// How many running groups [`kill_all`] can reach; a run beyond them is still killed when it
/// is dropped, just not by an interrupt.
const SLOTS: usize = 256;

/// The live groups' ids (0: a free slot), lock-free so that an interrupt can read them at any
/// moment.
static LIVE: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

/// How many commands are between their spawn and their registration in [`LIVE`]:
/// [`kill_all`] waits for them.
static SPAWNING: AtomicUsize = AtomicUsize::new(0);

/// A command being started: from before its spawn until its group is registered, the
/// interrupt signals are held off this thread (so a handler never runs here and waits for
/// itself) and [`kill_all`] waits for the registration, so no command escapes an interrupt
/// that comes in between.
pub(super) struct Spawning {
    previous: libc::sigset_t,
}

impl Spawning {
    /// Enters the window; dropping it leaves.
    pub(super) fn enter() -> Spawning {
        SPAWNING.fetch_add(1, Ordering::SeqCst);
        // SAFETY: plain libc calls on local signal sets.
        unsafe {
            let mut held: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut held);
            for signal in INTERRUPTS {
                libc::sigaddset(&mut held, signal);
            }
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &held, &mut previous);
            Spawning { previous }
        }
    }
}

impl Drop for Spawning {
    fn drop(&mut self) {
        SPAWNING.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: restores this thread's own mask; a signal held off is delivered now.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
        }
    }
}

/// The signals that interrupt cpi (see the CLI's handler).
pub const INTERRUPTS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Kills one process group: a copy of its id, for code that runs beside the [`Group`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Killer(i32);

impl Killer {
    /// The group led by the process `pid` (nothing to kill when the id is unknown).
    pub(super) fn of(pid: Option<u32>) -> Killer {
        Killer(
            pid.and_then(|p| i32::try_from(p).ok())
                .filter(|&p| p > 0)
                .unwrap_or(0),
        )
    }

    /// Kills every process of the group now.
    pub(super) fn kill(self) {
        kill_group(self.0);
    }
}

/// A running command's process group: killed on drop unless its leader was reaped first.
pub(super) struct Group {
    killer: Killer,
    slot: Option<usize>,
}

impl Group {
    /// Registers the group for [`kill_all`] until it is dropped or reaped.
    pub(super) fn register(killer: Killer) -> Group {
        let pgid = killer.0;
        let slot = (pgid > 0)
            .then(|| {
                LIVE.iter().position(|s| {
                    s.compare_exchange(0, pgid, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                })
            })
            .flatten();
        Group { killer, slot }
    }

    /// Kills every process of the group now.
    pub(super) fn kill(&self) {
        self.killer.kill();
    }

    /// The leader was reaped: from now on its id may name someone else's group, so it is
    /// never signalled again.
    pub(super) fn reaped(mut self) {
        self.release();
        self.killer = Killer(0);
    }

    fn release(&mut self) {
        if let Some(slot) = self.slot.take() {
            LIVE[slot].store(0, Ordering::Release);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
        self.release();
    }
}

/// Kills the process group of every command cpi is running: for an interrupted cpi, whose
/// commands would otherwise run on (they are not in its terminal's process group). Made for
/// a handler of [`INTERRUPTS`]: only atomics, nanosleep(2) and kill(2); a command being
/// started on another thread is waited for (up to a second) until its group is known.
pub fn kill_all() {
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    for _ in 0..1000 {
        if SPAWNING.load(Ordering::SeqCst) == 0 {
            break;
        }
        // SAFETY: nanosleep(2) reads a local timespec.
        unsafe {
            libc::nanosleep(&pause, std::ptr::null_mut());
        }
    }
    for slot in &LIVE {
        kill_group(slot.load(Ordering::Acquire));
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}
