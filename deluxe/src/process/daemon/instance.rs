//! [`Instance`]: a daemon known by its pidfile and settings alone, without a daemon value.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::pidfile;
use super::reload;
use super::target::{self, Delivery, Located, Target};
use super::{Config, DaemonError, Pid, Status, Step, StopOutcome};

/// How long `stop` waits for the daemon to die after `SIGKILL`.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A daemon instance known by its pidfile (and the settings `stop` uses), without the daemon
/// value a [`Controller`](super::Controller) keeps to start it: what a program needs to watch,
/// stop, reload or signal instances it did not start, or several instances of one type whose
/// pidfiles are chosen at run time.
///
/// ```no_run
/// use deluxe::process::daemon::{Config, Instance, Status};
///
/// for shard in 0..4 {
///     let instance = Instance::new(Config::new(format!("/run/shards/{shard}.pid")));
///     match instance.status()? {
///         Status::Running { pid, .. } => println!("shard {shard}: pid {pid}"),
///         Status::RunningElsewhere { .. } => println!("shard {shard}: in another namespace"),
///         Status::Stopped | Status::Stale { .. } => println!("shard {shard}: not running"),
///     }
/// }
/// # Ok::<(), deluxe::process::daemon::DaemonError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    config: Config,
}

impl Instance {
    /// The instance whose pidfile (and stop timeout, children setting) `config` names.
    ///
    /// ```
    /// use deluxe::process::daemon::{Config, Instance, Status};
    ///
    /// let instance = Instance::new(Config::new("/nonexistent/worker.pid"));
    /// assert_eq!(instance.status()?, Status::Stopped);
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// Its settings.
    ///
    /// ```
    /// use deluxe::process::daemon::{Config, Instance};
    /// let instance = Instance::new(Config::new("/run/w.pid"));
    /// assert_eq!(instance.config().pidfile, std::path::Path::new("/run/w.pid"));
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops the daemon: `SIGTERM`, then waits for it to exit (learning of the exit at once,
    /// without polling); `SIGKILL` (to its process group too, unless
    /// [`keep_children`](Config#structfield.keep_children)) if it is still there after the
    /// stop timeout (its pidfile is then left stale, for the next start to replace). As
    /// [`Controller::stop`](super::Controller::stop).
    ///
    /// # Errors
    ///
    /// [`DaemonError::Signal`] when the daemon cannot be signalled (it belongs to another
    /// user), [`DaemonError::OutsideNamespace`] when it runs outside this PID namespace, [`DaemonError::StopTimeout`] when it survives even `SIGKILL`, and pidfile errors.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::{Config, Instance};
    /// Instance::new(Config::new("/run/shards/2.pid")).stop()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn stop(&self) -> Result<StopOutcome, DaemonError> {
        let path = &self.config.pidfile;
        let target = match self.locate()? {
            Located::Running(target) if target.is_this_process() => {
                // Inside the daemon: waiting for its own exit would never end.
                target.request_own_stop()?;
                return Ok(StopOutcome::Requested);
            }
            Located::Running(target) => target,
            Located::Elsewhere { .. } => return Err(self.outside_namespace()),
            Located::Stopped | Located::Stale { .. } => {
                log::warn!("daemon not running (pidfile {})", path.display());
                return Ok(StopOutcome::NotRunning);
            }
        };
        self.stop_target(&target)
    }

    /// Stops the daemon `target` (located already): `SIGTERM`, the wait, `SIGKILL` after the
    /// stop timeout.
    pub(crate) fn stop_target(&self, target: &Target) -> Result<StopOutcome, DaemonError> {
        let outcome = if target.signal(Signal::SIGTERM)? == Delivery::AlreadyGone
            || self.wait(target, self.config.stop_timeout)?
        {
            if target.grace_expired() {
                log::warn!(
                    "daemon (pid {}): run() did not return within the stop grace; it ran \
                     atexit and exited on its own",
                    target.pid
                );
                StopOutcome::GraceExpired
            } else {
                StopOutcome::Graceful
            }
        } else {
            log::warn!(
                "daemon (pid {}) still running {:?} after SIGTERM; sending SIGKILL",
                target.pid,
                self.config.stop_timeout
            );
            // Its children too, unless they may outlive it: the daemon did not get to end them.
            let group = (!self.config.keep_children)
                .then(|| target.own_group())
                .flatten();
            let killed = target.signal(Signal::SIGKILL)?;
            if let Some(group) = group {
                // Right after the daemon, while its children still hold the group id.
                // SAFETY: killpg only sends a signal.
                unsafe { libc::killpg(group, libc::SIGKILL) };
            }
            if killed == Delivery::Delivered && !self.wait(target, KILL_WAIT)? {
                return Err(DaemonError::StopTimeout {
                    pid: target.pid,
                    waited: KILL_WAIT,
                });
            }
            StopOutcome::Killed
        };
        // A daemon that exits removes its pidfile; one that was killed leaves it stale, for
        // the next start to replace (removing it here could remove a new daemon's).
        Ok(outcome)
    }

