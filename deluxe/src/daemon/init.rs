//! A container's init: when the daemon runs in the foreground as pid 1, this process stays
//! pid 1 as a minimal init and the daemon goes on in a child, as with `tini`.
//!
//! Pid 1 of a PID namespace has two duties no other process has: every orphan in the namespace
//! becomes its child and stays a zombie until it reaps it, and signals it has not asked for are
//! dropped. A daemon that reaped every child (`waitpid(-1)`) would steal the exit statuses that
//! `Command::call` and `std::process::Child` wait for. So the daemon is not pid 1: pid 1 forks
//! it, then only waits for signals. `SIGCHLD` makes it reap every child that has exited (the
//! daemon's orphans, and the daemon itself); `SIGTERM`, `SIGINT`, `SIGHUP`, `SIGUSR1`,
//! `SIGUSR2` and `SIGQUIT` are forwarded to the daemon. When the daemon has exited, pid 1
//! exits with its status (`128 + N` when a signal `N` killed it), and the kernel ends whatever
//! else still runs in the namespace.
//!
//! The daemon, pid 2, is an ordinary process: its children are its own, reaped by whoever
//! started them. It sets itself up exactly as a foreground daemon does (`setup`, then
//! `serve`).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use super::DaemonError;
use super::sys;

/// The signals pid 1 passes on to the daemon: those `docker stop`, a Kubernetes pod
/// deletion, a terminal and `docker kill --signal` send.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
];

/// Where this process stands once [`take_pid1`] has returned.
pub(crate) enum Place {
    /// Not pid 1 (or not allowed to fork): the daemon runs in this process as it is.
    Alone,
    /// The daemon, a child of the init that took pid 1. Its signal mask has the daemon's
    /// signals blocked on top of the mask the process had, so that none forwarded early is
    /// lost before the daemon's steps take over.
    UnderInit {
        /// The mask the process had before.
        mask: SigSet,
    },
}

impl Place {
    /// Puts the mask back as it was before `take_pid1`, for a caller that goes on after the
    /// daemon's steps failed.
    pub(crate) fn undo(&self) {
        if let Self::UnderInit { mask } = self {
            let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(mask), None);
        }
    }
}

/// If this process is pid 1, forks: the parent stays pid 1 as the init and never returns; the
/// child returns [`Place::UnderInit`] and becomes the daemon. Elsewhere returns
/// [`Place::Alone`].
///
/// `daemon_signals` are the signals the daemon's steps block and receive: they stay blocked in
/// the child. A process that has other threads is not split (a `log` warning says so): its
/// child would have only this thread, and could deadlock on a lock another one held.
pub(crate) fn take_pid1(daemon_signals: &SigSet) -> Result<Place, DaemonError> {
    if std::process::id() != 1 {
        return Ok(Place::Alone);
    }
    let others = other_threads();
    if others > 0 {
        log::warn!(
            "running as pid 1 without an init: {others} other thread(s) exist, so forking the \
             daemon is not safe; orphans will not be reaped (call run_foreground before \
             starting threads, or use an external init such as tini)"
        );
        return Ok(Place::Alone);
    }
    let mut waited = SigSet::empty();
    for signal in FORWARDED {
        waited.add(signal);
    }
    waited.add(Signal::SIGCHLD);
    // Blocked before the fork: a signal sent to pid 1 from now on waits for the init's
    // `sigwait` instead of being dropped (pid 1 drops signals it has no handler for unless
    // they are blocked), and the child starts with them blocked too.
    let mut mask = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&waited), Some(&mut mask))
        .map_err(|errno| DaemonError::Fork {
            source: errno.into(),
        })?;
    // SIGCHLD ignored would make the kernel reap the children itself, and the daemon's exit
    // status would be lost: the default lets the init reap them.
    sys::default_action(libc::SIGCHLD);
    // This process has no other thread (checked above), so the child is a complete copy of it
    // and may do anything this process could.
    match sys::fork() {
        Err(errno) => {
            let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
            Err(DaemonError::Fork {
                source: errno.into(),
            })
        }
        Ok(sys::Forked::Child) => {
            let mut child_mask = mask;
            for signal in daemon_signals {
                child_mask.add(signal);
            }
            let _ =
                nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&child_mask), None);
            hand_over_sockets();
            Ok(Place::UnderInit { mask })
        }
        Ok(sys::Forked::Parent(daemon)) => serve_as_init(daemon, &waited),
    }
}

/// Socket activation (`LISTEN_FDS`) names the process the sockets are for in `LISTEN_PID`:
/// pid 1, which is now the init. They are the daemon's: it is named instead. Runs in the forked
/// child, before it starts any thread.
fn hand_over_sockets() {
    if std::env::var_os("LISTEN_PID").is_some_and(|pid| pid == "1") {
        sys::set_env_in_forked_child("LISTEN_PID", &std::process::id().to_string());
    }
}

/// The init: waits for signals, forwards them to the daemon, reaps every child that exits,
/// and exits with the daemon's status once it has exited.
fn serve_as_init(daemon: libc::pid_t, waited: &SigSet) -> ! {
    // The init keeps only its standard descriptors: sockets and files the program opened
    // are the daemon's, and an extra copy here would keep them open after the daemon has
    // closed them. This process never runs the owners of those descriptors again: it leaves
    // with `_exit`, running no destructor.
    sys::close_from(3, sys::stderr());
    loop {
        let Ok(signal) = waited.wait() else { continue };
        if signal == Signal::SIGCHLD {
            if let Some(code) = reap(daemon) {
                // The kernel then ends whatever else runs in the namespace.
                sys::exit_now(code)
            }
        } else {
            // A daemon that has exited and is not yet reaped is a zombie: the signal does
            // nothing, and its SIGCHLD is on its way.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon), signal);
        }
    }
}

/// Reaps every child that has exited; returns the exit code for pid 1 if the daemon is one of
/// them.
fn reap(daemon: libc::pid_t) -> Option<i32> {
    loop {
        match sys::waitpid(-1, libc::WNOHANG) {
            Ok((0, _)) => return None,
            // ECHILD: no child left (the daemon cannot be among the missing: only this
            // process reaps).
            Err(_) => return None,
            Ok((pid, status)) if pid == daemon => return Some(exit_code(status)),
            _ => continue,
        }
    }
}

/// The exit code that stands for a wait status, as shells and container runtimes give it: the
/// code itself, or `128 + N` for a process a signal `N` killed.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// How many threads besides the calling one this process has (0 where `/proc` cannot tell).
pub(crate) fn other_threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|count| count.trim().parse::<usize>().ok())
        })
        .map_or(0, |count| count.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn a_wait_status_becomes_the_code_a_shell_would_give() {
        // Encoded as the kernel does: exit code in the second byte, signal in the low bits.
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(1 << 8), 1);
        assert_eq!(exit_code(255 << 8), 255);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM), 143);
        assert_eq!(exit_code(libc::SIGQUIT | 0x80), 131, "core dumped");
    }
}
