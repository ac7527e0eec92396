//! Daemons: a plain type that implements [`Daemon`], driven by a [`Controller`].
//!
//! ```no_run
//! use std::time::Duration;
//! use deluxe::daemon::{self, Config, Controller, Daemon, HookError};
//!
//! struct Ticker {
//!     every: Duration,
//! }
//!
//! impl Daemon for Ticker {
//!     fn config() -> Config {
//!         Config::new("/run/ticker.pid").log_file("/var/log/ticker.log")
//!     }
//!
//!     fn run(&self) -> Result<(), HookError> {
//!         // Until `stop` is called: `wait_for_stop` wakes up early when it is.
//!         while !daemon::wait_for_stop(self.every) {
//!             println!("tick");
//!         }
//!         Ok(())
//!     }
//!
//!     fn on_user1(&self) {
//!         println!("SIGUSR1: any code may run here, on an ordinary thread");
//!     }
//!
//!     fn atexit(&self) {
//!         println!("stopping");
//!     }
//! }
//!
//! let controller = Controller::new(Ticker { every: Duration::from_secs(1) });
//! let pid = controller.start()?;       // returns once the daemon is really up
//! controller.signal_user1()?;
//! controller.stop()?;                  // SIGTERM, then SIGKILL after the stop timeout
//! # Ok::<(), deluxe::daemon::DaemonError>(())
//! ```
//!
//! How it works, and what it guarantees:
//!
//! - `start` forks twice (the daemon is not a session leader, so it can never acquire a
//!   controlling terminal), and between the forks and until the daemon is ready the child makes
//!   only async-signal-safe system calls on data prepared before forking: starting a daemon
//!   from a multi-threaded program (a test harness, a tokio runtime) cannot deadlock on a lock
//!   another thread held when the process was copied. std's stdout and stderr locks are taken
//!   across the fork so that the daemon's `println!` never finds them held by a thread it does
//!   not have. In a program with other threads, a new thread takes them and forks, waited for
//!   with the start timeout, so that a thread stuck writing to a full pipe makes `start` fail
//!   ([`DaemonError::OutputBusy`]) instead of wait for ever; in the daemon that thread is the
//!   only one and calls `run`, with the name of the thread that called `start` and a main
//!   thread's stack size.
//! - The daemon locks its pidfile for its whole life, then tells the controller "ready" over
//!   a pipe: `start` returns the pid only then, and any failure before (missing working
//!   directory, pidfile held or unwritable, ...) comes back as a [`DaemonError`].
//! - A pidfile nobody holds means "not running", whatever pid it names: a stale pidfile whose
//!   pid now belongs to another process is never signalled. A pid in a locked pidfile is a
//!   claim, not a fact: the controller reports `Running` for, and signals, only the process
//!   the kernel names as the lock's holder (`F_GETLK`, for any caller that may read the file,
//!   in its own PID namespace), pinned by a pidfd so that a recycled pid is never hit; read
//!   locks, which any user can take, never count; what it cannot check it refuses, with a typed error. It never
//!   signals itself, pid 1, or another user's process it could reach only as root. The
//!   [`Status`] table lists every state a pidfile can be in.
//! - `start` refuses a pidfile that another user made in a world-writable directory
//!   ([`DaemonError::UnsafePidfile`]); default pidfiles of a user live in `XDG_RUNTIME_DIR`
//!   (checked) or in a private directory ([`Config::named`]).
//! - Signals are not blocked in the daemon: a minimal handler, installed before `setup`, notes
//!   each one for a signal thread, and hooks run on another ordinary thread, never inside a
//!   signal handler: any code is allowed in them. Every process the daemon starts (from
//!   `setup` too) begins with an empty signal mask and dies of `SIGTERM`.
//! - `stop` waits for the exit on the pidfd (or the pidfile lock): it returns as soon as the
//!   daemon is gone, without sleep-polling.
//! - Run in the foreground as pid 1 (a container's main process), the process stays pid 1 as
//!   a minimal init, as `tini` is: the daemon runs in its child, pid 1 reaps every orphan,
//!   forwards the signals to the daemon and exits with its status
//!   ([`Controller::run_foreground`], [`Config::container_init`](Config#structfield.container_init)).

// How the code is laid out: one module per phase a daemon goes through, data flowing one way.
//
//   Controller (controller.rs)          the public handle
//     │ start: take the turn, make the Plan (launch.rs), fork, fork
//     ▼
//   launch.rs ──── the new daemon runs ──▶ setup.rs   daemon(7)'s steps, pidfile locked
//     ▲ reads the readiness records                      │
//     │ (readiness.rs) until "ready"                     ▼
//     └────────────────────────────────────────────  serve/     signal and hook threads,
//                                                                run, atexit, the way out
//                                                                (one file per concern)
//   In the foreground at pid 1 (a container), launch.rs first hands pid 1 to init.rs: a
//   minimal init that forks the daemon, reaps orphans and forwards signals.
//   instance.rs holds what acts on a running daemon (stop, reload, signals, status), which the
//   Controller delegates to; asynchronous.rs (tokio) mirrors both handles as futures.
//   Beside them, used by all: pidfile/ (mod.rs: observe, place checks, the pid text;
//   held.rs: the daemon's side, lock, hold, restore, remove),
//   target.rs (a running daemon as the controller sees it: locate, signal, wait),
//   handover/ (a restart's hand-over of the listening sockets: mod.rs declares them,
//   daemon_side.rs answers on the control socket, controller_side.rs fetches them; its calls in
//   sys_handover.rs),
//   start_bound.rs (the forked daemon's own start timeout, for a controller that is gone),
//   privileges.rs (credentials and the drop), output.rs (with a log file: the pipe on stdout
//   and stderr, made in setup, and the pump thread that copies it to the file), error.rs, and
//   sys.rs and sys_handover.rs (the system calls of the daemon: the only modules here allowed
//   `unsafe`).

