//! The error of the daemon runtime: one matchable variant per way starting, stopping or
//! signalling a daemon can fail, each carrying the path and the OS error involved, and the
//! public [`Step`] enum naming the steps of a start.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::Pid;

/// Why a daemon could not be started, stopped or signalled.
///
/// `Display` is one line that says what went wrong and, where there is one, how to fix it;
/// it includes the OS error, so [`source`](std::error::Error::source) returns `None` (an
/// error reporter such as `anyhow`'s `{:#}` prints each cause once). The OS error itself is in
/// the variant's `source` field.
///
/// ```no_run
/// use deluxe::daemon::{Controller, DaemonError};
/// # struct Worker;
/// # impl deluxe::daemon::Daemon for Worker { fn run(&self) -> Result<(), deluxe::daemon::HookError> { Ok(()) } }
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
    /// The pidfile cannot be created, locked, written or read. The OS error tells why:
    /// `ELOOP` (a symbolic link, never followed), `EISDIR` (a directory), `EINVAL` (not a
    /// regular file), `EACCES`, `ENOENT` (no such directory), ...
    Pidfile {
        /// The pidfile.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// The pidfile is locked by a process that never wrote its pid in it: another program
    /// uses this path.
    PidfileWithoutPid {
        /// The pidfile.
        path: PathBuf,
    },
    /// The pidfile is locked, but not by the process whose pid it holds (checked until the
    /// short transients of a start or a cleanup had passed): another program uses this path,
    /// or a process the daemon forked still holds its lock after the daemon died.
    PidfileHolderMismatch {
        /// The pidfile.
        path: PathBuf,
        /// The pid the pidfile names.
        pid: Pid,
    },
    /// The pidfile is locked but no lock names its holder (on Linux: an open-file-description
    /// lock alone, as a process a daemon forked keeps, or another program's), and process
    /// `pid`, named by the pidfile and alive, could not be confirmed to hold it: its open
    /// files cannot be read (`/proc/PID/fd` and `fdinfo` need the
    /// right to trace it; a process that changed its credentials, such as a daemon that
    /// dropped from root to its user, is "non-dumpable" and readable by root only; a
    /// controller with no descriptor left, `EMFILE`, cannot open them either), or the system
    /// has no way to tell. The controller never signals what it could not check.
    HolderUnconfirmed {
        /// The process the pidfile names.
        pid: Pid,
        /// The pidfile.
        pidfile: PathBuf,
        /// Why its open files could not be read.
        source: io::Error,
    },
    /// A process outside this process's PID namespace holds the pidfile (this process runs in
    /// a container, the daemon on the host or in another container): the kernel names no pid
    /// for it, so it can be neither signalled nor replaced from here.
    OutsideNamespace {
        /// The pidfile.
        pidfile: PathBuf,
    },
    /// The controller refused to send a signal to the process holding the pidfile.
    SignalRefused {
        /// The process.
        pid: Pid,
        /// The signal, such as `SIGTERM`.
        signal: &'static str,
        /// Why.
        reason: Refusal,
    },
    /// The pidfile's place could let another user forge it: refused before anything is
    /// read from it or started (a pidfile another user made in a world-writable directory:
    /// by `start`; a private directory of default pidfiles that is not private: by every
    /// call).
    UnsafePidfile {
        /// The pidfile.
        path: PathBuf,
        /// What is unsafe.
        risk: PidfileRisk,
    },
    /// The log file is not one the daemon may write to (see [`FileProblem`]).
    UnsafeLogFile {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        problem: FileProblem,
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
    /// Only root can start a daemon as another user or group.
    NotRoot,
    /// The daemon's user could not remove its pidfile when it exits: the pidfile's directory
    /// does not let it.
    PidfileDirectoryForUser {
        /// The user the daemon runs as.
        user: String,
        /// The pidfile's directory.
        directory: PathBuf,
    },
    /// A step of dropping the privileges failed.
    Privileges {
        /// The step.
        step: Step,
        /// Why.
        source: io::Error,
    },
    /// After dropping to another user, the daemon could become root again (`setuid(0)`
    /// succeeded): it refuses to run.
    PrivilegesRegainable,
    /// A `fork` (or the pipe the daemon reports through) failed.
    Fork {
        /// The OS error.
        source: io::Error,
    },
    /// Another step of turning into a daemon, or of waiting for it, failed.
    Setup {
        /// The step.
        step: Step,
        /// The OS error.
        source: io::Error,
    },
    /// The daemon's [`setup`](super::Daemon::setup) hook failed (or panicked): the daemon
    /// exited and removed its pidfile.
    SetupFailed {
        /// The hook's error, as its `Display` put it.
        message: String,
    },
    /// The daemon was asked to stop (`SIGTERM`, `SIGINT`) while its
    /// [`setup`](super::Daemon::setup) hook ran: it ended what `setup` had started, removed
    /// its pidfile and exited without becoming ready.
    StoppedDuringSetup {
        /// The signal, such as `SIGTERM`.
        signal: &'static str,
    },
    /// The daemon ended before it was ready without saying why: it was killed (by a signal,
    /// or for lack of memory). Its stderr, in the log file if one is set, may say more.
    DiedBeforeReady,
    /// The daemon did not report ready within the start timeout; it was killed (by the
    /// controller, or, when the controller was late, by itself one second later).
    StartTimeout {
        /// The daemon's pid, when it was known.
        pid: Option<Pid>,
        /// The timeout.
        timeout: Duration,
    },
    /// This program's stdout or stderr stayed locked for the whole start timeout, so nothing
    /// was started. `start` forks holding std's stdout and stderr locks (so that the daemon
    /// never finds them held by a thread it does not have), and a thread that is blocked
    /// inside a write to stdout holds its lock until the write ends: a pipe nobody reads, a
    /// terminal stopped with `Ctrl-S`. So does a thread that keeps `io::stdout().lock()`
    /// across `start`: the calling thread too, when the program has other threads (then
    /// another thread forks).
    OutputBusy {
        /// How long `start` waited for the locks: the start timeout.
        waited: Duration,
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
    /// `restart` was called from inside the daemon it would restart: a process cannot wait
    /// for its own exit, nor start its successor after it.
    RestartFromInside {
        /// The daemon, this very process.
        pid: Pid,
    },
    /// The daemon did not exit even after `SIGKILL`.
    StopTimeout {
        /// The daemon.
        pid: Pid,
        /// How long `stop` waited after `SIGKILL`.
        waited: Duration,
    },
    /// The daemon's [`on_reload`](super::Daemon::on_reload) hook failed: the daemon runs on
    /// (with its previous configuration, if the hook keeps it until the new one is valid).
    ReloadFailed {
        /// The daemon.
        pid: Pid,
        /// The hook's error, as its `Display` put it.
        message: String,
    },
    /// The daemon's [`on_reload`](super::Daemon::on_reload) hook panicked: the daemon is
    /// stopping, as after a panic in `run` (it runs `atexit` and exits with status 1).
    ReloadPanicked {
        /// The daemon.
        pid: Pid,
        /// What the daemon logged: `on_reload() panicked: MESSAGE; stopping`.
        message: String,
    },
    /// The daemon did not answer the reload within the reload timeout
    /// ([`Config::reload_timeout`](super::Config#structfield.reload_timeout)): its
    /// `on_reload` hook is still running, or stuck. The reload goes on in the daemon.
    ReloadTimeout {
        /// The daemon.
        pid: Pid,
        /// How long the controller waited.
        waited: Duration,
    },
    /// The daemon could not tell how the reload went (see [`Unanswered`]).
    ReloadUnanswered {
        /// The daemon.
        pid: Pid,
        /// Its reload socket (`PIDFILE.reload`).
        socket: PathBuf,
        /// Why there is no answer.
        reason: Unanswered,
    },
    /// The [`process_name`](super::Config#structfield.process_name) cannot be a kernel name:
    /// it is empty or holds a NUL byte. Nothing was started.
    ProcessName {
        /// The name asked for.
        name: String,
    },
    /// The reload socket beside the pidfile is not the daemon's: another process listens on
    /// it (another user bound it first, in a world-writable directory). Nothing was sent to
    /// it, nothing it said was believed, and the daemon was not reloaded.
    ReloadImpostor {
        /// The daemon, which holds the pidfile.
        pid: Pid,
        /// The socket.
        socket: PathBuf,
        /// The process listening on it, where the system says (Linux).
        peer_pid: Option<u32>,
        /// Its user id.
        peer_uid: u32,
    },
    /// Another restart of this daemon is handing its sockets over right now: this one did
    /// nothing.
    RestartInProgress {
        /// The running daemon.
        pid: Pid,
    },
    /// The running daemon's hand-over directory or control socket is not one to trust
    /// (planted by another user, a symbolic link, open to others): nothing was fetched,
    /// sent or stopped, and the daemon runs on.
    HandoverRefused {
        /// The running daemon.
        pid: Pid,
        /// The directory or socket.
        path: PathBuf,
        /// What is wrong with it.
        reason: HandoverRefusal,
    },
    /// The exchange with the running daemon failed before its sockets were handed over:
    /// nothing was stopped, and the daemon runs on.
    Handover {
        /// The running daemon.
        pid: Pid,
        /// The OS error.
        source: io::Error,
    },
}

/// Why a restart did not trust the running daemon's hand-over place
/// ([`DaemonError::HandoverRefused`]).
///
/// ```no_run
/// use deluxe::daemon::{DaemonError, HandoverRefusal};
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// match Worker::controller().restart() {
///     Err(DaemonError::HandoverRefused { reason: HandoverRefusal::OtherOwner { uid }, path, .. }) => {
///         eprintln!("{} belongs to uid {uid}: remove it", path.display());
///     }
///     Err(error) => eprintln!("{error}"),
///     Ok(pid) => println!("restarted: {pid}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandoverRefusal {
    /// A symbolic link is where the directory should be.
    Symlink,
    /// Something that is not a directory is where the directory should be.
    NotADirectory,
    /// Something that is not a socket is where the control socket should be.
    NotASocket,
    /// It belongs to another user than the daemon's (or root).
    OtherOwner {
        /// Its owner.
        uid: u32,
    },
    /// The directory is open to other users (its mode).
    OpenToOthers {
        /// Its permission bits.
        mode: u32,
    },
    /// The process listening on the control socket is not the daemon.
    Impostor {
        /// Its pid, where the system says (Linux).
        peer_pid: Option<u32>,
        /// Its user id.
        peer_uid: u32,
    },
    /// The daemon answers only root and its own user.
    Refused,
}

impl fmt::Display for HandoverRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Symlink => f.write_str("it is a symbolic link"),
            Self::NotADirectory => f.write_str("it is not a directory"),
            Self::NotASocket => f.write_str("it is not a socket"),
            Self::OtherOwner { uid } => write!(f, "it belongs to uid {uid}, not the daemon's user"),
            Self::OpenToOthers { mode } => write!(f, "it is open to other users (mode {mode:o})"),
            Self::Impostor { peer_pid, peer_uid } => {
                write!(f, "another process listens on it (uid {peer_uid}")?;
                if let Some(peer_pid) = peer_pid {
                    write!(f, ", pid {peer_pid}")?;
                }
                f.write_str(")")
            }
            Self::Refused => f.write_str(
                "the daemon hands its sockets over only to root and its own user; restart it \
                 as one of them",
            ),
        }
    }
}

