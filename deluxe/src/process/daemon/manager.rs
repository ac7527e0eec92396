//! What a service manager (systemd, or anything speaking its protocols) hands a daemon and
//! hears from it, beyond readiness: sockets passed for socket activation (`LISTEN_FDS`), the
//! watchdog (`WATCHDOG_USEC`), free-form status text and start/stop timeout extensions.
//!
//! The manager addresses the process it started (`LISTEN_PID`, `WATCHDOG_PID`). A daemon
//! forked by `start` is a grandchild of that process: it accepts what was addressed to the
//! controller that started it (whose pid it keeps from before the fork), and the controller
//! keeps the passed sockets open for it.

use std::fmt;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::Duration;

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
const FIRST: RawFd = 3;

/// The pid of the controller that started this daemon, recorded before forking (0: none).
static LAUNCHER: AtomicU32 = AtomicU32::new(0);

/// Whether [`listen_fds`] has handed the passed descriptors out (they have one owner).
static CLAIMED: AtomicBool = AtomicBool::new(false);

/// Whether the passed descriptors were checked before the start opened anything (then
/// [`MISSING`] says how it went): after that, a number the manager named but did not pass may
/// hold a file the runtime opened (the pidfile, `/dev/null`), which must never be handed out.
static CHECKED: AtomicBool = AtomicBool::new(false);
/// The first passed descriptor that was not open when checked; -1: none.
static MISSING: AtomicI32 = AtomicI32::new(-1);

/// Called by a controller about to start a daemon (or to run one in the foreground), before
/// anything is opened: what the manager addressed to this process is the daemon's too.
/// Returns the descriptors passed to this process, which the daemon keeps.
pub(crate) fn before_start() -> Vec<RawFd> {
    LAUNCHER.store(std::process::id(), Ordering::Relaxed);
    let Ok(Some(count)) = passed_count() else {
        return Vec::new();
    };
    if CLAIMED.load(Ordering::Acquire) {
        return Vec::new();
    }
    let passed: Vec<RawFd> = (FIRST..FIRST + count).collect();
    let missing = passed.iter().copied().find(|&fd| !is_open(fd));
    MISSING.store(missing.unwrap_or(-1), Ordering::Relaxed);
    CHECKED.store(true, Ordering::Release);
    if missing.is_some() {
        Vec::new()
    } else {
        passed
    }
}

fn is_socket_or_fifo(fd: RawFd) -> bool {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills a valid, writable `struct stat` for an open descriptor.
    if unsafe { libc::fstat(fd, &mut stat) } == -1 {
        return false;
    }
    matches!(stat.st_mode & libc::S_IFMT, libc::S_IFSOCK | libc::S_IFIFO)
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails on a closed number.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Whether a `*_PID` variable's value names this process, or the controller that started it.
fn addressed_here(value: &str) -> Option<bool> {
    let pid: u32 = value.trim().parse().ok()?;
    let launcher = LAUNCHER.load(Ordering::Relaxed);
    Some(pid == std::process::id() || (launcher != 0 && pid == launcher))
}

/// `LISTEN_FDS` when `LISTEN_PID` addresses this process; `None` when nothing was passed here.
fn passed_count() -> Result<Option<RawFd>, ListenFdsError> {
    let Some(pid) = std::env::var_os("LISTEN_PID") else {
        return Ok(None);
    };
    let pid = pid.to_string_lossy().into_owned();
    match addressed_here(&pid) {
        None => return Err(ListenFdsError::InvalidPid { value: pid }),
        Some(false) => return Ok(None),
        Some(true) => {}
    }
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    match count.trim().parse::<RawFd>() {
        Ok(count) if (0..=4096).contains(&count) => Ok(Some(count)),
        _ => Err(ListenFdsError::InvalidCount { value: count }),
    }
}

/// A descriptor a service manager passed for socket activation, and its name.
///
/// ```no_run
/// use deluxe::process::daemon;
///
/// for passed in daemon::listen_fds()? {
///     println!("{} is descriptor {:?}", passed.name, passed.fd);
/// }
/// # Ok::<(), deluxe::process::daemon::ListenFdsError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct ListenFd {
    /// The descriptor, owned: dropping it closes the socket.
    pub fd: OwnedFd,
    /// Its name (`FileDescriptorName=` in the socket unit; `LISTEN_FDNAMES`), or `unknown`.
    pub name: String,
}

impl ListenFd {
    /// The descriptor as a TCP listener (a `ListenStream=` socket on an address).
    ///
    /// ```no_run
    /// let listener = deluxe::process::daemon::listen_fds()?
    ///     .into_iter()
    ///     .next()
    ///     .expect("systemd passed a socket")
    ///     .into_tcp_listener();
    /// # Ok::<(), deluxe::process::daemon::ListenFdsError>(())
    /// ```
    pub fn into_tcp_listener(self) -> TcpListener {
        TcpListener::from(self.fd)
    }