#[cfg(feature = "tokio")]
mod asynchronous;
mod controller;
mod error;
mod handover;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod inflight;
mod init;
mod instance;
mod launch;
mod manager;
mod output;
mod pidfile;
mod privileges;
mod readiness;
mod reload;
mod serve;
mod setup;
mod start_bound;
#[allow(unsafe_code)]
mod sys;
#[allow(unsafe_code)]
mod sys_handover;
mod target;

use std::fmt;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncController, AsyncInstance};
pub use controller::{Controller, supervised};
pub(crate) use error::hook_message;
pub use error::{
    DaemonError, FileProblem, HandoverRefusal, PidfileRisk, Refusal, Step, Unanswered,
};
pub use handover::{ListenerError, listener};
pub use instance::Instance;
pub use manager::{
    ListenFd, ListenFdsError, extend_timeout, listen_fds, notify_watchdog, set_status, watchdog,
};
#[cfg(feature = "tokio")]
pub use serve::stopped;
pub use serve::{stop_deadline, stop_requested, wait_for_stop};
pub(crate) use target::use_portable_signalling;

/// What [`Daemon::setup`], [`Daemon::run`] and [`Daemon::on_reload`] may fail with: any error
/// (`?` converts `io::Error`, `String`, and every `std::error::Error`). Its message, followed
/// by each cause of its [`source`](std::error::Error::source) chain (`MESSAGE: CAUSE: CAUSE2`;
/// a cause the message already ends with is not repeated), is what
/// [`DaemonError::SetupFailed`] carries back to [`Controller::start`], what
/// [`DaemonError::ReloadFailed`] carries back to [`Controller::reload`] (and the daemon logs)
/// when a reload fails, and what the daemon logs when `run` fails: an error that wraps an
/// `io::Error` as its source keeps the "No such file or directory".
///
/// ```
/// use deluxe::daemon::HookError;
///
/// fn check(port: u16) -> Result<(), HookError> {
///     if port == 0 {
///         return Err("port 0 is not a port to listen on".into());
///     }
///     Ok(())
/// }
/// assert!(check(0).is_err());
/// ```
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A process id, as [`Controller::start`] returns it.
///
/// ```no_run
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// let pid = Worker::controller().start()?;
/// println!("kill -USR1 {pid}");
/// # Ok::<(), deluxe::daemon::DaemonError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub(crate) u32);

impl Pid {
    /// The number.
    ///
    /// ```
    /// # fn show(pid: deluxe::daemon::Pid) {
    /// println!("kill -USR1 {}", pid.as_u32());
    /// # }
    /// ```
    pub fn as_u32(self) -> u32 {
        self.0
    }