/// Why a reload has no answer ([`DaemonError::ReloadUnanswered`]).
///
/// ```no_run
/// use deluxe::daemon::{DaemonError, Unanswered};
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// match Worker::controller().reload() {
///     Ok(()) => println!("reloaded"),
///     Err(DaemonError::ReloadUnanswered { reason: Unanswered::NoSocket { .. }, .. }) => {
///         println!("sent SIGHUP to an older daemon; its log says how it went");
///     }
///     Err(error) => eprintln!("{error}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unanswered {
    /// The daemon has no reload socket (it was built with an older deluxe, or could not make
    /// the socket): it was sent `SIGHUP` instead, and reloads, but cannot answer.
    NoSocket {
        /// Why the socket could not be reached (`ENOENT`: there is none).
        errno: i32,
    },
    /// The daemon hung up without answering: it is stopping, or died during the reload.
    Closed,
    /// The daemon does not take reload requests from this user (only from root and its own
    /// user).
    Refused,
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSocket { errno } => write!(
                f,
                "it has no reload socket ({}): it was sent SIGHUP and reloads, but cannot say \
                 how that went (its log can); a daemon built with an older deluxe answers once \
                 restarted with this one",
                io::Error::from_raw_os_error(*errno)
            ),
            Self::Closed => f.write_str(
                "it hung up without answering: it is stopping, or died during the reload; \
                 check its status and log",
            ),
            Self::Refused => f.write_str(
                "it takes reload requests only from root and its own user; reload it as one \
                 of them",
            ),
        }
    }
}

