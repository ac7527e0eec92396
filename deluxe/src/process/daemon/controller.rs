//! [`Controller`]: the handle that starts, stops and signals a daemon.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::pidfile::{self, Probe};
use super::target::{self, Located, Target};
use super::worker::{self, Plan};
use super::{Config, Daemon, DaemonError, Pid, Status, StopOutcome};

/// How long `stop` waits for the daemon to die after `SIGKILL`.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Starts in one process take turns; across processes the pidfile lock decides.
static STARTS: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    STARTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts, stops and signals the daemon `D`.
///
/// A controller is a lightweight handle: it keeps the daemon value it was built with (what
/// `start` runs: the reference's "constructor arguments") and the settings, and talks to the
/// daemon through its pidfile and signals. Any number of controllers, in this process or
/// others, reach the same daemon; the pidfile makes it a system-wide singleton.
///
/// Where the reference only warns, the controller also returns a typed outcome: starting a
/// running daemon is [`DaemonError::AlreadyRunning`], stopping a stopped one is
/// [`StopOutcome::NotRunning`], signalling one is [`DaemonError::NotRunning`]; each is also
/// a `log` warning.
///
/// ```no_run
/// use std::time::Duration;
/// use deluxe::process::daemon::{Controller, Daemon, Status};
///
/// struct Worker { name: String }
/// impl Daemon for Worker {
///     fn run(&self) { deluxe::process::daemon::wait_for_stop(Duration::MAX); }
/// }
///
/// let controller = Controller::new(Worker { name: "primary".into() })
///     .pidfile("/run/worker.pid")
///     .log_file("/var/log/worker.log")
///     .stop_timeout(Duration::from_secs(3));
/// let pid = controller.start()?;
/// assert_eq!(controller.status()?, Status::Running { pid });
/// controller.stop()?;
/// # Ok::<(), deluxe::process::daemon::DaemonError>(())
/// ```
pub struct Controller<D: Daemon> {
    daemon: D,
    config: Config,
}

impl<D: Daemon> Controller<D> {
    /// A controller for `daemon`, with its type's settings ([`Daemon::config`]).
    pub fn new(daemon: D) -> Self
    where
        D: Sized,
    {
        Self::with_config(daemon, D::config())
    }

    /// A controller for `daemon` with the given settings.
    pub fn with_config(daemon: D, config: Config) -> Self {
        Self { daemon, config }
    }