    pub(crate) fn raw(self) -> libc::pid_t {
        self.0 as libc::pid_t
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Pid> for u32 {
    fn from(pid: Pid) -> Self {
        pid.0
    }
}

/// What the pidfile says about the daemon.
///
/// Every state a pidfile can be in has one answer, and `start`/`stop` follow it ("holds"
/// means the kernel shows that process holding the lock: see [`Controller::status`]):
///
/// | the pidfile | `status()` | `start()` | `stop()` | `signal_user1()` |
/// |---|---|---|---|---|
/// | missing | `Stopped` | starts | `NotRunning` | `NotRunning` error |
/// | not locked (read locks do not count): empty or garbage | `Stale { pid: None }` | replaces it | `NotRunning` | `NotRunning` error |
/// | not locked, names a pid (dead or alive) | `Stale { pid }` | replaces it | `NotRunning`; nobody signalled | `NotRunning` error |
/// | locked: the kernel names the holder | `Running { pid }` | `AlreadyRunning { pid }` | stops it | sends |
/// | locked by a process outside this PID namespace | `RunningElsewhere` | `OutsideNamespace` error, from every other call | | |
/// | locked, no holder named, not held by the pid it names | `PidfileHolderMismatch` error, from every call; nobody signalled | | | |
/// | locked, no holder named, no pid in it | `PidfileWithoutPid` error, from every call | | | |
/// | locked, no holder named, the pid it names cannot be inspected | `HolderUnconfirmed` error, from every call; nobody signalled | | | |
///
/// Short transitions are waited out (up to 2 s), never reported: a pidfile being replaced,
/// a daemon exiting. A controller never removes a pidfile: a stale one stays until the next
/// start replaces it. A holder the controller must not signal (itself, pid 1, another user's process)
/// is still `Running`, but signalling it is [`DaemonError::SignalRefused`].
///
/// ```
/// use deluxe::daemon::Status;
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// match Worker::controller().configure(|c| c.pidfile("/nonexistent/w.pid")).status()? {
///     Status::Running { pid, since } => println!("running as {pid} since {since:?}"),
///     Status::Stale { pid } => println!("died without cleaning up (pid {pid:?})"),
///     Status::Stopped => println!("not running"),
///     Status::RunningElsewhere { .. } => println!("running in another PID namespace"),
/// }
/// # Ok::<(), deluxe::daemon::DaemonError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The daemon runs: process `pid` holds the pidfile.
    Running {
        /// The daemon's pid.
        pid: Pid,
        /// When it started (when it wrote its pid in the pidfile); its uptime is
        /// `since.elapsed()`.
        since: std::time::SystemTime,
    },
    /// There is no pidfile.
    Stopped,
    /// A pidfile exists but no process holds it: the daemon died without cleaning up (it was
    /// killed, for instance). `pid` is what the file says, if anything readable.
    Stale {
        /// The pid written in the stale pidfile.
        pid: Option<Pid>,
    },
    /// The daemon runs, but outside this process's PID namespace (asked from inside a
    /// container about a daemon of the host, say): the kernel names no pid for the process
    /// holding the pidfile, so this process can neither tell nor signal it; ask from the
    /// daemon's namespace.
    RunningElsewhere {
        /// When it started (when it wrote its pid in the pidfile).
        since: std::time::SystemTime,
    },
}

/// What `status` prints on the command line: `running (pid 4242, since 2026-11-25 17:02:03
/// UTC, up 5m 2s)`, `not running`, `not running (stale pidfile, pid 4242)`, `running outside
/// this PID namespace (no pid here; since ..., up ...)`.
///
/// ```
/// use deluxe::daemon::Status;
/// assert_eq!(Status::Stopped.to_string(), "not running");
/// let since = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400 + 3723);
/// assert!(Status::RunningElsewhere { since }.to_string().starts_with(
///     "running outside this PID namespace (no pid here; since 2000-02-29 01:02:03 UTC, up "
/// ));
/// ```
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let up = |since: &std::time::SystemTime| uptime(since.elapsed().unwrap_or_default());
        match self {
            Self::Running { pid, since } => write!(
                f,
                "running (pid {pid}, since {}, up {})",
                utc(*since),
                up(since)
            ),
            Self::Stopped => f.write_str("not running"),
            Self::Stale { pid: Some(pid) } => write!(f, "not running (stale pidfile, pid {pid})"),
            Self::Stale { pid: None } => f.write_str("not running (stale pidfile)"),
            Self::RunningElsewhere { since } => write!(
                f,
                "running outside this PID namespace (no pid here; since {}, up {})",
                utc(*since),
                up(since)
            ),
        }
    }
}

