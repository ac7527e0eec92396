//! The running daemon, as the controller holds it: found through the pidfile lock, signalled
//! through a pidfd (Linux), waited for without polling.

use std::io;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::FromRawFd;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::pidfile::{self, Probe};
use super::sys::{self, Identity};
use super::{DaemonError, Pid};

/// Whether the controller signals the portable way (`kill` and the pidfile lock) even where
/// pidfds exist, so that tests can exercise it on Linux. Not part of the API.
static PORTABLE_SIGNALLING: AtomicBool = AtomicBool::new(false);

/// See `__private::use_portable_signalling`.
pub(crate) fn use_portable_signalling() {
    PORTABLE_SIGNALLING.store(true, Ordering::Relaxed);
}

/// Where the daemon is, if anywhere: the states of [`Status`](super::Status).
pub(crate) enum Located {
    /// There is no pidfile.
    Stopped,
    /// A pidfile exists, but no process holds it.
    Stale,
    Running(Target),
}

/// What became of a signal sent to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    Delivered,
    /// The daemon had exited before the signal was sent.
    AlreadyGone,
}

/// A running daemon: its pid, a pidfd where the system has them, and the pidfile it holds
/// (open, so that waiting on its lock works even after the daemon removed it).
pub(crate) struct Target {
    pub(crate) pid: Pid,
    pidfd: Option<OwnedFd>,
    pidfile: OwnedFd,
}

/// Finds the process holding `path`, making sure a recycled pid can never be mistaken for it.
///
/// With a pidfd open on the pid named in the pidfile, the lock is checked again: if the same
/// pid still holds it, the pidfd refers to the holder (a process that had died meanwhile would
/// make every later signal fail with `ESRCH`, never reach another process). On Linux the
/// holder must also have the pidfile open, which a process that merely reuses the pid of a
/// dead daemon does not.
pub(crate) fn locate(path: &Path) -> Result<Located, DaemonError> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let Some(file) = pidfile::observe(path)? else {
            return Ok(Located::Stopped);
        };
        let Probe::Running { pid, identity, .. } = file.read(path)? else {
            return Ok(Located::Stale);
        };
        let pidfd = match open_pidfd(pid) {
            Ok(pidfd) => pidfd,
            Err(Errno::ESRCH) => continue,
            Err(errno) => return Err(pidfile::pidfile_error(path, errno)),
        };
        // With the process pinned, the same file must still be locked, name the same pid, be
        // the one the path names, and be open in that process.
        let still = matches!(file.read(path)?, Probe::Running { pid: again, .. } if again == pid);
        if !still || !file.is_named_by(path) || !holds_open(pid, identity) {
            continue;
        }
        return Ok(Located::Running(Target {
            pid,
            pidfd,
            pidfile: file.fd,
        }));
    }
    Err(DaemonError::PidfileHolderMismatch {
        path: path.to_path_buf(),
    })
}

impl Target {
    /// The daemon's process group, if the daemon owns it (it is its session's group, led by
    /// the daemon itself or by a process gone: a forked daemon's, or one a supervisor started
    /// with `setsid`) and it is not this process's. Asked while the daemon runs, so that the
    /// group id is its.
    pub(crate) fn own_group(&self) -> Option<libc::pid_t> {
        // SAFETY: getpgid and getsid only read another process's ids.
        let (group, session, ours) = unsafe {
            (
                libc::getpgid(self.pid.raw()),
                libc::getsid(self.pid.raw()),
                libc::getpgid(0),
            )
        };
        let led_by_another = group != self.pid.raw() && sys::process_alive(group);
        (group > 1 && group == session && group != ours && !led_by_another).then_some(group)
    }

    /// Whether the daemon, now gone, exited because its stop grace expired before `run`
    /// returned (it said so in the pidfile this target holds open).
    pub(crate) fn grace_expired(&self) -> bool {
        pidfile::said(self.pidfile.as_fd(), pidfile::GRACE_EXPIRED)
    }
}