    fn wait(&self, target: &Target, timeout: Duration) -> Result<bool, DaemonError> {
        target
            .wait_exit(timeout)
            .map_err(|source| DaemonError::Setup {
                step: Step::WaitForExit,
                source,
            })
    }

    /// Reloads the daemon and says how it went: the daemon reopens its log file and runs its
    /// reload hook, and answers on its reload socket (`PIDFILE.reload`) within the reload
    /// timeout. As [`Controller::reload`](super::Controller::reload).
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile;
    /// [`DaemonError::ReloadFailed`] with the hook's message ([`DaemonError::ReloadPanicked`]
    /// when it panicked); [`DaemonError::ReloadTimeout`],
    /// [`DaemonError::ReloadUnanswered`], [`DaemonError::ReloadImpostor`] when there is no
    /// answer to believe; the errors of [`Instance::stop`] before anything is sent.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::{Config, Instance};
    /// Instance::new(Config::new("/run/shards/2.pid")).reload()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn reload(&self) -> Result<(), DaemonError> {
        match self.locate()? {
            Located::Running(target) => {
                reload::ask(&target, &self.config.pidfile, self.config.reload_timeout)
            }
            Located::Elsewhere { .. } => Err(self.outside_namespace()),
            Located::Stopped | Located::Stale { .. } => Err(self.not_running(Signal::SIGHUP)),
        }
    }

    /// Sends `SIGUSR1`.
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::{Config, Instance};
    /// Instance::new(Config::new("/run/shards/2.pid")).signal_user1()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn signal_user1(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR1)
    }

    /// Sends `SIGUSR2`.
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::{Config, Instance};
    /// Instance::new(Config::new("/run/shards/2.pid")).signal_user2()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn signal_user2(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR2)
    }

    pub(crate) fn send(&self, signal: Signal) -> Result<(), DaemonError> {
        match self.locate()? {
            Located::Running(target) if target.signal(signal)? == Delivery::Delivered => {
                return Ok(());
            }
            Located::Elsewhere { .. } => return Err(self.outside_namespace()),
            _ => {}
        }
        Err(self.not_running(signal))
    }

    /// The daemon is not running, so `signal` was not sent (also a `log` warning).
    fn not_running(&self, signal: Signal) -> DaemonError {
        let path = &self.config.pidfile;
        log::warn!(
            "daemon not running (pidfile {}); {} not sent",
            path.display(),
            signal.as_str()
        );
        DaemonError::NotRunning {
            pidfile: path.clone(),
        }
    }

    /// The error for a daemon outside this process's PID namespace, which it cannot signal.
    pub(crate) fn outside_namespace(&self) -> DaemonError {
        DaemonError::OutsideNamespace {
            pidfile: self.config.pidfile.clone(),
        }
    }

    /// The user the daemon runs as, for the pidfile checks.
    fn daemon_uid(&self) -> Option<u32> {
        let user = self.config.user.as_deref()?;
        Some(nix::unistd::User::from_name(user).ok()??.uid.as_raw())
    }

    /// Where the daemon is, once the pidfile's place is known to be safe
    /// ([`DaemonError::UnsafePidfile`]).
    fn locate(&self) -> Result<Located, DaemonError> {
        pidfile::check_place(&self.config.pidfile, self.daemon_uid(), false)?;
        target::locate(&self.config.pidfile)
    }

    /// What the pidfile says: running (the pid, since when), stopped, or stale.
    ///
    /// # Errors
    ///
    /// A pidfile that cannot be read ([`DaemonError::Pidfile`]: a symbolic link, a directory,
    /// no permission).
    ///
    /// ```
    /// use deluxe::process::daemon::{Config, Instance, Status};
    /// let instance = Instance::new(Config::new("/nonexistent/worker.pid"));
    /// assert_eq!(instance.status()?, Status::Stopped);
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn status(&self) -> Result<Status, DaemonError> {
        Ok(match self.locate()? {
            Located::Stopped => Status::Stopped,
            Located::Stale { pid } => Status::Stale { pid },
            Located::Running(target) => Status::Running {
                pid: target.pid,
                since: target.since(),
            },
            Located::Elsewhere { since } => Status::RunningElsewhere { since },
        })
    }

    /// The daemon's pid when it runs.
    ///
    /// # Errors
    ///
    /// As [`Instance::status`].
    ///
    /// ```
    /// use deluxe::process::daemon::{Config, Instance};
    /// assert_eq!(Instance::new(Config::new("/nonexistent/worker.pid")).pid()?, None);
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn pid(&self) -> Result<Option<Pid>, DaemonError> {
        Ok(match self.status()? {
            Status::Running { pid, .. } => Some(pid),
            Status::Stopped | Status::Stale { .. } | Status::RunningElsewhere { .. } => None,
        })
    }
}