/// A time as `2026-11-25 17:02:03 UTC`.
fn utc(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A duration as `3d 4h 5m 6s`, the zero leading units left out.
fn uptime(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let units = [
        (seconds / 86_400, "d"),
        (seconds % 86_400 / 3600, "h"),
        (seconds % 3600 / 60, "m"),
        (seconds % 60, "s"),
    ];
    let first = units
        .iter()
        .position(|(value, _)| *value > 0)
        .unwrap_or(units.len() - 1);
    units[first..]
        .iter()
        .map(|(value, unit)| format!("{value}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How [`Controller::stop`] ended.
///
/// ```no_run
/// use deluxe::daemon::StopOutcome;
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// if Worker::controller().stop()? == StopOutcome::Killed {
///     eprintln!("it ignored SIGTERM: atexit did not run");
/// }
/// # Ok::<(), deluxe::daemon::DaemonError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopOutcome {
    /// The daemon exited after `SIGTERM`, within the stop timeout, once `run` had returned.
    Graceful,
    /// The daemon exited after `SIGTERM` on its own: `run` had not returned within the stop
    /// grace, so the runtime ran `atexit` and exited (work `run` was doing was cut short).
    GraceExpired,
    /// The daemon ignored `SIGTERM` for the whole stop timeout and was killed with `SIGKILL`.
    Killed,
    /// The daemon was not running (a stale pidfile, if any, was removed).
    NotRunning,
    /// `stop` was called from inside the daemon itself: it asked itself to stop (as with
    /// `SIGTERM`) and returned at once, since it cannot wait for its own exit. `run` sees
    /// [`stop_requested`], and `atexit` runs as for any stop.
    Requested,
}

/// A daemon's settings: its pidfile, working directory, timeouts, umask and log file.
///
/// The fields can be read and set directly; the methods of the same names set them in a
/// chain. It is the one home of every setting: a type's defaults come from [`Daemon::config`]
/// (the keys of `#[daemon(...)]`), and [`Controller::configure`] overrides them at run time.
///
/// ```
/// use std::time::Duration;
/// use deluxe::daemon::Config;
///
/// let config = Config::new("/run/ticker.pid")
///     .workdir("/var/lib/ticker")
///     .stop_timeout(Duration::from_secs(5))
///     .umask(0o027)
///     .log_file("/var/log/ticker.log");
/// assert_eq!(config.workdir, std::path::Path::new("/var/lib/ticker"));
/// assert_eq!(config.grace(), Duration::from_millis(2500));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The pidfile: locked by the daemon for its whole life, holding its pid. Relative paths
    /// are taken from the controller's working directory.
    pub pidfile: PathBuf,
    /// The daemon's working directory; it must exist. Default `/`.
    pub workdir: PathBuf,
    /// How long `stop` waits after `SIGTERM` before sending `SIGKILL`. Default 10 s. Like
    /// every `Duration` setting, any value is accepted: one too long for the clock is no
    /// limit.
    pub stop_timeout: Duration,
    /// How long `run` has, after a stop request, to return before the daemon runs `atexit`
    /// itself and exits. `None` (the default): half the stop timeout, so that `atexit` runs
    /// before `stop` resorts to `SIGKILL`. `Some(Duration::MAX)`: wait for `run` however long
    /// (then only `SIGKILL` ends a daemon whose `run` never returns).
    pub stop_grace: Option<Duration>,
    /// How long `start` waits for the daemon to be ready before killing it, counting from
    /// the call (a start first waits for this program's stdout and stderr locks, see
    /// [`DaemonError::OutputBusy`]). Default 30 s. A daemon whose controller is gone (killed
    /// while `setup` hangs) ends itself, and what its `setup` started in its process group,
    /// one second after this timeout: nothing is left hanging, and at a
    /// [`restart`](Controller::restart) the old daemon serves on.
    pub start_timeout: Duration,
    /// How long `reload` waits for the daemon to say how its reload went (the log reopened
    /// and [`Daemon::on_reload`] run) before [`DaemonError::ReloadTimeout`]. Default 30 s.
    pub reload_timeout: Duration,
    /// The daemon's umask (permission bits only). Default `0o022`.
    pub umask: u32,
    /// Where the daemon's stdout and stderr are appended; `None` (the default): `/dev/null`
    /// (in the foreground: wherever they already go, e.g. the journal).
    ///
    /// With a log file, stdout and stderr are a pipe that a thread of the daemon copies to
    /// the file: a full or failing disk never makes `println!` fail (and panic). Lines that
    /// cannot be written are dropped and counted, and once writing works again the first line
    /// written is `deluxe[PID]: WARN: N lines lost: cannot write to the log file: ERROR`. A line
    /// reaches the file a moment after it is printed; every exit through `exit` (a stop, `run`
    /// returning or panicking) writes what is still in the pipe first (waiting at most 2 s).
    pub log_file: Option<PathBuf>,
    /// The user the daemon runs as, once its pidfile is locked and its log file open (the
    /// controller must be root, or that user and group already: the service's own account
    /// restarting its daemon starts the new one as itself). `None` (the default): the
    /// controller's user.
    pub user: Option<String>,
    /// The group the daemon runs as; default: the primary group of `user`.
    pub group: Option<String>,
    /// Whether `on_user1` reloads the daemon's configuration: under a service manager the
    /// daemon then says `RELOADING=1` before the hook and `READY=1` after it (for systemd's
    /// `Type=notify-reload` with `ReloadSignal=SIGUSR1`). Default `false`.
    pub user1_reloads: bool,
    /// Whether processes the daemon started (helpers, workers, shells: its process group)
    /// may outlive it. `false` (the default): as the daemon exits, after `atexit`, it sends
    /// `SIGTERM` to its process group, waits for the processes to exit, and sends `SIGKILL`
    /// to those still there after half of what the stop timeout leaves beyond the grace.
    /// Only a group the daemon owns is signalled (a forked daemon's, or one a supervisor made
    /// with `setsid`), never that of the shell that ran it in the foreground.
    pub keep_children: bool,
    /// Whether a daemon run in the foreground as pid 1 (a container's main process) leaves
    /// pid 1 to a minimal init that reaps orphans and forwards signals to it, as `tini` does.
    /// Default `true`; with `false` the daemon itself is pid 1 and orphans of the processes
    /// it starts stay zombies. No effect anywhere but at pid 1.
    pub container_init: bool,
    /// The daemon's kernel name, the name `ps -o comm`, `top` and `/proc/PID/comm` show, set
    /// before it is ready, so that instances of one program can be told apart (`shard-3`).
    /// Longer names are cut to at most 15 bytes, as the kernel keeps them, before a character
    /// that does not fit whole (so that `pgrep -x` and `start-stop-daemon --name` can match
    /// the name; a name cut inside a character would not be UTF-8); an empty name
    /// or one holding a NUL byte makes `start` fail ([`DaemonError::ProcessName`]). `None`
    /// (the default): the name of the program that started it. Linux only (elsewhere the
    /// kernel name is fixed when the program is executed, and this is ignored). In the
    /// foreground it names the thread that runs the daemon: call `run_foreground` on the main
    /// thread for the process to carry the name.
    pub process_name: Option<String>,
}

impl Config {
    /// The stop timeout unless set.
    ///
    /// ```
    /// use deluxe::daemon::Config;
    /// assert_eq!(Config::new("/run/x.pid").stop_timeout, Config::DEFAULT_STOP_TIMEOUT);
    /// ```
    pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
    /// The start timeout unless set.
    ///
    /// ```
    /// use deluxe::daemon::Config;
    /// assert_eq!(Config::new("/run/x.pid").start_timeout, Config::DEFAULT_START_TIMEOUT);
    /// ```
    pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
    /// The reload timeout unless set.
    ///
    /// ```
    /// use deluxe::daemon::Config;
    /// assert_eq!(Config::new("/run/x.pid").reload_timeout, Config::DEFAULT_RELOAD_TIMEOUT);
    /// ```
    pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
    /// The umask unless set: files the daemon creates are not writable by group and others.
    ///
    /// ```
    /// use deluxe::daemon::Config;
    /// assert_eq!(Config::new("/run/x.pid").umask, 0o022);
    /// ```
    pub const DEFAULT_UMASK: u32 = 0o022;

    /// Settings with this pidfile and the defaults: working directory `/`, stop timeout 10 s,
    /// umask `0o022`, output to `/dev/null`.
    ///
    /// ```
    /// let config = deluxe::daemon::Config::new("/run/ticker.pid");
    /// assert_eq!(config.workdir, std::path::Path::new("/"));
    /// assert_eq!(config.log_file, None);
    /// ```
    pub fn new(pidfile: impl Into<PathBuf>) -> Self {
        Self {
            pidfile: pidfile.into(),
            workdir: PathBuf::from("/"),
            stop_timeout: Self::DEFAULT_STOP_TIMEOUT,
            stop_grace: None,
            start_timeout: Self::DEFAULT_START_TIMEOUT,
            reload_timeout: Self::DEFAULT_RELOAD_TIMEOUT,
            umask: Self::DEFAULT_UMASK,
            log_file: None,
            user: None,
            group: None,
            user1_reloads: false,
            keep_children: false,
            container_init: true,
            process_name: None,
        }
    }

    /// Settings whose pidfile is named after the daemon: `/run/NAME.pid` for root (`/var/run`
    /// where there is no `/run`); otherwise `$XDG_RUNTIME_DIR/NAME.pid` when that directory
    /// is this user's and closed to others' writes; otherwise `NAME.pid` in `deluxe-UID`, a
    /// private directory (`0700`, this user's) in `TMPDIR` if absolute (else `/tmp`), which `start`
    /// creates and every call checks ([`DaemonError::UnsafePidfile`]): a predictable name in
    /// a world-writable directory such as `/tmp` could be created first by another user.
    ///
    /// ```
    /// let config = deluxe::daemon::Config::named("ticker");
    /// assert_eq!(config.pidfile.file_name().unwrap(), "ticker.pid");
    /// ```
    pub fn named(name: &str) -> Self {
        let uid = nix::unistd::geteuid();
        let file = format!("{name}.pid");
        let pidfile = if uid.is_root() {
            // /run on Linux; macOS and the BSDs keep /var/run.
            let run = ["/run", "/var/run"]
                .into_iter()
                .map(Path::new)
                .find(|dir| dir.is_dir())
                .unwrap_or(Path::new("/run"));
            run.join(file)
        } else {
            match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
                Some(dir) if is_private_runtime_dir(&dir, uid.as_raw()) => dir.join(file),
                _ => pidfile::private_directory(uid.as_raw()).join(file),
            }
        };
        Self::new(pidfile)
    }

    /// Settings named after the item at `path`, a Rust path such as
    /// `concat!(module_path!(), "::Worker")`: each segment in kebab case, joined by dots, so
    /// that two programs with a `Server` of their own do not share a pidfile.
    ///
    /// ```
    /// use deluxe::daemon::Config;
    /// let config = Config::for_path("my_app::net::HttpServer");
    /// assert_eq!(config.pidfile.file_name().unwrap(), "my-app.net.http-server.pid");
    /// ```
    pub fn for_path(path: &str) -> Self {
        Self::named(&default_name(path))
    }

    /// Settings named after the type `T` ([`Config::for_path`] of its path without generic
    /// arguments): `my_app::MyWorker` is `my-app.my-worker`. `#[daemon]` names the struct's
    /// path the same way, from `module_path!()`.
    ///
    /// ```
    /// struct MyWorker;
    /// let config = deluxe::daemon::Config::for_type::<MyWorker>();
    /// let name = config.pidfile.file_name().unwrap().to_string_lossy().into_owned();
    /// assert!(name.ends_with(".my-worker.pid"), "{name}");
    /// ```
    pub fn for_type<T: ?Sized>() -> Self {
        let name = std::any::type_name::<T>();
        Self::for_path(name.split('<').next().unwrap_or(name))
    }

    /// Sets [`pidfile`](Config#structfield.pidfile): one instance per pidfile, so a second
    /// instance of the same type needs its own.
    ///
    /// ```no_run
    /// use deluxe::daemon::{Controller, Daemon};
    /// # #[deluxe::daemon] #[derive(Default)] struct Shard;
    /// # #[deluxe::daemon] impl Shard { fn run(&self) {} }
    /// for shard in 0..4 {
    ///     let config = Shard::config().pidfile(format!("/run/shard/{shard}.pid"));
    ///     Controller::with_config(Shard, config).start()?;
    /// }
    /// # Ok::<(), deluxe::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn pidfile(mut self, pidfile: impl Into<PathBuf>) -> Self {
        self.pidfile = pidfile.into();
        self
    }

    /// Sets [`workdir`](Config#structfield.workdir): relative paths the daemon opens are
    /// relative to it.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// // The daemon opens "cache/index" as /var/lib/indexer/cache/index.
    /// let config = Config::new("/run/indexer.pid").workdir("/var/lib/indexer");
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = workdir.into();
        self
    }

    /// Sets [`stop_timeout`](Config#structfield.stop_timeout): how long `stop` lets a
    /// daemon that flushes a large cache on exit take before `SIGKILL`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/cache.pid")
    ///     .stop_timeout(Duration::from_secs(60))
    ///     .stop_grace(Duration::from_secs(50));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets [`stop_grace`](Config#structfield.stop_grace); `Duration::MAX` waits for `run`
    /// however long it takes (then only the stop timeout's `SIGKILL` ends a stuck daemon).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use deluxe::daemon::Config;
    /// // Finish the request in flight, up to 5 s, then run atexit.
    /// let config = Config::new("/run/api.pid").stop_grace(Duration::from_secs(5));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = Some(grace);
        self
    }

    /// Sets [`start_timeout`](Config#structfield.start_timeout): on a slow or loaded
    /// machine (a CI runner, an emulator), give the daemon longer to get ready.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/x.pid").start_timeout(Duration::from_secs(30));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Sets [`reload_timeout`](Config#structfield.reload_timeout): a reload hook that loads
    /// a large configuration may need longer. `Duration::MAX` waits however long.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/x.pid").reload_timeout(Duration::from_secs(120));
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn reload_timeout(mut self, timeout: Duration) -> Self {
        self.reload_timeout = timeout;
        self
    }

    /// Sets [`umask`](Config#structfield.umask): `0o077` keeps every file the daemon
    /// creates private to its user.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/vault.pid").umask(0o077);
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn umask(mut self, umask: u32) -> Self {
        self.umask = umask;
        self
    }

    /// Sets [`log_file`](Config#structfield.log_file): the daemon's stdout and stderr,
    /// appended to.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/ticker.pid").log_file("/var/log/ticker.log");
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.log_file = Some(path.into());
        self
    }

    /// Sets [`user`](Config#structfield.user): started as root, the daemon drops to this
    /// account once its pidfile is locked and its log open.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/web/web.pid").user("www-data");
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets [`group`](Config#structfield.group) (by default the user's own).
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/web/web.pid").user("www-data").group("adm");
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets [`user1_reloads`](Config#structfield.user1_reloads): a service manager is told
    /// `RELOADING=1` ... `READY=1` around `on_user1`.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/proxy.pid").user1_reloads(true);
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn user1_reloads(mut self, reloads: bool) -> Self {
        self.user1_reloads = reloads;
        self
    }

    /// Sets [`keep_children`](Config#structfield.keep_children): processes the daemon
    /// started survive it.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// // A launcher whose children are meant to run on.
    /// let config = Config::new("/run/launcher.pid").keep_children(true);
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn keep_children(mut self, keep: bool) -> Self {
        self.keep_children = keep;
        self
    }

    /// Sets [`container_init`](Config#structfield.container_init): `false` makes the daemon
    /// itself pid 1 of its container, without the init that reaps orphans.
    ///
    /// ```no_run
    /// # use deluxe::daemon::Config;
    /// // A daemon that starts no processes, and wants to be pid 1 itself.
    /// let config = Config::new("/run/proxy.pid").container_init(false);
    /// # let _ = config;
    /// ```
    #[must_use]
    pub fn container_init(mut self, init: bool) -> Self {
        self.container_init = init;
        self
    }

    /// Sets [`process_name`](Config#structfield.process_name): the daemon's name in `ps` and
    /// `top` (Linux).
    ///
    /// ```
    /// # use deluxe::daemon::Config;
    /// let config = Config::new("/run/shards/3.pid").process_name("shard-3");
    /// assert_eq!(config.process_name.as_deref(), Some("shard-3"));
    /// ```
    #[must_use]
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = Some(name.into());
        self
    }

    /// The stop grace in effect: the one set, or half the stop timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = deluxe::daemon::Config::new("/run/x.pid").stop_timeout(Duration::from_secs(8));
    /// assert_eq!(config.grace(), Duration::from_secs(4));
    /// ```
    pub fn grace(&self) -> Duration {
        self.stop_grace.unwrap_or(self.stop_timeout / 2)
    }
}

