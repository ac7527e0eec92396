//! The running daemon, as the controller holds it: found through the pidfile lock (the
//! kernel names its holder), signalled through a pidfd (Linux), waited for without polling.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::pidfile;
use super::sys::{self, Holder, Identity};
use super::{DaemonError, Pid, Refusal};
#[cfg(any(target_os = "linux", target_os = "android"))]
use crate::command::sys as command_sys;

/// Whether the controller signals the portable way (`kill` and the pidfile lock) even where
/// pidfds exist, so that tests can exercise it on Linux. Not part of the API.
static PORTABLE_SIGNALLING: AtomicBool = AtomicBool::new(false);

/// See `__private::use_portable_signalling`.
pub(crate) fn use_portable_signalling() {
    PORTABLE_SIGNALLING.store(true, Ordering::Relaxed);
}

/// How long a controller waits for a pidfile in transition to settle: a daemon that has
/// locked its pidfile but not yet written its pid, a controller holding a stale pidfile's lock
/// while it removes it, a daemon exiting. Each takes microseconds; this covers a loaded
/// machine. Only what is still unsettled after it is an error.
const TRANSIENT_WAIT: Duration = Duration::from_secs(2);

/// How long a holder that cannot be inspected is looked at again before that is an error:
/// shorter, because it is usually no transient at all (a daemon of another user, or one that
/// dropped its privileges, asked about by an unprivileged controller).
const UNCONFIRMED_WAIT: Duration = Duration::from_millis(200);

/// Where the daemon is, if anywhere: the states of [`Status`](super::Status).
pub(crate) enum Located {
    /// There is no pidfile.
    Stopped,
    /// A pidfile exists, but no process holds it; `pid` is what it says, if readable.
    Stale { pid: Option<Pid> },
    /// A process holds the pidfile's lock, as the kernel says.
    Running(Target),
    /// A process outside this process's PID namespace holds the lock: the kernel gives no pid
    /// for it. `since`: the pidfile's modification time.
    Elsewhere { since: std::time::SystemTime },
}

/// What one look at a pidfile in transition found.
enum Unsettled {
    /// Locked, but no pid written (a daemon starting, or another program).
    NoPid,
    /// Locked, but not by the process named (a controller removing a stale pidfile, a daemon
    /// exiting, or another program).
    NotHolder(Pid),
    /// The process named is alive but cannot be inspected.
    Unconfirmed(Pid, io::Error),
    /// The path named another file by the end of the look.
    Replaced,
}

/// What became of a signal sent to the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    Delivered,
    /// The daemon had exited before the signal was sent.
    AlreadyGone,
}

/// A running daemon: its pid, a pidfd where the system has them, and the pidfile it holds
/// (open, so that waiting on its lock works even after the daemon removed it; `None` in the
/// daemon itself, which must not open its own pidfile again).
pub(crate) struct Target {
    pub(crate) pid: Pid,
    pidfd: Option<OwnedFd>,
    pidfile: Option<OwnedFd>,
    /// When the daemon started: when it wrote its pid in the pidfile.
    since: std::time::SystemTime,
    /// The pidfile's owner.
    owner: u32,
    /// The holder's real and saved user ids (those `kill` checks), where known.
    uids: Option<[u32; 2]>,
}

/// Finds the process holding `path`, as the kernel names it. Short transients (see
/// [`TRANSIENT_WAIT`]) are waited out, never reported: concurrent controllers see a
/// consistent answer.
///
/// The daemon holds a classic record lock on its pidfile, and `F_GETLK` names the holder of
/// that lock, in this process's PID namespace, to any process that may read the file: the
/// service's own account, a process in another PID namespace, a system without `/proc`,
/// macOS and the BSDs alike. A pidfd pins the process across the check (a process that died
/// meanwhile makes the look start over, and every later signal fail with `ESRCH`). On Linux
/// the open-file-description lock stays the truth about whether a daemon holds the file; a
/// holder of that lock that no classic lock names (a process the daemon forked, a program
/// that is not a deluxe daemon) is checked through `/proc/PID/fdinfo` instead, and what
/// cannot be checked there is never taken for the holder
/// ([`DaemonError::HolderUnconfirmed`]).
pub(crate) fn locate(path: &Path) -> Result<Located, DaemonError> {
    // In the daemon itself: its own pidfile is known without opening it again.
    if let Some(since) = pidfile::own(path) {
        return Ok(Located::Running(Target {
            pid: Pid(std::process::id()),
            pidfd: open_pidfd(Pid(std::process::id())).ok().flatten(),
            pidfile: None,
            since,
            owner: nix::unistd::geteuid().as_raw(),
            uids: None,
        }));
    }
    let start = Instant::now();
    loop {
        let unsettled = match look(path)? {
            Ok(located) => return Ok(located),
            Err(unsettled) => unsettled,
        };
        let wait = match &unsettled {
            Unsettled::Unconfirmed(_, source) if source.kind() == io::ErrorKind::Unsupported => {
                Duration::ZERO
            }
            Unsettled::Unconfirmed(..) => UNCONFIRMED_WAIT,
            _ => TRANSIENT_WAIT,
        };
        if start.elapsed() < wait {
            sys::nap(Duration::from_millis(1));
            continue;
        }
        return Err(match unsettled {
            Unsettled::NoPid => DaemonError::PidfileWithoutPid {
                path: path.to_path_buf(),
            },
            Unsettled::NotHolder(pid) => DaemonError::PidfileHolderMismatch {
                path: path.to_path_buf(),
                pid,
            },
            Unsettled::Unconfirmed(pid, source) => DaemonError::HolderUnconfirmed {
                pid,
                pidfile: path.to_path_buf(),
                source,
            },
            Unsettled::Replaced => pidfile::pidfile_error(path, Errno::EAGAIN),
        });
    }
}

