//! The signal handler and its self-pipe: how a signal reaches the signal thread.
//!
//! The signals the daemon reacts to have a minimal, async-signal-safe handler ([`on_signal`]):
//! it notes the signal in an atomic bit set and writes a byte to a pipe (the self-pipe trick of
//! `signal-hook`), which wakes the signal thread (see [`runtime`](super::runtime)). Here too:
//! which signals the daemon takes and in which threads, the handler a process forked from the
//! daemon must not keep, and how a stop catches up with the signals sent before it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};

use super::super::sys;

/// The signals that ask the daemon to stop.
pub(super) const STOP_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// The signals that run hooks: the reload (`SIGHUP`, as logrotate and systemd's
/// `Type=notify-reload` send it) and the user signals.
pub(super) const HOOK_SIGNALS: [Signal; 3] = [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];

/// The signals only the signal thread takes where other threads cannot be followed (not
/// Linux): the user signals, which a stop signal pending at the same time would overtake (the
/// kernel delivers lower numbers first).
pub(super) const USER_SIGNALS: [Signal; 2] = [Signal::SIGUSR1, Signal::SIGUSR2];

/// Whether every thread takes the daemon's signals (Linux), rather than the signal thread
/// alone taking the user signals.
pub(super) const EVERY_THREAD_TAKES_SIGNALS: bool =
    cfg!(any(target_os = "linux", target_os = "android"));

/// The signals unblocked in every thread.
fn unblocked_everywhere() -> SigSet {
    if EVERY_THREAD_TAKES_SIGNALS {
        handled()
    } else {
        signal_set(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP])
    }
}

pub(super) fn signal_set(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for signal in signals {
        set.add(*signal);
    }
    set
}

/// Every signal the daemon receives on its signal thread. They are blocked from the first step
/// of setting the daemon up until its handler is in place (see [`install_receiver`]).
pub(crate) fn handled() -> SigSet {
    let mut set = signal_set(&STOP_SIGNALS);
    for signal in HOOK_SIGNALS {
        set.add(signal);
    }
    set
}

/// The signals received and not yet taken by the signal thread: bit N for signal N.
pub(super) static RECEIVED: AtomicU32 = AtomicU32::new(0);
/// The write end of the pipe that wakes the signal thread; -1 when there is none.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The daemon's pid: a process forked from the daemon without `exec` inherits the handler,
/// and must not take the daemon's signals for its own.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// The signal handler ([`sys::SignalHandler`]).
struct OnSignal;

impl sys::SignalHandler for OnSignal {
    fn handle(signal: libc::c_int, thread_sender: Option<libc::pid_t>) {
        on_signal(signal, thread_sender);
    }
}

/// The signal handler. Async-signal-safe: atomic operations, a `write` to a non-blocking
/// pipe, `getpid`, and `errno` kept as it was.
fn on_signal(signal: libc::c_int, thread_sender: Option<libc::pid_t>) {
    let saved = Errno::last_raw();
    // getpid is async-signal-safe and cannot fail.
    let me = nix::unistd::getpid().as_raw();
    if me == OWNER.load(Ordering::Relaxed) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let noted = super::super::inflight::enter(signal, thread_sender, me);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let noted = {
            let _ = thread_sender;
            true
        };
        if noted {
            RECEIVED.fetch_or(1 << signal, Ordering::AcqRel);
            wake_signal_thread();
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        super::super::inflight::leave();
    } else {
        // A child forked from the daemon without `exec`: the signal is its own, with its
        // default action, once this handler returns (the signal is blocked while it runs).
        sys::reraise_with_default_action(signal);
    }
    Errno::set_raw(saved);
}

/// In a process forked from the daemon (in `setup` too): puts the daemon's signals back to
/// their default action and unblocks them (elsewhere than on Linux the daemon keeps the user
/// signals blocked in its threads), so that the child, and a program it `exec`s, starts with
/// an empty mask and dies of `SIGTERM`. Only in a child of the daemon: a failed start in the
/// foreground leaves the handler registered in the caller, which it must not change.
/// Async-signal-safe.
extern "C" fn clean_signals_in_child() {
    // getppid is async-signal-safe and cannot fail.
    if nix::unistd::getppid().as_raw() != OWNER.load(Ordering::Relaxed) {
        return;
    }
    for signal in &handled() {
        sys::default_action(signal as libc::c_int);
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&handled()),
        None,
    );
}