/// A pidfile name from a Rust path: segments in kebab case (`HttpServer`, `http_server`:
/// `http-server`), joined by dots.
fn default_name(path: &str) -> String {
    let mut name = String::with_capacity(path.len() + 8);
    for (index, segment) in path.split("::").filter(|s| !s.is_empty()).enumerate() {
        if index > 0 {
            name.push('.');
        }
        let mut previous_lower = false;
        for c in segment.chars() {
            if c.is_uppercase() && previous_lower {
                name.push('-');
            }
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
            match c {
                '_' => name.push('-'),
                c => name.extend(c.to_lowercase()),
            }
        }
    }
    name
}

/// Whether `dir` can hold this user's default pidfiles: an absolute path to a real directory
/// (not a symbolic link) that `uid` owns and nobody else may write.
fn is_private_runtime_dir(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.is_absolute()
        && std::fs::symlink_metadata(dir)
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == uid && meta.mode() & 0o022 == 0)
}

/// A daemon: what runs in the background once [`Controller::start`] has forked.
///
/// Only [`run`](Daemon::run) is required. The hooks run on an ordinary thread of the daemon
/// (never inside a signal handler), possibly while `run` runs: the type is `Send + Sync`.
///
/// ```no_run
/// use deluxe::daemon::{self, Controller, Daemon, HookError};
///
/// struct Worker;
///
/// impl Daemon for Worker {
///     fn run(&self) -> Result<(), HookError> {
///         daemon::wait_for_stop(std::time::Duration::MAX);
///         Ok(())
///     }
/// }
///
/// Controller::new(Worker).start()?;
/// # Ok::<(), deluxe::daemon::DaemonError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a daemon",
    label = "`{Self}` does not implement `Daemon`",
    note = "add `#[deluxe::daemon]` to an `impl {Self}` block that has `fn run(&self)`, or implement `deluxe::daemon::Daemon` by hand"
)]
pub trait Daemon: Send + Sync {
    /// The daemon's settings. The default names the pidfile after the type
    /// ([`Config::for_type`]).
    fn config() -> Config
    where
        Self: Sized,
    {
        Config::for_type::<Self>()
    }

