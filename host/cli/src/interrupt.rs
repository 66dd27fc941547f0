//! Ctrl-C, SIGTERM and SIGHUP for the one-shot commands. The commands cpi starts lead their
//! own process groups (so a timeout can stop a whole tree), out of reach of the terminal's
//! Ctrl-C; an interrupted cpi kills them before it exits instead of leaving a create running.

/// Takes over the interrupt signals cpi's parent did not ignore: call before any thread is
/// started, so that every thread leaves them to the one that waits for them.
pub fn install() {
    // SAFETY: plain libc calls on a local signal set; sigaction with a null new action only
    // reads the current disposition.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // A signal the parent ignores (`nohup`, a background job's SIGINT) stays ignored.
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction != libc::SIG_IGN
            {
                libc::sigaddset(&mut set, signal);
            }
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let waiter = std::thread::Builder::new()
            .name("cpi-interrupt".into())
            .spawn(move || wait_and_stop(set));
        if waiter.is_err() {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Waits for one of the signals in `set`, kills every command group cpi is running and exits
/// as that signal would have (128 + its number).
fn wait_and_stop(set: libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: sigwait reads the set and writes the signal number into a local.
    while unsafe { libc::sigwait(&set, &mut signal) } != 0 {}
    cpi::exec::kill_running_commands();
    eprintln!("cpi: interrupted (signal {signal}); the commands it was running were killed");
    std::process::exit(128 + signal);
}