    /// The descriptor as a Unix stream listener (`ListenStream=/run/NAME.sock`).
    ///
    /// ```no_run
    /// let passed = deluxe::process::daemon::listen_fds()?;
    /// if let Some(socket) = passed.into_iter().find(|fd| fd.name == "control") {
    ///     let listener = socket.into_unix_listener();
    /// #   let _ = listener;
    /// }
    /// # Ok::<(), deluxe::process::daemon::ListenFdsError>(())
    /// ```
    pub fn into_unix_listener(self) -> UnixListener {
        UnixListener::from(self.fd)
    }

    /// The descriptor as a Unix datagram socket (`ListenDatagram=`).
    ///
    /// ```no_run
    /// let passed = deluxe::process::daemon::listen_fds()?;
    /// let socket = passed.into_iter().next().map(|fd| fd.into_unix_datagram());
    /// # Ok::<(), deluxe::process::daemon::ListenFdsError>(())
    /// ```
    pub fn into_unix_datagram(self) -> UnixDatagram {
        UnixDatagram::from(self.fd)
    }
}

/// Why [`listen_fds`] could not take the passed descriptors: the environment a service
/// manager set is malformed.
///
/// ```
/// use deluxe::process::daemon::ListenFdsError;
///
/// let error = ListenFdsError::InvalidCount { value: "two".into() };
/// assert_eq!(error.to_string(), "LISTEN_FDS is \"two\", not a number of descriptors");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenFdsError {
    /// `LISTEN_PID` is not a pid.
    InvalidPid {
        /// Its value.
        value: String,
    },
    /// `LISTEN_FDS` is not a count of descriptors.
    InvalidCount {
        /// Its value.
        value: String,
    },
    /// `LISTEN_FDNAMES` does not name as many descriptors as `LISTEN_FDS` counts.
    NamesMismatch {
        /// Its value.
        names: String,
        /// `LISTEN_FDS`.
        count: usize,
    },
    /// A descriptor `LISTEN_FDS` counts is not open.
    NotOpen {
        /// The descriptor.
        fd: RawFd,
    },
    /// A descriptor `LISTEN_FDS` counts is neither a socket nor a FIFO: most likely a file the
    /// program opened itself before asking (call `listen_fds` before opening anything).
    NotASocket {
        /// The descriptor.
        fd: RawFd,
    },
}

impl fmt::Display for ListenFdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPid { value } => write!(f, "LISTEN_PID is {value:?}, not a pid"),
            Self::InvalidCount { value } => {
                write!(f, "LISTEN_FDS is {value:?}, not a number of descriptors")
            }
            Self::NamesMismatch { names, count } => write!(
                f,
                "LISTEN_FDNAMES {names:?} does not name the {count} descriptor(s) of LISTEN_FDS"
            ),
            Self::NotOpen { fd } => write!(
                f,
                "descriptor {fd} was passed in LISTEN_FDS but is not open (closed before \
                 listen_fds() was called?)"
            ),
            Self::NotASocket { fd } => write!(
                f,
                "descriptor {fd}, counted in LISTEN_FDS, is neither a socket nor a FIFO (a \
                 file the program opened before asking?); refusing to take it"
            ),
        }
    }
}

impl std::error::Error for ListenFdsError {}

/// Takes the sockets a service manager passed for socket activation (systemd's `.socket`
/// units, `systemd-socket-activate`, ...): `LISTEN_FDS` descriptors from 3 on, addressed to
/// this process by `LISTEN_PID`, named by `LISTEN_FDNAMES`; sockets and FIFOs only (a
/// `ListenSpecial=` file is refused: a passed number holding a file is more likely one the
/// program opened itself, which must not get a second owner). Works in the foreground and in a
/// daemon forked by [`Controller::start`](super::Controller::start), which keeps them open for
/// it. Call it once, best in [`Daemon::setup`](super::Daemon::setup): the descriptors get one
/// owner, so later calls return an empty list (as does a process nothing was passed to). They
/// are made close-on-exec.
///
/// # Errors
///
/// [`ListenFdsError`] when the variables are malformed or a counted descriptor is not open.
///
/// ```no_run
/// use std::net::TcpListener;
/// use std::sync::OnceLock;
/// use deluxe::process::daemon::{self, Daemon, HookError};
///
/// struct Web {
///     listener: OnceLock<TcpListener>,
/// }
///
/// impl Daemon for Web {
///     fn setup(&self) -> Result<(), HookError> {
///         // Passed by systemd (Sockets=web.socket), or bound here when run by hand.
///         let listener = match daemon::listen_fds()?.into_iter().next() {
///             Some(passed) => passed.into_tcp_listener(),
///             None => TcpListener::bind("127.0.0.1:8080")?,
///         };
///         let _ = self.listener.set(listener);
///         Ok(())
///     }
///
///     fn run(&self) -> Result<(), HookError> { /* accept on self.listener */ Ok(()) }
/// }
/// ```
pub fn listen_fds() -> Result<Vec<ListenFd>, ListenFdsError> {
    let Some(count) = passed_count()? else {
        return Ok(Vec::new());
    };
    let names = std::env::var("LISTEN_FDNAMES").ok();
    let names: Vec<String> = match &names {
        Some(names) => names.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); count as usize],
    };
    if names.len() != count as usize {
        return Err(ListenFdsError::NamesMismatch {
            names: std::env::var("LISTEN_FDNAMES").unwrap_or_default(),
            count: count as usize,
        });
    }
    let fds: Vec<RawFd> = (FIRST..FIRST + count).collect();
    // Checked before the start opened anything, when there was a start: now a missing number
    // may hold the runtime's own files.
    let missing = if CHECKED.load(Ordering::Acquire) {
        Some(MISSING.load(Ordering::Relaxed)).filter(|fd| *fd >= 0)
    } else {
        fds.iter().copied().find(|&fd| !is_open(fd))
    };
    if let Some(fd) = missing {
        return Err(ListenFdsError::NotOpen { fd });
    }
    // A program that opened a file before asking may have it on a passed number: it is not
    // the manager's, and must not get a second owner.
    if let Some(&fd) = fds.iter().find(|&&fd| !is_socket_or_fifo(fd)) {
        return Err(ListenFdsError::NotASocket { fd });
    }
    if CLAIMED.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    Ok(fds
        .into_iter()
        .zip(names)
        .map(|(fd, name)| {
            // SAFETY: setting close-on-exec on an open descriptor (checked above).
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            ListenFd {
                // SAFETY: the service manager passed this open descriptor to this process for
                // it to own; `CLAIMED` makes this the only owner.
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                name,
            }
        })
        .collect())
}