    /// Overrides the pidfile (from a command-line flag, say).
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.pidfile = path.into();
        self
    }

    /// Overrides the log file.
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.log_file = Some(path.into());
        self
    }

    /// Overrides the stop timeout.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.config.stop_timeout = timeout;
        self
    }

    /// The settings in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The daemon value `start` runs.
    pub fn daemon(&self) -> &D {
        &self.daemon
    }

    /// Starts the daemon and returns its pid once it is ready: its pidfile locked and written,
    /// its signal hooks in place. Runs [`Daemon::run`] of this controller's value.
    ///
    /// # Errors
    ///
    /// [`DaemonError::AlreadyRunning`] (also a `log` warning) when a daemon holds the pidfile;
    /// otherwise the step that failed, with its path and OS error
    /// ([`DaemonError::WorkdirMissing`], [`DaemonError::Pidfile`], ...). After an error no
    /// process of this start is left and no pidfile of it remains.
    pub fn start(&self) -> Result<Pid, DaemonError> {
        let _turn = take_turn();
        self.start_in_turn()
    }

    fn start_in_turn(&self) -> Result<Pid, DaemonError> {
        if let Probe::Locked { pid, .. } = pidfile::probe(&self.config.pidfile)? {
            return Err(self.already_running(pid));
        }
        let plan = Plan::new(&self.config)?;
        match worker::spawn(&self.daemon, &plan) {
            Err(DaemonError::AlreadyRunning { pid, .. }) => Err(self.already_running(pid)),
            other => other,
        }
    }

    fn already_running(&self, pid: Pid) -> DaemonError {
        log::warn!(
            "daemon already running (pid {pid}, pidfile {})",
            self.config.pidfile.display()
        );
        DaemonError::AlreadyRunning {
            pid,
            pidfile: self.config.pidfile.clone(),
        }
    }

    /// Stops the daemon: `SIGTERM`, then waits for it to exit (learning of the exit at once,
    /// without polling); `SIGKILL` if it is still there after the stop timeout, and then its
    /// pidfile is removed.
    ///
    /// # Errors
    ///
    /// [`DaemonError::Signal`] when the daemon cannot be signalled (it belongs to another
    /// user), [`DaemonError::StopTimeout`] when it survives even `SIGKILL`, and pidfile errors.
    pub fn stop(&self) -> Result<StopOutcome, DaemonError> {
        let path = &self.config.pidfile;
        let target = match target::locate(path)? {
            Located::Running(target) => target,
            Located::NotRunning { stale } => {
                if stale {
                    pidfile::remove_stale(path)?;
                }
                log::warn!("daemon not running (pidfile {})", path.display());
                return Ok(StopOutcome::NotRunning);
            }
        };
        let outcome =
            if !target.signal(Signal::SIGTERM)? || self.wait(&target, self.config.stop_timeout)? {
                StopOutcome::Graceful
            } else {
                log::warn!(
                    "daemon (pid {}) still running {:?} after SIGTERM; sending SIGKILL",
                    target.pid,
                    self.config.stop_timeout
                );
                if target.signal(Signal::SIGKILL)? && !self.wait(&target, KILL_WAIT)? {
                    return Err(DaemonError::StopTimeout {
                        pid: target.pid,
                        waited: KILL_WAIT,
                    });
                }
                StopOutcome::Killed
            };
        // A daemon that exits removes its pidfile; one that was killed could not.
        pidfile::remove_stale(path)?;
        Ok(outcome)
    }

    fn wait(&self, target: &Target, timeout: Duration) -> Result<bool, DaemonError> {
        target
            .wait_exit(timeout)
            .map_err(|source| DaemonError::Setup {
                step: "wait for the daemon to exit",
                source,
            })
    }

    /// Stops the daemon if it runs, then starts it: the new daemon never overlaps the old one.
    ///
    /// # Errors
    ///
    /// As [`Controller::stop`] and [`Controller::start`].
    pub fn restart(&self) -> Result<Pid, DaemonError> {
        let _turn = take_turn();
        self.stop()?;
        self.start_in_turn()
    }

    /// Sends `SIGUSR1`: the daemon runs [`Daemon::on_user1`].
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    pub fn signal_user1(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR1)
    }

    /// Sends `SIGUSR2`: the daemon runs [`Daemon::on_user2`].
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    pub fn signal_user2(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR2)
    }

    fn send(&self, signal: Signal) -> Result<(), DaemonError> {
        let path = &self.config.pidfile;
        if let Located::Running(target) = target::locate(path)?
            && target.signal(signal)?
        {
            return Ok(());
        }
        log::warn!(
            "daemon not running (pidfile {}); {} not sent",
            path.display(),
            signal.as_str()
        );
        Err(DaemonError::NotRunning {
            pidfile: path.clone(),
        })
    }

    /// What the pidfile says: running (and the pid), stopped, or stale.
    ///
    /// # Errors
    ///
    /// A pidfile that cannot be read ([`DaemonError::Pidfile`]: a symbolic link, a directory,
    /// no permission).
    pub fn status(&self) -> Result<Status, DaemonError> {
        Ok(match pidfile::probe(&self.config.pidfile)? {
            Probe::Missing => Status::Stopped,
            Probe::Unlocked { pid } => Status::Stale { pid },
            Probe::Locked { pid, .. } => Status::Running { pid },
        })
    }

    /// The daemon's pid when it runs.
    ///
    /// # Errors
    ///
    /// As [`Controller::status`].
    pub fn pid(&self) -> Result<Option<Pid>, DaemonError> {
        Ok(match self.status()? {
            Status::Running { pid } => Some(pid),
            Status::Stopped | Status::Stale { .. } => None,
        })
    }
}
