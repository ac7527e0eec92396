//! The Unix system calls `command` makes that Rust cannot check (`unsafe`): the only module
//! of `command` allowed to use `unsafe`. Each wrapper is safe to call: it takes owned or
//! borrowed descriptors and plain values, and keeps its `// SAFETY:` reasoning beside the
//! call. The pidfd calls serve the daemon's controller too (`daemon::target`).
//!
//! None of them is called between `fork` and `exec` (std's `Command` makes those calls).

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Whether the child `pid` has exited, without reaping it (`waitid` with `WNOWAIT`: it stays
/// a zombie, so its pid and group cannot be reused). A child reaped already (`ECHILD`:
/// `SIGCHLD` ignored by someone) has exited.
pub(crate) fn child_exited(pid: Pid) -> bool {
    // SAFETY: siginfo_t is plain data; waitid fills it or leaves it zeroed.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own unreaped child, with WNOWAIT: nothing is reaped.
    let result = unsafe {
        libc::waitid(
            libc::P_PID,
            pid.as_raw() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if result != 0 {
        return Errno::last() == Errno::ECHILD;
    }
    // SAFETY: reading the pid field of a siginfo_t filled by waitid.
    unsafe { info.si_pid() != 0 }
}

/// Reaps every child that has exited, without blocking (what an ignored `SIGCHLD` would have
/// done meanwhile).
pub(crate) fn reap_exited() {
    loop {
        // SAFETY: siginfo_t is plain data.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: reaping any exited child without blocking.
        let result =
            unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG) };
        // SAFETY: reading the pid field of a siginfo_t filled by waitid.
        if result != 0 || unsafe { info.si_pid() } == 0 {
            break;
        }
    }
}

/// A pidfd for process `pid` (Linux): readable once it has exited, and a signal target that
/// cannot be another process reusing the pid. `ENOSYS` on kernels without pidfds.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just returned by pidfd_open and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` to the process a pidfd names (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_send_signal(
    pidfd: BorrowedFd<'_>,
    signal: nix::sys::signal::Signal,
) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal takes a pidfd, a signal number, a null siginfo and flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if sent == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Whether a `SIGPIPE` is pending for this thread (or process).
pub(crate) fn sigpipe_pending() -> bool {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset and sigpending fill the set we own; sigismember reads it.
    unsafe {
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending) == 0 && libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// `SIGCHLD`'s action, as read to be put back later.
pub(crate) struct ChildAction(libc::sigaction);

// SAFETY: a sigaction record is plain data (a handler address, flags, a mask).
unsafe impl Send for ChildAction {}

impl ChildAction {
    /// The current action for `SIGCHLD`; `None` when it cannot be read.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: sigaction is plain data, filled below.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction with no new action only reads the current one into `old`.
        if unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut old) } != 0 {
            return None;
        }
        Some(Self(old))
    }

    /// Whether this action lets the kernel reap children itself (`SIG_IGN` or
    /// `SA_NOCLDWAIT`): their exit statuses are lost.
    pub(crate) fn discards_statuses(&self) -> bool {
        self.0.sa_sigaction == libc::SIG_IGN || self.0.sa_flags & libc::SA_NOCLDWAIT != 0
    }

    /// Sets `SIGCHLD` to its default action (zombies are kept); says whether it was set.
    pub(crate) fn set_default() -> bool {
        // SAFETY: sigaction is plain data; the default action runs no code of ours.
        let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
        default.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installing the default action for SIGCHLD.
        unsafe { libc::sigaction(libc::SIGCHLD, &default, std::ptr::null_mut()) == 0 }
    }

    /// Puts this action back for `SIGCHLD`.
    pub(crate) fn restore(&self) {
        // SAFETY: putting back an action read by sigaction for SIGCHLD.
        let _ = unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

/// Registers `fd` with tokio's reactor for `interest`.
#[cfg(feature = "tokio")]
pub(crate) fn register(
    fd: std::os::fd::OwnedFd,
    interest: tokio::io::Interest,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: an `OwnedFd` is open, names one file description until it is dropped with
    // the `AsyncFd`, and always gives the same descriptor.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
        .map_err(std::io::Error::from)
}