/// One look at the pidfile: settled, or in transition.
fn look(path: &Path) -> Result<Result<Located, Unsettled>, DaemonError> {
    let Some(file) = pidfile::observe(path)? else {
        return Ok(Ok(Located::Stopped));
    };
    let (holder, named) = file.look(path)?;
    if !file.is_named_by(path) {
        return Ok(Err(Unsettled::Replaced));
    }
    let since = sys::modified(file.fd.as_fd()).unwrap_or(std::time::UNIX_EPOCH);
    let pid = match holder {
        Holder::Nobody => return Ok(Ok(Located::Stale { pid: named })),
        Holder::OutsideNamespace => return Ok(Ok(Located::Elsewhere { since })),
        Holder::Pid(pid) => Pid(pid),
        Holder::Unnamed => {
            let Some(pid) = named else {
                return Ok(Err(Unsettled::NoPid));
            };
            pid
        }
    };
    let pidfd = match open_pidfd(pid) {
        Ok(pidfd) => pidfd,
        Err(Errno::ESRCH) => return Ok(Err(Unsettled::NotHolder(pid))),
        Err(errno) => return Err(pidfile::pidfile_error(path, errno)),
    };
    if holder == Holder::Unnamed {
        match holds_lock(pid, file.identity) {
            Ok(true) => {}
            Ok(false) => return Ok(Err(Unsettled::NotHolder(pid))),
            Err(source) => return Ok(Err(Unsettled::Unconfirmed(pid, source))),
        }
    }
    let uids = user_ids(pid);
    // The process is pinned: if it is still alive now, the checks above were about it (its
    // pid cannot have been reused meanwhile). And the path must still name the same file,
    // held by the same process, naming the same pid.
    let alive = match &pidfd {
        Some(pidfd) => !sys::wait_readable(pidfd.as_fd(), Duration::ZERO).map_err(|source| {
            DaemonError::Pidfile {
                path: path.to_path_buf(),
                source,
            }
        })?,
        None => sys::process_exists(pid.raw()),
    };
    if !alive {
        return Ok(Err(Unsettled::NotHolder(pid)));
    }
    if file.look(path)? != (holder, named) || !file.is_named_by(path) {
        return Ok(Err(Unsettled::Replaced));
    }
    Ok(Ok(Located::Running(Target {
        pid,
        pidfd,
        pidfile: Some(file.fd),
        since,
        owner: file.owner,
        uids,
    })))
}

impl Target {
    /// Whether the daemon, now gone, exited because its stop grace expired before `run`
    /// returned (it said so in the pidfile this target holds open).
    pub(crate) fn grace_expired(&self) -> bool {
        self.pidfile
            .as_ref()
            .is_some_and(|file| pidfile::said(file.as_fd(), pidfile::GRACE_EXPIRED))
    }

    /// When the daemon started: when it wrote its pid in the pidfile.
    pub(crate) fn since(&self) -> std::time::SystemTime {
        self.since
    }

    /// The daemon's process group, if the daemon owns it (it is its session's group, led by
    /// the daemon itself or by a process gone: a forked daemon's, or one a supervisor started
    /// with `setsid`) and it is not this process's. Asked while the daemon runs, so that the
    /// group id is its.
    pub(crate) fn own_group(&self) -> Option<libc::pid_t> {
        let (group, session) = sys::group_and_session(self.pid.raw());
        let (ours, _) = sys::group_and_session(0);
        let led_by_another = group != self.pid.raw() && sys::process_alive(group);
        (group > 1 && group == session && group != ours && !led_by_another).then_some(group)
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
        match command_sys::pidfd_open(nix::unistd::Pid::from_raw(pid.raw())) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::ENOSYS) => {}
            Err(errno) => return Err(errno),
        }
    }
    if sys::process_exists(pid.raw()) {
        Ok(None)
    } else {
        Err(Errno::ESRCH)
    }
}