    /// Prepares the daemon, in the daemon, before it is ready: after daemon(7)'s steps (the
    /// pidfile locked, the working directory entered, output redirected) and, when the daemon
    /// runs as another [`user`](Config#structfield.user), before the privileges are dropped,
    /// as root. Bind privileged ports, open protected files, read and check the configuration
    /// here: an error (or a panic) makes [`Controller::start`] return
    /// [`DaemonError::SetupFailed`] with its message and its causes ([`HookError`]), and the
    /// daemon exits without leaving
    /// its pidfile; under a service manager, `READY=1` is sent only after it succeeded.
    ///
    /// What it makes, the daemon value keeps for [`run`](Daemon::run) through interior
    /// mutability (a [`OnceLock`](std::sync::OnceLock), a `Mutex`): it runs after the fork,
    /// so what it creates belongs to the daemon, not to the controller. A process it starts
    /// is the daemon's like any other: it gets an empty signal mask and default signal
    /// actions, and no copy of the pidfile's lock; when the start fails (an error, a panic,
    /// the start timeout, a `SIGTERM` meanwhile: [`DaemonError::StoppedDuringSetup`]), the
    /// daemon's process group, with what `setup` started in it, is killed before `start`
    /// returns. A process that leaves the group (`setsid`, a double fork into a session of
    /// its own) cannot be found without a subreaper, and is left running. In the foreground
    /// the process group is the supervisor's to end.
    ///
    /// ```no_run
    /// use std::net::TcpListener;
    /// use std::sync::OnceLock;
    /// use deluxe::daemon::{Config, Controller, Daemon, HookError};
    ///
    /// #[derive(Default)]
    /// struct Web {
    ///     listener: OnceLock<TcpListener>,
    /// }
    ///
    /// impl Daemon for Web {
    ///     fn config() -> Config {
    ///         Config::named("web").user("www-data")
    ///     }
    ///
    ///     fn setup(&self) -> Result<(), HookError> {
    ///         // As root: port 80. "Address already in use" comes back from `start`.
    ///         let _ = self.listener.set(TcpListener::bind("127.0.0.1:80")?);
    ///         Ok(())
    ///     }
    ///
    ///     fn run(&self) -> Result<(), HookError> {
    ///         let listener = self.listener.get().expect("setup made it");
    ///         for _connection in listener.incoming() { /* as www-data */ }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// Controller::new(Web::default()).start()?;
    /// # Ok::<(), deluxe::daemon::DaemonError>(())
    /// ```
    fn setup(&self) -> Result<(), HookError> {
        Ok(())
    }