/// Why the controller refused to signal the process holding the pidfile
/// ([`DaemonError::SignalRefused`]).
///
/// ```no_run
/// use deluxe::daemon::{DaemonError, Refusal};
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// match Worker::controller().stop() {
///     Err(DaemonError::SignalRefused { reason: Refusal::OtherUser { uid }, .. }) => {
///         eprintln!("the pidfile's holder runs as uid {uid}: stop it as that user");
///     }
///     other => println!("{other:?}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The holder is the calling process itself: a daemon asking to stop or signal itself.
    ThisProcess,
    /// The holder is pid 1 (init, or a container's main process): never signalled.
    Init,
    /// The holder runs as another user, which the controller could signal only thanks to
    /// its privileges (as root), and which is not the owner of the pidfile either.
    OtherUser {
        /// The holder's real user id.
        uid: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ThisProcess => f.write_str("it is this very process"),
            Self::Init => f.write_str("it is pid 1, which is never signalled"),
            Self::OtherUser { uid } => write!(
                f,
                "it runs as uid {uid}, which owns neither this controller nor the pidfile; \
                 signal it as that user"
            ),
        }
    }
}

/// What makes a pidfile's place unsafe ([`DaemonError::UnsafePidfile`]).
///
/// ```no_run
/// use deluxe::daemon::{DaemonError, PidfileRisk};
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// if let Err(DaemonError::UnsafePidfile { risk: PidfileRisk::ForeignOwner { uid }, path }) =
///     Worker::controller().configure(|c| c.pidfile("/tmp/worker.pid")).start()
/// {
///     eprintln!("{} belongs to uid {uid}; is it ours?", path.display());
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PidfileRisk {
    /// The pidfile is in a world-writable directory (such as `/tmp`) and owned by another
    /// user than this one, root, or the daemon's configured user: that user may have planted
    /// it.
    ForeignOwner {
        /// Its owner.
        uid: u32,
    },
    /// The private directory of default pidfiles (`deluxe-UID` in the temporary directory)
    /// belongs to another user.
    DirectoryOwner {
        /// Its owner.
        uid: u32,
    },
    /// The private directory of default pidfiles can be written by others.
    DirectoryMode {
        /// Its permission bits.
        mode: u32,
    },
    /// The private directory of default pidfiles is not a directory (a symbolic link, say).
    NotADirectory,
}