/// From now on, every process forked from this one (through the C library's `fork`, which
/// runs `pthread_atfork` handlers) starts with the daemon's signals unblocked and at their
/// default action ([`clean_signals_in_child`]). Registered once per process, in the daemon
/// before `setup` (registering may allocate: the async-signal-safe steps are over).
pub(crate) fn clean_signals_in_forked_children() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // The handler only makes async-signal-safe calls.
        sys::at_fork_in_child(clean_signals_in_child);
    });
}

/// The stop signal received since the handler was installed and not yet taken by the signal
/// thread: before "ready", a stop asked for while `setup` ran.
pub(crate) fn stop_received() -> Option<Signal> {
    let received = RECEIVED.load(Ordering::Acquire);
    STOP_SIGNALS
        .into_iter()
        .find(|signal| received & (1 << *signal as u32) != 0)
}

/// Writes a byte to the wake pipe. Async-signal-safe; a full pipe already wakes the thread.
pub(crate) fn wake_signal_thread() {
    let fd = WAKE.load(Ordering::Acquire);
    if fd >= 0 {
        // The pipe's write end while it is published: `Receiver` unpublishes it before
        // closing it.
        sys::write_byte_raw(fd);
    }
}

/// The pipe the signal handler writes to, read by the signal thread.
pub(crate) struct Receiver {
    pub(super) read: OwnedFd,
    _write: OwnedFd,
}

impl Drop for Receiver {
    /// Only on a failed foreground start: the handler must not write to a closed pipe (the
    /// dispositions are put back too), and the caller's children are not the daemon's.
    fn drop(&mut self) {
        WAKE.store(-1, Ordering::Release);
        OWNER.store(0, Ordering::Release);
        RECEIVED.store(0, Ordering::Release);
    }
}

/// Installs the handler for [`handled`] signals and unblocks them in this thread (not Linux:
/// the user signals stay blocked; the signal thread unblocks them for itself).
/// Async-signal-safe (system calls only), for the step before `setup`: a signal that arrives
/// while `setup` runs is noted (a stop one makes the start fail, see [`stop_received`]; a
/// hook's runs once the daemon is ready), and what `setup` starts does not inherit a mask.
pub(crate) fn install_receiver() -> Result<Receiver, Errno> {
    let (read, write) = sys::pipe_nonblocking()?;
    RECEIVED.store(0, Ordering::Release);
    WAKE.store(write.as_raw_fd(), Ordering::Release);
    OWNER.store(nix::unistd::getpid().as_raw(), Ordering::Release);
    // While the handler runs, the other handled signals wait: one at a time.
    for signal in &handled() {
        // The handler only does async-signal-safe things (see `on_signal`).
        sys::set_signal_handler::<OnSignal>(signal, handled())?;
    }
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&unblocked_everywhere()),
        None,
    )?;
    Ok(Receiver {
        read,
        _write: write,
    })
}

/// Asks for a stop the way a `SIGTERM` from outside does: through the signal thread, which
/// takes the user signals sent before it and times the grace.
pub(super) fn ask_to_stop() {
    // `kill`, not `raise`: a signal directed at this thread, which blocks it, would stay
    // pending.
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
}

/// On a stop: takes the signals sent before it that are still pending, and waits for those
/// other threads took to be noted; returns the bits of those taken here. `deadline` (the
/// grace's) bounds the wait.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn catch_up(deadline: Option<Instant>) -> u32 {
    super::super::inflight::catch_up(&handled(), deadline)
}

/// On a stop: a user signal sent before it is noted already or still pending, for this
/// thread alone (the only one that does not block the user signals): returning from any
/// system call hands it to the handler.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn catch_up(_deadline: Option<Instant>) -> u32 {
    sys::take_pending_signals();
    0
}