/// The watchdog interval a service manager asks for (`WATCHDOG_USEC`, systemd's
/// `WatchdogSec=`), when `WATCHDOG_PID` is unset or addresses this daemon (or the controller
/// that started it). Ping with [`notify_watchdog`] more often than that, from the code that
/// proves the daemon works (the loop that serves requests, not a timer thread of its own):
/// when the pings stop, the manager restarts the service.
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use deluxe::process::daemon;
///
/// # fn serve_one_request() {}
/// // In `run`: ping at half the interval, from the serving loop itself.
/// let every = daemon::watchdog().map(|interval| interval / 2);
/// let mut last = Instant::now();
/// while !daemon::stop_requested() {
///     serve_one_request();
///     if every.is_some_and(|every| last.elapsed() >= every) {
///         let _ = daemon::notify_watchdog();
///         last = Instant::now();
///     }
/// }
/// ```
pub fn watchdog() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && addressed_here(&pid) != Some(true)
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Tells the service manager the daemon is alive (`WATCHDOG=1`). Nothing happens without a
/// manager (`NOTIFY_SOCKET` unset).
///
/// # Errors
///
/// The socket's error when the notification cannot be sent.
///
/// ```no_run
/// deluxe::process::daemon::notify_watchdog()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn notify_watchdog() -> std::io::Result<()> {
    sd_notify::notify(&[sd_notify::NotifyState::Watchdog])
}

/// Tells the service manager what the daemon is doing (`STATUS=`, shown by
/// `systemctl status`). Nothing happens without a manager.
///
/// # Errors
///
/// The socket's error when the notification cannot be sent.
///
/// ```no_run
/// deluxe::process::daemon::set_status("serving 12 clients")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_status(text: &str) -> std::io::Result<()> {
    sd_notify::notify(&[sd_notify::NotifyState::Status(text)])
}

/// Tells the service manager why the daemon failed to start, as its status: one line (a
/// newline would start another assignment, such as `READY=1`, in the protocol). Nothing
/// happens without a manager, nor if the socket fails: the caller reports the error anyway.
pub(crate) fn status_failed(message: &str) {
    let _ = set_status(&one_line(message));
}

/// `message` with its line breaks made spaces.
fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}

/// Asks the service manager for `by` more time to start or stop (`EXTEND_TIMEOUT_USEC=`),
/// from a long [`setup`](super::Daemon::setup) (an index to load) or a long
/// [`atexit`](super::Daemon::atexit) (a cache to flush). Repeat it before `by` runs out.
/// Nothing happens without a manager.
///
/// # Errors
///
/// The socket's error when the notification cannot be sent.
///
/// ```no_run
/// use std::time::Duration;
///
/// // In setup, before a long load.
/// deluxe::process::daemon::extend_timeout(Duration::from_secs(60))?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn extend_timeout(by: Duration) -> std::io::Result<()> {
    let usec = u32::try_from(by.as_micros()).unwrap_or(u32::MAX);
    sd_notify::notify(&[sd_notify::NotifyState::ExtendTimeoutUsec(usec)])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failure_status_is_one_line_that_cannot_say_ready() {
        assert_eq!(
            super::one_line("bad config\nREADY=1\r\nMAINPID=1"),
            "bad config READY=1  MAINPID=1"
        );
    }
}