    /// The descriptors this value owns that must stay open in the daemon: a `File`, a socket
    /// or a listener made before [`Controller::start`] and used by [`run`](Daemon::run).
    /// Called by `start`, before forking. (`#[keep_open]` on a field of a `#[daemon]` struct
    /// declares it.)
    ///
    /// Every other descriptor the daemon inherits from the controller is pointed at
    /// `/dev/null` rather than closed: a value that owns one it did not declare writes into
    /// `/dev/null`, and its number can never be reused by a file the daemon opens later (its
    /// pidfile, its log). Better still, make such resources in [`setup`](Daemon::setup),
    /// after the fork.
    ///
    /// ```no_run
    /// use std::io::Write;
    /// use std::os::fd::{AsFd, BorrowedFd};
    /// use std::sync::Mutex;
    /// use deluxe::daemon::{Controller, Daemon, HookError};
    ///
    /// struct Journal {
    ///     file: std::fs::File,
    ///     lock: Mutex<()>,
    /// }
    ///
    /// impl Daemon for Journal {
    ///     fn keep_open(&self) -> Vec<BorrowedFd<'_>> {
    ///         vec![self.file.as_fd()]
    ///     }
    ///
    ///     fn run(&self) -> Result<(), HookError> {
    ///         let _guard = self.lock.lock();
    ///         (&self.file).write_all(b"started\n")?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let file = std::fs::File::options().append(true).create(true).open("/tmp/journal")?;
    /// Controller::new(Journal { file, lock: Mutex::new(()) }).start()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn keep_open(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }

