//! The error of the daemon runtime: one matchable variant per way starting, stopping or
//! signalling a daemon can fail, each carrying the path and the OS error involved.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::Pid;

/// Why a daemon could not be started, stopped or signalled.
///
/// ```no_run
/// use deluxe::process::daemon::{Controller, DaemonError};
/// # struct Worker;
/// # impl deluxe::process::daemon::Daemon for Worker { fn run(&self) {} }
///
/// match Controller::new(Worker).start() {
///     Ok(pid) => println!("started, pid {pid}"),
///     Err(DaemonError::AlreadyRunning { pid, .. }) => println!("already running, pid {pid}"),
///     Err(DaemonError::WorkdirMissing { path }) => eprintln!("create {} first", path.display()),
///     Err(other) => eprintln!("{other}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonError {
    /// The daemon is already running: its pidfile is locked by the process `pid`.
    AlreadyRunning {
        /// The running daemon.
        pid: Pid,
        /// Its pidfile.
        pidfile: PathBuf,
    },
    /// The daemon is not running, so it cannot be signalled.
    NotRunning {
        /// The pidfile that nobody holds.
        pidfile: PathBuf,
    },
    /// The working directory does not exist (or is not a directory).
    WorkdirMissing {
        /// The directory asked for.
        path: PathBuf,
    },
    /// The working directory exists but cannot be entered.
    Workdir {
        /// The directory asked for.
        path: PathBuf,
        /// Why it cannot be entered.
        source: io::Error,
    },
    /// The pidfile cannot be created, locked, written or read.
    Pidfile {
        /// The pidfile.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The log file cannot be opened for appending.
    LogFile {
        /// The log file.
        path: PathBuf,
        /// Why it cannot be opened.
        source: io::Error,
    },
    /// No user account has the name given in [`Config::user`](super::Config#structfield.user).
    UnknownUser {
        /// The name.
        user: String,
    },
    /// No group has the name given in [`Config::group`](super::Config#structfield.group).
    UnknownGroup {
        /// The name.
        group: String,
    },
    /// Running as another user or group is impossible as asked, or dropping the privileges
    /// failed.
    Privileges {
        /// What failed, such as `setuid` or `remove the pidfile as that user`.
        step: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A `fork` (or the pipe the daemon reports through) failed.
    Fork {
        /// The OS error.
        source: io::Error,
    },
    /// Another step of turning into a daemon failed.
    Setup {
        /// The step, such as `setsid` or `start the signal thread`.
        step: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The daemon ended before it was ready, without saying why (it was killed, or it
    /// panicked: the detail says what is known).
    WorkerDied {
        /// What is known.
        detail: String,
    },
    /// The daemon did not report ready within the start timeout; it was killed.
    StartTimeout {
        /// The daemon's pid, when it was known.
        pid: Option<Pid>,
        /// The timeout.
        timeout: Duration,
    },
    /// Sending a signal to the daemon failed.
    Signal {
        /// The daemon.
        pid: Pid,
        /// The signal, such as `SIGTERM`.
        signal: &'static str,
        /// The OS error (`EPERM`: the daemon belongs to another user).
        source: io::Error,
    },
    /// The daemon did not exit even after `SIGKILL`.
    StopTimeout {
        /// The daemon.
        pid: Pid,
        /// How long `stop` waited after `SIGKILL`.
        waited: Duration,
    },
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyRunning { pid, pidfile } => {
                write!(
                    f,
                    "already running (pid {pid}, pidfile {})",
                    pidfile.display()
                )
            }
            Self::NotRunning { pidfile } => {
                write!(
                    f,
                    "not running (no process holds pidfile {})",
                    pidfile.display()
                )
            }
            Self::WorkdirMissing { path } => write!(
                f,
                "working directory {} does not exist; create it or choose another `workdir`",
                path.display()
            ),
            Self::Workdir { path, source } => {
                write!(
                    f,
                    "cannot enter working directory {}: {source}",
                    path.display()
                )
            }
            Self::Pidfile { path, source } => {
                write!(f, "pidfile {}: {source}", path.display())?;
                match source.raw_os_error() {
                    Some(libc::EACCES | libc::EPERM | libc::EROFS) => f.write_str(
                        "; choose a pidfile in a directory this user can write, or run as root",
                    ),
                    Some(libc::ENOENT) => f.write_str("; its directory does not exist"),
                    _ => Ok(()),
                }
            }
            Self::LogFile { path, source } => {
                write!(
                    f,
                    "cannot open log file {} for appending: {source}",
                    path.display()
                )
            }
            Self::UnknownUser { user } => write!(f, "no user account named `{user}` exists"),
            Self::UnknownGroup { group } => write!(f, "no group named `{group}` exists"),
            Self::Privileges { step, source } => {
                write!(f, "cannot run as the configured user ({step}): {source}")
            }
            Self::Fork { source } => write!(f, "cannot fork the daemon: {source}"),
            Self::Setup { step, source } => write!(f, "daemon setup failed ({step}): {source}"),
            Self::WorkerDied { detail } => {
                write!(f, "the daemon died before it was ready: {detail}")
            }
            Self::StartTimeout { pid, timeout } => {
                write!(f, "the daemon was not ready within {timeout:?}")?;
                match pid {
                    Some(pid) => write!(f, "; process {pid} was killed"),
                    None => Ok(()),
                }
            }
            Self::Signal {
                pid,
                signal,
                source,
            } => write!(
                f,
                "cannot send {signal} to the daemon (pid {pid}): {source}"
            ),
            Self::StopTimeout { pid, waited } => write!(
                f,
                "the daemon (pid {pid}) still runs {waited:?} after SIGKILL (stuck in the kernel?)"
            ),
        }
    }
}

impl std::error::Error for DaemonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Workdir { source, .. }
            | Self::Pidfile { source, .. }
            | Self::LogFile { source, .. }
            | Self::Fork { source }
            | Self::Setup { source, .. }
            | Self::Privileges { source, .. }
            | Self::Signal { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An `io::Error` for `errno` with a message of our own in place of the OS's.
pub(crate) fn explained(errno: nix::errno::Errno, message: &str) -> io::Error {
    io::Error::new(
        io::Error::from(errno).kind(),
        format!("{message} ({errno})"),
    )
}