/// Whether process `pid` holds the write lock of the file `identity` when no classic lock
/// names a holder: it has that file open, and its `/proc/PID/fdinfo` shows the lock on that
/// open file (an OFD lock, or a POSIX lock of that process). An error when its open files
/// cannot be read (permission: another user's process, or a non-dumpable one) or where the
/// system has no `/proc`.
fn holds_lock(pid: Pid, identity: Identity) -> io::Result<bool> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::fs::MetadataExt;
        let fds = std::path::PathBuf::from(format!("/proc/{pid}/fd"));
        let entries = match std::fs::read_dir(&fds) {
            Ok(entries) => entries,
            // The process is gone (or was never visible in this pid namespace).
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error),
        };
        // A deluxe daemon's pidfile is its descriptor 3 (it closes all others before opening
        // it): look there first, then everywhere.
        let names = std::iter::once(std::ffi::OsString::from("3"))
            .chain(entries.flatten().map(|entry| entry.file_name()));
        for name in names {
            match std::fs::metadata(fds.join(&name)) {
                Ok(meta) if Identity::new(meta.dev(), meta.ino()) == identity => {}
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            }
            let info = std::path::Path::new("/proc")
                .join(pid.to_string())
                .join("fdinfo")
                .join(&name);
            match std::fs::read_to_string(info) {
                Ok(info) if info.lines().any(is_write_lock) => return Ok(true),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(error),
            }
        }
        Ok(false)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (pid, identity);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this system cannot show which process holds a lock",
        ))
    }
}

/// Whether a line of `/proc/PID/fdinfo/FD` is a write lock held through that descriptor:
/// `lock:\t1: OFDLCK ADVISORY  WRITE -1 fe:00:10010720 0 EOF`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn is_write_lock(line: &str) -> bool {
    let Some(lock) = line.strip_prefix("lock:") else {
        return false;
    };
    let fields: Vec<&str> = lock.split_whitespace().collect();
    matches!(fields.as_slice(), [_, "OFDLCK" | "POSIX", _, "WRITE", ..])
}

/// The real and saved user ids of process `pid` (`Uid:` in `/proc/PID/status`, which anyone
/// may read), where the system shows them.
fn user_ids(pid: Pid) -> Option<[u32; 2]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ids: Vec<u32> = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match ids.as_slice() {
        [real, _effective, saved, ..] => Some([*real, *saved]),
        _ => None,
    }
}

impl Target {
    /// Why this controller must not signal the holder, if it must not: it is this process,
    /// or pid 1, or it runs as a user that neither this process (without its privileges)
    /// nor the pidfile's owner could signal.
    fn refusal(&self) -> Option<Refusal> {
        if self.is_this_process() {
            return Some(Refusal::ThisProcess);
        }
        if self.pid.as_u32() == 1 {
            return Some(Refusal::Init);
        }
        let [real, saved] = self.uids?;
        let mine = [
            nix::unistd::getuid().as_raw(),
            nix::unistd::geteuid().as_raw(),
        ];
        let allowed = |uid: u32| mine.contains(&uid) || uid == self.owner;
        (!allowed(real) && !allowed(saved)).then_some(Refusal::OtherUser { uid: real })
    }

    /// Whether the holder is the calling process (a daemon controlling itself).
    pub(crate) fn is_this_process(&self) -> bool {
        self.pid.as_u32() == std::process::id()
    }

    /// In the daemon itself: sends itself `SIGTERM`, the one signal a process may send
    /// itself through its own pidfile (asking its signal thread for a graceful stop).
    pub(crate) fn request_own_stop(&self) -> Result<Delivery, DaemonError> {
        debug_assert!(self.is_this_process());
        self.send(Signal::SIGTERM)
    }

    /// Sends `signal`, unless this controller must not ([`Target::refusal`]).
    pub(crate) fn signal(&self, signal: Signal) -> Result<Delivery, DaemonError> {
        self.check_signal(signal)?;
        self.send(signal)
    }

    /// Whether this controller may send `signal` (or make the request it stands for):
    /// [`DaemonError::SignalRefused`] when it must not ([`Target::refusal`]).
    pub(crate) fn check_signal(&self, signal: Signal) -> Result<(), DaemonError> {
        match self.refusal() {
            Some(reason) => Err(DaemonError::SignalRefused {
                pid: self.pid,
                signal: signal.as_str(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Whether `uid` could be the holder's user, where its pid cannot be checked: root, the
    /// pidfile's owner, or one of the holder's user ids when they are known.
    pub(crate) fn may_be_user(&self, uid: u32) -> bool {
        uid == 0 || uid == self.owner || self.uids.is_some_and(|uids| uids.contains(&uid))
    }

    fn send(&self, signal: Signal) -> Result<Delivery, DaemonError> {
        let result = match &self.pidfd {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Some(pidfd) => command_sys::pidfd_send_signal(pidfd.as_fd(), signal),
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
        // The daemon itself never waits for its own exit.
        let Some(file) = &self.pidfile else {
            return Ok(false);
        };
        let file = file.try_clone()?;
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
