//! The process groups of the commands cpi is running. Each command leads its own group (so a
//! timeout or a flood stops its whole tree), which also means a terminal's Ctrl-C no longer
//! reaches it: a group is killed when its run ends before the command was reaped (an error, a
//! timeout, a dropped future: a client gone, a batch stopped), and every live group at once
//! when cpi itself is interrupted ([`kill_all`]).

use std::sync::atomic::{AtomicI32, Ordering};

/// How many running groups [`kill_all`] can reach; a run beyond them is still killed when it
/// is dropped, just not by an interrupt.
const SLOTS: usize = 256;

/// The live groups' ids (0: a free slot), lock-free so that an interrupt can read them at any
/// moment.
static LIVE: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

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
/// commands would otherwise run on (they are not in its terminal's process group).
pub fn kill_all() {
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