/// Waits (up to `bound`) until process `pid` has exited, when a pidfd can be had for it.
pub(crate) fn wait_gone(pid: Pid, bound: Duration) {
    if let Ok(Some(pidfd)) = open_pidfd(pid) {
        let _ = sys::wait_readable(pidfd.as_fd(), bound);
    }
}

/// A pidfd for `pid`; `None` where the system has none (then `kill` is used).
fn open_pidfd(pid: Pid) -> Result<Option<OwnedFd>, Errno> {
    if PORTABLE_SIGNALLING.load(Ordering::Relaxed) {
        return if sys::process_exists(pid.raw()) {
            Ok(None)
        } else {
            Err(Errno::ESRCH)
        };
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.raw(), 0) };
        if fd >= 0 {
            // SAFETY: the descriptor was just returned and is owned by nothing else.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }));
        }
        match Errno::last() {
            Errno::ENOSYS => {}
            errno => return Err(errno),
        }
    }
    if sys::process_exists(pid.raw()) {
        Ok(None)
    } else {
        Err(Errno::ESRCH)
    }
}

/// Whether process `pid` has the file `identity` open. `true` when that cannot be checked
/// (no `/proc`, or the process belongs to another user: signalling it would fail anyway).
fn holds_open(pid: Pid, identity: Identity) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::MetadataExt;
        let is_pidfile = |path: &Path| {
            std::fs::metadata(path)
                .is_ok_and(|meta| Identity::new(meta.dev(), meta.ino()) == identity)
        };
        // A deluxe daemon started from a program with no stray descriptors has its pidfile
        // on descriptor 3: look there first, then everywhere.
        let fds = std::path::PathBuf::from(format!("/proc/{pid}/fd"));
        if is_pidfile(&fds.join("3")) {
            return true;
        }
        let Ok(entries) = std::fs::read_dir(&fds) else {
            return true;
        };
        entries.flatten().any(|entry| is_pidfile(&entry.path()))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (pid, identity);
        true
    }
}

impl Target {
    /// Sends `signal`.
    pub(crate) fn signal(&self, signal: Signal) -> Result<Delivery, DaemonError> {
        let result = match &self.pidfd {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Some(pidfd) => {
                // SAFETY: pidfd_send_signal takes a pidfd, a signal number, a null siginfo and
                // flags.
                let sent = unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        std::os::fd::AsRawFd::as_raw_fd(pidfd),
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
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            Some(_) => unreachable!("pidfds exist on Linux only"),
            None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid.raw()), signal),
        };
        match result {
            Ok(()) => Ok(Delivery::Delivered),
            Err(Errno::ESRCH) => Ok(Delivery::AlreadyGone),
            Err(errno) => Err(DaemonError::Signal {
                pid: self.pid,
                signal: signal.as_str(),
                source: errno.into(),
            }),
        }
    }

    /// Waits up to `timeout` for the daemon to exit; says whether it did. "Exited" is what the
    /// kernel reports on the pidfd, or the release of the pidfile lock (which happens as the
    /// process exits): a zombie waiting for a slow init to reap it counts as gone.
    pub(crate) fn wait_exit(&self, timeout: Duration) -> io::Result<bool> {
        match &self.pidfd {
            Some(pidfd) => sys::wait_readable(pidfd.as_fd(), timeout),
            None => self.wait_unlocked(timeout),
        }
    }

    /// Without a pidfd: a helper thread blocks on the pidfile lock. If the daemon outlives
    /// the timeout the thread stays blocked until it exits (after `SIGKILL`, at once).
    fn wait_unlocked(&self, timeout: Duration) -> io::Result<bool> {
        let file = self.pidfile.try_clone()?;
        let (done, exited) = mpsc::channel();
        std::thread::Builder::new()
            .name("deluxe-wait".into())
            .spawn(move || {
                let _ = done.send(sys::wait_unlocked(file.as_fd()));
            })?;
        match exited.recv_timeout(timeout) {
            Ok(Ok(())) => Ok(true),
            Ok(Err(errno)) => Err(errno.into()),
            Err(_) => Ok(false),
        }
    }
}
