//! Ctrl-C, SIGTERM and SIGHUP for the one-shot commands. The commands cpi starts lead their
//! own process groups (so a timeout can stop a whole tree), out of reach of the terminal's
//! Ctrl-C; an interrupted cpi kills them before it dies, instead of leaving a create running.

/// Takes over the interrupt signals cpi's parent did not ignore: on one, every command group
/// cpi is running is killed and cpi dies of that signal, as it would have without this.
pub fn install() {
    for signal in cpi::exec::INTERRUPTS {
        // SAFETY: sigaction on a zeroed struct whose handler is an async-signal-safe
        // `extern "C"` function; a null new action only reads the current disposition.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) != 0
                || current.sa_sigaction == libc::SIG_IGN
            {
                // A signal the parent ignores (`nohup`, a background job's SIGINT) stays so.
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESETHAND;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Kills every command group, says so, and dies of `signal` (its disposition is back to the
/// default: `SA_RESETHAND`). Only async-signal-safe calls: atomics, kill(2), write(2), raise.
extern "C" fn on_signal(signal: libc::c_int) {
    cpi::exec::kill_running_commands();
    let said = b"cpi: interrupted; the commands it was running were killed\n";
    // SAFETY: write(2) of a static buffer and raise(3) are async-signal-safe.
    unsafe {
        libc::write(libc::STDERR_FILENO, said.as_ptr().cast(), said.len());
        libc::raise(signal);
    }
}