    /// The names of the hooks this type declares (`"setup"`, `"on_reload"`, `"on_user1"`,
    /// `"on_user2"`, `"atexit"`), for messages that say what a signal runs: the
    /// [command line](crate::cli) prints `sent SIGUSR1 (on_user1)` when `"on_user1"` is
    /// listed, and plainly `sent SIGUSR1` when not. `#[daemon]` lists the methods it marks;
    /// the default lists none.
    ///
    /// ```
    /// use deluxe::daemon::Daemon;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// #[deluxe::daemon]
    /// impl Worker {
    ///     fn run(&self) {}
    ///     #[on_user1]
    ///     fn rotate(&self) {}
    /// }
    /// assert_eq!(Worker::hooks(), ["on_user1"]);
    /// ```
    fn hooks() -> &'static [&'static str]
    where
        Self: Sized,
    {
        &[]
    }

    /// The daemon's work. Called once, in the daemon, after it is ready. When it returns, the
    /// daemon runs [`atexit`](Daemon::atexit) and exits: with status 0 after `Ok(())`; after
    /// an error (or a panic) with status 1, the error logged as one line
    /// (`run() failed: MESSAGE; stopping`, the message with its causes: [`HookError`]). After a stop request ([`stop_requested`],
    /// [`wait_for_stop`]) it should return within the stop grace.
    ///
    /// ```no_run
    /// use deluxe::daemon::{self, Daemon, HookError};
    ///
    /// struct Worker;
    ///
    /// impl Daemon for Worker {
    ///     fn run(&self) -> Result<(), HookError> {
    ///         let spool = std::fs::read_dir("/var/spool/worker")?;
    ///         for _entry in spool { /* ... */ }
    ///         daemon::wait_for_stop(std::time::Duration::MAX);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn run(&self) -> Result<(), HookError>;

    /// Called when [`Controller::reload`] asks (on the daemon's reload socket) or the daemon
    /// receives `SIGHUP` (`kill -HUP`, logrotate's `postrotate`, systemd's
    /// `Type=notify-reload`), on the hook thread, after the daemon reopened its log file.
    /// Under a service manager the daemon says `RELOADING=1` before and `READY=1` after. An
    /// error goes back to the controllers that asked ([`DaemonError::ReloadFailed`]), is
    /// logged (with its causes: [`HookError`]), and the daemon keeps running: read and check the new configuration before
    /// replacing the one in use.
    ///
    /// ```no_run
    /// use std::sync::RwLock;
    /// use deluxe::daemon::{Daemon, HookError};
    ///
    /// struct Proxy {
    ///     upstream: RwLock<String>,
    /// }
    ///
    /// impl Daemon for Proxy {
    ///     fn run(&self) -> Result<(), HookError> {
    ///         /* reads self.upstream for each request */
    ///         Ok(())
    ///     }
    ///
    ///     fn on_reload(&self) -> Result<(), HookError> {
    ///         let text = std::fs::read_to_string("/etc/proxy/upstream")?;
    ///         let upstream = text.trim();
    ///         if upstream.is_empty() {
    ///             return Err("/etc/proxy/upstream is empty; keeping the previous upstream".into());
    ///         }
    ///         *self.upstream.write().unwrap() = upstream.to_owned();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    fn on_reload(&self) -> Result<(), HookError> {
        Ok(())
    }

    /// Called when the daemon receives `SIGUSR1` ([`Controller::signal_user1`]), on the
    /// daemon's hook thread. Signals arriving while it runs coalesce into one more call. A
    /// signal received before a stop request runs its hook before [`atexit`](Daemon::atexit),
    /// within the stop grace: `signal_user1()` then `stop()` reloads, then stops.
    fn on_user1(&self) {}

    /// Called when the daemon receives `SIGUSR2` ([`Controller::signal_user2`]).
    fn on_user2(&self) {}

    /// Called exactly once when the daemon ends in a way it can observe: `run` returned, a
    /// stop was requested, `run` or a hook panicked. Not called after `SIGKILL`.
    fn atexit(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_and_uptimes_read_plainly() {
        let at = |seconds| std::time::UNIX_EPOCH + Duration::from_secs(seconds);
        assert_eq!(utc(at(0)), "1970-01-01 00:00:00 UTC");
        // A leap day, the last second of 2099, and 2100, which has no 29 February.
        assert_eq!(utc(at(951_782_400 + 3723)), "2000-02-29 01:02:03 UTC");
        assert_eq!(utc(at(4_102_444_799)), "2099-12-31 23:59:59 UTC");
        assert_eq!(utc(at(4_107_542_399)), "2100-02-28 23:59:59 UTC");
        assert_eq!(utc(at(4_107_542_400)), "2100-03-01 00:00:00 UTC");
        assert_eq!(uptime(Duration::ZERO), "0s");
        assert_eq!(uptime(Duration::from_secs(59)), "59s");
        assert_eq!(uptime(Duration::from_secs(3600)), "1h 0m 0s");
        assert_eq!(uptime(Duration::from_secs(2 * 86_400 + 61)), "2d 0h 1m 1s");
    }

    #[test]
    fn default_names_keep_the_whole_path_readable() {
        for (path, name) in [
            ("ticker::Ticker", "ticker.ticker"),
            ("my_app::net::HttpServer", "my-app.net.http-server"),
            ("server", "server"),
            ("a::HTTPServer", "a.httpserver"),
            ("b::Worker2Pool", "b.worker2-pool"),
        ] {
            assert_eq!(default_name(path), name, "{path}");
        }
        assert_ne!(default_name("one::Server"), default_name("two::Server"));
    }
}