/// Why a file the daemon would write to is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileProblem {
    /// It is a symbolic link: followed, it could make the daemon write anywhere.
    SymbolicLink,
    /// It is not a regular file (a FIFO, a device, a directory, a socket).
    NotRegular,
    /// It has more than one link: a hard link to another file.
    HardLinked,
    /// It belongs to a user other than root and the daemon's user.
    ForeignOwner,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::SymbolicLink => "is a symbolic link (never followed)",
            Self::NotRegular => "is not a regular file (a FIFO, device, directory or socket)",
            Self::HardLinked => "has more than one link (a hard link to another file)",
            Self::ForeignOwner => "belongs to a user other than root and the daemon's user",
        })
    }
}

/// A step of starting a daemon (or of waiting for it), as named in
/// [`DaemonError::Setup`] and [`DaemonError::Privileges`].
///
/// ```
/// use deluxe::daemon::{DaemonError, Step};
///
/// fn explain(error: &DaemonError) -> &'static str {
///     match error {
///         DaemonError::Setup { step: Step::SignalThread, .. } => "too many threads?",
///         DaemonError::Privileges { step: Step::SetUid, .. } => "check the account",
///         _ => "see the message",
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Step {
    /// Creating a new session (`setsid`) in the first child.
    Setsid = 1,
    /// Forking the daemon from the first child.
    Fork = 2,
    /// Blocking the signals the daemon receives on its signal thread.
    SignalMask = 3,
    /// Entering the working directory.
    Workdir = 4,
    /// Opening `/dev/null` for stdin (and stdout and stderr without a log file).
    DevNull = 5,
    /// Opening the log file (and the pipe between the daemon and the file).
    LogFile = 6,
    /// Creating, locking or writing the pidfile.
    Pidfile = 7,
    /// Starting the daemon's signal thread.
    SignalThread = 8,
    /// Setting the supplementary groups (`setgroups`).
    SetGroups = 9,
    /// Setting the group (`setgid`).
    SetGid = 10,
    /// Setting the user (`setuid`).
    SetUid = 11,
    /// Checking that the dropped privileges cannot be regained.
    CheckDrop = 12,
    /// Looking the user or group up in the user database.
    LookUpAccount = 13,
    /// Listing the user's supplementary groups.
    ListGroups = 14,
    /// Waiting for the daemon to exit (in `stop`).
    WaitForExit = 15,
    /// Installing the daemon's signal handler.
    SignalHandler = 16,
    /// Checking the log file is one the daemon may write to.
    CheckLogFile = 17,
    /// Watching the pidfile's directory (inotify), to restore a removed pidfile.
    WatchPidfile = 18,
    /// Starting the log pump, the thread that writes the daemon's output to its log file.
    LogPump = 19,
}

impl Step {
    /// Every step, in the order of their numbers on the wire.
    const ALL: [Self; 19] = [
        Self::Setsid,
        Self::Fork,
        Self::SignalMask,
        Self::Workdir,
        Self::DevNull,
        Self::LogFile,
        Self::Pidfile,
        Self::SignalThread,
        Self::SetGroups,
        Self::SetGid,
        Self::SetUid,
        Self::CheckDrop,
        Self::LookUpAccount,
        Self::ListGroups,
        Self::WaitForExit,
        Self::SignalHandler,
        Self::CheckLogFile,
        Self::WatchPidfile,
        Self::LogPump,
    ];

    /// The step a byte of the readiness records names.
    pub(crate) fn from_u8(value: u8) -> Option<Self> {
        Self::ALL.get(usize::from(value).checked_sub(1)?).copied()
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Setsid => "setsid",
            Self::Fork => "fork the daemon",
            Self::SignalMask => "block signals",
            Self::Workdir => "enter the working directory",
            Self::DevNull => "open /dev/null",
            Self::LogFile => "open the log file",
            Self::Pidfile => "lock the pidfile",
            Self::SignalThread => "start the signal thread",
            Self::SetGroups => "setgroups",
            Self::SetGid => "setgid",
            Self::SetUid => "setuid",
            Self::CheckDrop => "check the privilege drop",
            Self::LookUpAccount => "look up the user database",
            Self::ListGroups => "list the user's groups",
            Self::WaitForExit => "wait for the daemon to exit",
            Self::SignalHandler => "install the signal handler",
            Self::CheckLogFile => "check the log file",
            Self::WatchPidfile => "watch the pidfile's directory for its removal",
            Self::LogPump => "start the log pump, which writes the output to the log file",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl fmt::Display for DaemonError {
    #[allow(clippy::too_many_lines)] // One arm per variant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyRunning { pid, pidfile } => write!(
                f,
                "already running (pid {pid}, pidfile {})",
                pidfile.display()
            ),
            Self::NotRunning { pidfile } => write!(
                f,
                "not running (no process holds pidfile {})",
                pidfile.display()
            ),
            Self::WorkdirMissing { path } => write!(
                f,
                "working directory {} does not exist; create it or choose another `workdir`",
                path.display()
            ),
            Self::Workdir { path, source } => write!(
                f,
                "cannot enter working directory {}: {source}",
                path.display()
            ),
            Self::Pidfile { path, source } => {
                write!(f, "pidfile {}", path.display())?;
                match source.raw_os_error() {
                    Some(libc::ELOOP) => write!(
                        f,
                        " is a symbolic link; pidfiles are never followed through one, remove \
                         it ({source})"
                    ),
                    Some(libc::EISDIR) => write!(
                        f,
                        " is a directory ({source}); name a file in it, such as {}",
                        path.join("NAME.pid").display()
                    ),
                    Some(libc::EINVAL) => write!(
                        f,
                        " is not a regular file ({source}); choose the path of a regular file"
                    ),
                    Some(libc::EACCES | libc::EPERM | libc::EROFS) => write!(
                        f,
                        ": {source}; choose a pidfile in a directory this user can write, or \
                         run as root"
                    ),
                    Some(libc::ENOENT) => write!(
                        f,
                        ": {source}; its directory does not exist: create it first, or choose \
                         another pidfile"
                    ),
                    _ => write!(f, ": {source}"),
                }
            }
            Self::PidfileWithoutPid { path } => write!(
                f,
                "pidfile {} is locked by a process that wrote no pid in it; another program \
                 uses this path",
                path.display()
            ),
            Self::PidfileHolderMismatch { path, pid } => write!(
                f,
                "pidfile {} is locked, but not by the process it names ({pid}); another \
                 program uses this path, or a process the daemon forked outlived it (find it \
                 with `fuser {}`)",
                path.display(),
                path.display()
            ),
            Self::OutsideNamespace { pidfile } => write!(
                f,
                "pidfile {} is held by a process outside this PID namespace, which has no pid \
                 here and cannot be signalled from here; run the command in the daemon's \
                 namespace (on the host, or in its container)",
                pidfile.display()
            ),
            Self::HolderUnconfirmed {
                pid,
                pidfile,
                source,
            } => {
                write!(
                    f,
                    "cannot confirm that process {pid} holds pidfile {} ({source}); nothing was \
                     signalled",
                    pidfile.display()
                )?;
                // The fix depends on why: permissions, or no descriptor left to look with.
                match source.raw_os_error() {
                    Some(libc::EMFILE | libc::ENFILE) => f.write_str(
                        ": this process has too many files open (raise its limit, `ulimit -n`)",
                    ),
                    _ if source.kind() == io::ErrorKind::PermissionDenied
                        && nix::unistd::geteuid().is_root() =>
                    {
                        f.write_str(
                            ": not even root may inspect that process here (another PID \
                             namespace, or a security module); if it is not the daemon, remove \
                             the pidfile",
                        )
                    }
                    _ if source.kind() == io::ErrorKind::PermissionDenied => f.write_str(
                        ": run the controller as root (or as the user who started the daemon)",
                    ),
                    _ => Ok(()),
                }
            }
            Self::SignalRefused {
                pid,
                signal,
                reason,
            } => write!(
                f,
                "refused to send {signal} to process {pid}, the pidfile's holder: {reason}"
            ),
            Self::UnsafePidfile { path, risk } => {
                let directory = path
                    .parent()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                let (path, directory) = (path.display(), directory.display());
                match risk {
                    PidfileRisk::ForeignOwner { uid } => write!(
                        f,
                        "pidfile {path} belongs to uid {uid}, another user, in world-writable \
                         {directory}: it may be forged; remove it if no daemon of yours uses it, \
                         or choose a pidfile in a directory only you can write"
                    ),
                    PidfileRisk::DirectoryOwner { uid } => write!(
                        f,
                        "pidfile directory {directory} belongs to uid {uid}, not to this user: \
                         it may be planted; remove it, or set XDG_RUNTIME_DIR or the pidfile"
                    ),
                    PidfileRisk::DirectoryMode { mode } => write!(
                        f,
                        "pidfile directory {directory} has mode {mode:04o}, open to others: \
                         `chmod 700 {directory}`"
                    ),
                    PidfileRisk::NotADirectory => write!(
                        f,
                        "pidfile directory {directory} is not a directory (a symbolic link?): \
                         remove it, or set XDG_RUNTIME_DIR or the pidfile"
                    ),
                }
            }
            Self::UnsafeLogFile { path, problem } => write!(
                f,
                "log file {} {problem}; remove it, or choose a log file in a directory only \
                 root and the daemon's user can write",
                path.display()
            ),
            Self::LogFile { path, source } => write!(
                f,
                "cannot open log file {} for appending: {source}",
                path.display()
            ),
            Self::UnknownUser { user } => write!(
                f,
                "no user account named `{user}` exists; check the name (`getent passwd` lists \
                 the accounts)"
            ),
            Self::UnknownGroup { group } => write!(f, "no group named `{group}` exists"),
            Self::NotRoot => f.write_str(
                "only root can start a daemon as another user or group; run the controller as \
                 root, or drop `user`/`group`",
            ),
            Self::PidfileDirectoryForUser { user, directory } => write!(
                f,
                "user `{user}` could not remove its pidfile from {}; put the pidfile in a \
                 directory it owns (e.g. `install -d -o {user} /run/NAME`, or systemd's \
                 `RuntimeDirectory=`)",
                directory.display()
            ),
            Self::Privileges { step, source } => {
                write!(f, "cannot run as the configured user ({step}): {source}")
            }
            Self::PrivilegesRegainable => f.write_str(
                "cannot run as the configured user: root could be regained after setuid \
                 (setuid(0) succeeded)",
            ),
            Self::Fork { source } => write!(f, "cannot fork the daemon: {source}"),
            Self::Setup { step, source } => write!(f, "daemon setup failed ({step}): {source}"),
            Self::SetupFailed { message } => write!(f, "the daemon's setup failed: {message}"),
            Self::StoppedDuringSetup { signal } => write!(
                f,
                "the daemon was asked to stop ({signal}) while its setup ran, and exited before \
                 it was ready; start it again once nothing stops it"
            ),
            Self::ProcessName { name } if name.is_empty() => f.write_str(
                "the process name is empty; give `process_name` 1 to 15 bytes (a longer name \
                 is cut to 15, as the kernel does)",
            ),
            Self::ProcessName { name } => write!(
                f,
                "the process name {name:?} holds a NUL byte, which a kernel name cannot; \
                 remove it from `process_name`"
            ),
            Self::DiedBeforeReady => f.write_str(
                "the daemon died before it was ready: it exited without a word (killed by a \
                 signal, or out of memory); its stderr, in the log file if one is set, may say \
                 more",
            ),
            Self::StartTimeout { pid, timeout } => {
                write!(f, "the daemon was not ready within {timeout:?}")?;
                match pid {
                    Some(pid) => write!(f, "; process {pid} was killed"),
                    None => Ok(()),
                }
            }
            Self::OutputBusy { waited } => write!(
                f,
                "nothing was started: this program's stdout or stderr stayed locked for \
                 {waited:?} (a thread of it is blocked writing to a pipe nobody reads or a \
                 stopped terminal, or holds `stdout().lock()`); let that output drain, then \
                 start again"
            ),
            Self::Signal {
                pid,
                signal,
                source,
            } if source.raw_os_error() == Some(libc::EPERM) => write!(
                f,
                "cannot send {signal} to the daemon (pid {pid}): {source}; it runs as another \
                 user: run this as root or as the daemon's user"
            ),
            Self::Signal {
                pid,
                signal,
                source,
            } => write!(
                f,
                "cannot send {signal} to the daemon (pid {pid}): {source}"
            ),
            Self::RestartFromInside { pid } => write!(
                f,
                "cannot restart the daemon from inside itself (pid {pid}): stop it \
                 (`stop()` asks it to stop and returns) and let the supervisor or a controller \
                 outside start it again"
            ),
            Self::StopTimeout { pid, waited } => write!(
                f,
                "the daemon (pid {pid}) still runs {waited:?} after SIGKILL (stuck in the kernel?)"
            ),
            Self::ReloadFailed { pid, message } => write!(
                f,
                "the daemon (pid {pid}) failed to reload: {message}; it runs on as before: fix \
                 the problem and reload again"
            ),
            Self::ReloadPanicked { pid, message } => write!(
                f,
                "the daemon (pid {pid}) failed to reload: {message}; fix the hook (or the \
                 configuration it chokes on) and start the daemon again"
            ),
            Self::ReloadTimeout { pid, waited } => write!(
                f,
                "the daemon (pid {pid}) did not answer the reload within {waited:?}: its \
                 on_reload hook is still running or stuck; check its log, or allow more time \
                 (the reload timeout)"
            ),
            Self::ReloadUnanswered {
                pid,
                socket,
                reason,
            } => write!(
                f,
                "the daemon (pid {pid}) did not say whether it reloaded: {reason} (reload \
                 socket {})",
                socket.display()
            ),
            Self::ReloadImpostor {
                pid,
                socket,
                peer_pid,
                peer_uid,
            } => {
                write!(
                    f,
                    "reload socket {} is not the daemon's (pid {pid}): it belongs to uid \
                     {peer_uid}",
                    socket.display()
                )?;
                if let Some(peer_pid) = peer_pid {
                    write!(f, ", process {peer_pid}")?;
                }
                f.write_str(
                    "; nothing was sent to it and the daemon was not reloaded: remove it \
                     (or choose a pidfile in a directory only you can write) and restart the \
                     daemon",
                )
            }
            Self::RestartInProgress { pid } => write!(
                f,
                "another restart of the daemon (pid {pid}) is under way: wait for it to finish, \
                 then check the status"
            ),
            Self::HandoverRefused { pid, path, reason } => write!(
                f,
                "refusing the restart's hand-over at {}: {reason}; nothing was stopped and the \
                 daemon (pid {pid}) runs on: remove it (the daemon makes its own when it starts \
                 next), or stop and start the daemon",
                path.display()
            ),
            Self::Handover { pid, source } => write!(
                f,
                "cannot fetch the listening sockets of the daemon (pid {pid}) for a restart: \
                 {source}; nothing was stopped and the daemon runs on"
            ),
        }
    }
}

/// Every cause is printed by `Display`: none is returned again as a source.
impl std::error::Error for DaemonError {}

/// The text of a hook's error as the daemon reports it: its message, then each cause of its
/// [`source`](std::error::Error::source) chain, as `MESSAGE: CAUSE: CAUSE2`. A cause whose
/// text the message already ends with (an error that prints its cause as well as returning
/// it) is not repeated.
pub(crate) fn hook_message<E: std::error::Error + ?Sized>(error: &E) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = error.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_round_trip_through_their_numbers() {
        for step in Step::ALL {
            assert_eq!(Step::from_u8(step as u8), Some(step));
        }
        assert_eq!(Step::from_u8(0), None);
        assert_eq!(Step::from_u8(Step::ALL.len() as u8 + 1), None);
    }

    #[test]
    fn the_cause_is_printed_once() {
        let errors = [
            DaemonError::Pidfile {
                path: "/run/x.pid".into(),
                source: io::Error::from_raw_os_error(libc::ELOOP),
            },
            DaemonError::Pidfile {
                path: "/run/x.pid".into(),
                source: io::Error::from_raw_os_error(libc::EACCES),
            },
            DaemonError::Setup {
                step: Step::SignalThread,
                source: io::Error::from_raw_os_error(libc::EAGAIN),
            },
            DaemonError::Privileges {
                step: Step::SetUid,
                source: io::Error::from_raw_os_error(libc::EPERM),
            },
        ];
        for error in errors {
            let line = error.to_string();
            let os = match &error {
                DaemonError::Pidfile { source, .. }
                | DaemonError::Setup { source, .. }
                | DaemonError::Privileges { source, .. } => source.to_string(),
                _ => unreachable!(),
            };
            assert_eq!(line.matches(&os).count(), 1, "{line}");
            assert!(std::error::Error::source(&error).is_none());
            assert!(!line.contains('\n'));
        }
    }

    /// An error with a message and, optionally, a cause it does not print.
    #[derive(Debug)]
    struct Wrapped(
        &'static str,
        Option<Box<dyn std::error::Error + Send + Sync>>,
    );

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|cause| cause as _)
        }
    }

    #[test]
    fn a_hook_message_names_each_cause_once() {
        let missing = || io::Error::from_raw_os_error(libc::ENOENT);
        let alone = Wrapped("cannot load config", None);
        assert_eq!(hook_message(&alone), "cannot load config");
        let caused = Wrapped("cannot load config", Some(Box::new(missing())));
        assert_eq!(
            hook_message(&caused),
            "cannot load config: No such file or directory (os error 2)"
        );
        let deep = Wrapped(
            "reload failed",
            Some(Box::new(Wrapped(
                "cannot load config",
                Some(Box::new(missing())),
            ))),
        );
        assert_eq!(
            hook_message(&deep),
            "reload failed: cannot load config: No such file or directory (os error 2)"
        );
        // A message that already prints its cause: the cause is not said twice.
        let printed = Wrapped(
            "cannot load config: No such file or directory (os error 2)",
            Some(Box::new(missing())),
        );
        assert_eq!(
            hook_message(&printed),
            "cannot load config: No such file or directory (os error 2)"
        );
        // Through the `HookError` box a hand-written hook returns.
        let boxed: crate::daemon::HookError = Box::new(caused);
        assert_eq!(
            hook_message(&*boxed),
            "cannot load config: No such file or directory (os error 2)"
        );
    }
}
