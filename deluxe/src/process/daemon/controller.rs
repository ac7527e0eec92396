//! [`Controller`]: the handle that starts, stops and signals a daemon.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::handover::{self, Requested, Session};
use super::launch::{self, Plan};
use super::pidfile;
use super::target::{self, Located, Target};
use super::{Config, Daemon, DaemonError, Instance, Pid, Status, StopOutcome};

/// Starts, stops and signals the daemon `D`.
///
/// A controller is a lightweight handle: it keeps the daemon value it was built with (what
/// `start` runs) and the settings, and talks to the
/// daemon through its pidfile and signals. Any number of controllers, in this process or
/// others, reach the same daemon; the pidfile makes it a system-wide singleton.
///
/// Besides a `log` warning, the controller returns a typed outcome: starting a
/// running daemon is [`DaemonError::AlreadyRunning`], stopping a stopped one is
/// [`StopOutcome::NotRunning`], signalling one is [`DaemonError::NotRunning`]; each is also
/// a `log` warning.
///
/// ```no_run
/// use std::time::Duration;
/// use deluxe::process::daemon::{Controller, Daemon, HookError, Status};
///
/// struct Worker { name: String }
/// impl Daemon for Worker {
///     fn run(&self) -> Result<(), HookError> {
///         deluxe::process::daemon::wait_for_stop(Duration::MAX);
///         Ok(())
///     }
/// }
///
/// let controller = Controller::new(Worker { name: "primary".into() })
///     .pidfile("/run/worker.pid")
///     .log_file("/var/log/worker.log")
///     .stop_timeout(Duration::from_secs(3));
/// let pid = controller.start()?;
/// assert!(matches!(controller.status()?, Status::Running { pid: running, .. } if running == pid));
/// controller.stop()?;
/// # Ok::<(), deluxe::process::daemon::DaemonError>(())
/// ```
pub struct Controller<D: Daemon> {
    daemon: Arc<D>,
    config: Config,
}

/// Clones share the daemon value (an `Arc`) and copy the settings.
impl<D: Daemon> Clone for Controller<D> {
    fn clone(&self) -> Self {
        Self {
            daemon: Arc::clone(&self.daemon),
            config: self.config.clone(),
        }
    }
}

impl<D: Daemon> Controller<D> {
    /// A controller for `daemon`, with its type's settings ([`Daemon::config`]).
    ///
    /// ```
    /// use deluxe::process::daemon::{Controller, Daemon, HookError};
    ///
    /// struct Worker { name: &'static str }
    /// impl Daemon for Worker {
    ///     fn run(&self) -> Result<(), HookError> { Ok(()) }
    /// }
    ///
    /// let controller = Controller::new(Worker { name: "primary" });
    /// assert_eq!(controller.daemon().name, "primary");
    /// ```
    pub fn new(daemon: D) -> Self
    where
        D: Sized,
    {
        Self::with_config(daemon, D::config())
    }

    /// A controller for `daemon` with the given settings.
    ///
    /// ```
    /// use deluxe::process::daemon::{Config, Controller};
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = Controller::with_config(Worker, Config::new("/tmp/worker.pid"));
    /// assert_eq!(controller.config().pidfile, std::path::Path::new("/tmp/worker.pid"));
    /// ```
    pub fn with_config(daemon: D, config: Config) -> Self {
        Self {
            daemon: Arc::new(daemon),
            config,
        }
    }

    /// Overrides the pidfile (from a command-line flag, say).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // `worker --pidfile /tmp/test.pid start`, say.
    /// let pidfile = std::env::args().nth(2).unwrap_or_else(|| "/run/worker.pid".into());
    /// Worker::controller().pidfile(pidfile).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.pidfile = path.into();
        self
    }

    /// Overrides the log file.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let debug = std::env::var_os("WORKER_DEBUG").is_some();
    /// let mut controller = Worker::controller();
    /// if debug {
    ///     controller = controller.log_file("/tmp/worker-debug.log");
    /// }
    /// controller.start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn log_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.log_file = Some(path.into());
        self
    }

    /// Overrides the stop timeout.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // An emergency stop: SIGKILL after one second.
    /// Worker::controller().stop_timeout(std::time::Duration::from_secs(1)).stop()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.config.stop_timeout = timeout;
        self
    }

    /// Overrides the stop grace (see [`Config::stop_grace`](super::Config#structfield.stop_grace)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // `run` gets 30 s to finish the request in flight.
    /// Worker::controller().stop_grace(std::time::Duration::from_secs(30)).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.config.stop_grace = Some(grace);
        self
    }

    /// Overrides the start timeout (see
    /// [`Config::start_timeout`](super::Config#structfield.start_timeout)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // A setup that loads a large index.
    /// Worker::controller().start_timeout(std::time::Duration::from_secs(120)).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.config.start_timeout = timeout;
        self
    }

    /// Overrides the reload timeout (see
    /// [`Config::reload_timeout`](super::Config#structfield.reload_timeout)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // A reload that rebuilds a large index.
    /// Worker::controller().reload_timeout(std::time::Duration::from_secs(300)).reload()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn reload_timeout(mut self, timeout: Duration) -> Self {
        self.config.reload_timeout = timeout;
        self
    }

    /// Overrides the working directory (see [`Config::workdir`](super::Config#structfield.workdir)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().workdir("/var/lib/worker").start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn workdir(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.config.workdir = workdir.into();
        self
    }

    /// Overrides the umask (see [`Config::umask`](super::Config#structfield.umask)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().umask(0o077).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn umask(mut self, umask: u32) -> Self {
        self.config.umask = umask;
        self
    }

    /// Overrides whether `on_user1` is announced as a reload (see
    /// [`Config::user1_reloads`](super::Config#structfield.user1_reloads)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().user1_reloads(true).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn user1_reloads(mut self, reloads: bool) -> Self {
        self.config.user1_reloads = reloads;
        self
    }

    /// Overrides whether the daemon's children survive it (see
    /// [`Config::keep_children`](super::Config#structfield.keep_children)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().keep_children(true).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn keep_children(mut self, keep: bool) -> Self {
        self.config.keep_children = keep;
        self
    }

    /// Replaces every setting at once (settings chosen at run time: one instance among
    /// several, say).
    ///
    /// ```no_run
    /// use deluxe::process::daemon::Config;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let config = Config::named("worker-eu").log_file("/var/log/worker-eu.log");
    /// Worker::controller().with(config).start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn with(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Overrides the user the daemon runs as (see [`Config::user`](super::Config#structfield.user)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // As root: the daemon runs as `nobody`.
    /// Worker::controller().user("nobody").start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.config.user = Some(user.into());
        self
    }

    /// Overrides the group the daemon runs as (see [`Config::group`](super::Config#structfield.group)).
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().user("nobody").group("nogroup").start()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.config.group = Some(group.into());
        self
    }

    /// Overrides [`Config::container_init`](super::Config#structfield.container_init): whether
    /// the daemon, run in the foreground as pid 1, leaves pid 1 to a minimal init.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// // The container has its own init (`docker run --init`), or the daemon starts nothing.
    /// let Err(error) = Worker::controller().container_init(false).run_foreground();
    /// # let _ = error;
    /// ```
    #[must_use]
    pub fn container_init(mut self, init: bool) -> Self {
        self.config.container_init = init;
        self
    }

    /// The settings in effect.
    ///
    /// ```
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// println!("pidfile: {}", Worker::controller().config().pidfile.display());
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The daemon value `start` runs.
    ///
    /// ```
    /// #[deluxe::daemon]
    /// struct Worker { threads: usize }
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    ///
    /// let controller = Worker { threads: 4 }.into_controller();
    /// assert_eq!(controller.daemon().threads, 4);
    /// ```
    pub fn daemon(&self) -> &D {
        &self.daemon
    }

    /// Starts the daemon and returns its pid once it is ready: its pidfile locked and written,
    /// its signal hooks in place. Runs [`Daemon::run`] of this controller's value.
    ///
    /// It always forks, even in a program that is pid 1 of a PID namespace (a container's
    /// main process); there the daemon ends when that program exits, as every process of the
    /// namespace does: such a program calls [`run_foreground`](Controller::run_foreground).
    ///
    /// The thread that forks first takes std's stdout and stderr locks and flushes stdout
    /// (what this program printed stays its own, and the daemon never finds the locks held by
    /// a thread it does not have); in the daemon it is the only thread, and calls `run`. In a
    /// program of one thread that is the calling thread. In a program with other threads,
    /// any of which could hold the locks for as long as it likes, it is a short-lived thread
    /// that `start` waits for with the start timeout: it bears the name of the thread that
    /// called `start` (`"main"` from `main`; `ps` shows the daemon by the caller's kernel name,
    /// as before), its stack is as large as a main thread's (`RLIMIT_STACK`'s soft limit, at
    /// most 1 GiB; 8 MiB when unlimited), and the calling thread's thread-locals are not the
    /// daemon's.
    ///
    /// # Errors
    ///
    /// [`DaemonError::AlreadyRunning`] (also a `log` warning) when a daemon holds the pidfile;
    /// [`DaemonError::OutputBusy`] when this program's stdout or stderr stays locked for the
    /// whole start timeout (a thread blocked writing to a pipe nobody reads; also the calling
    /// thread, if it holds `io::stdout().lock()` while others exist); otherwise the step that failed, with its
    /// path and OS error ([`DaemonError::WorkdirMissing`], [`DaemonError::Pidfile`], ...).
    /// After an error no process of this start is left and no pidfile of it remains, but for a
    /// daemon killed at the start timeout, whose pidfile is left stale for the next start to
    /// replace. [`DaemonError::OutsideNamespace`] when the daemon runs outside this PID
    /// namespace.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::DaemonError;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// match Worker::controller().start() {
    ///     Ok(pid) => println!("started, pid {pid}"),
    ///     Err(DaemonError::AlreadyRunning { pid, .. }) => println!("already running, pid {pid}"),
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// ```
    pub fn start(&self) -> Result<Pid, DaemonError> {
        let _turn = launch::take_turn();
        self.start_in_turn()
    }

    fn start_in_turn(&self) -> Result<Pid, DaemonError> {
        pidfile::check_place(&self.config.pidfile, self.daemon_uid(), true)?;
        let since = std::time::Instant::now();
        loop {
            match target::locate(&self.config.pidfile)? {
                Located::Running(target) => return Err(self.already_running(target.pid)),
                Located::Elsewhere { .. } => return Err(self.instance().outside_namespace()),
                Located::Stopped | Located::Stale { .. } => {}
            }
            let plan = Plan::new(&self.config, &*self.daemon)?;
            match launch::spawn(&*self.daemon, &plan) {
                // The new daemon found the lock held by an existing process. Whether that is
                // a running daemon is for the holder check to say: a controller removing a
                // stale pidfile, a daemon that exited but is not reaped yet, or a reused pid
                // are not, and a daemon killed since has stopped being one; then this start
                // tries again, within its start timeout.
                Err(DaemonError::AlreadyRunning { pid, .. })
                    if since.elapsed() >= self.config.start_timeout =>
                {
                    return Err(self.already_running(pid));
                }
                Err(DaemonError::AlreadyRunning { .. }) => continue,
                other => return other,
            }
        }
    }

    /// The user id of the daemon's configured user, if any and known.
    fn daemon_uid(&self) -> Option<u32> {
        let user = self.config.user.as_deref()?;
        Some(nix::unistd::User::from_name(user).ok()??.uid.as_raw())
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

    /// Runs the daemon in this process, for a supervisor (systemd, start-stop-daemon, a
    /// container runtime) that owns it: the same setup as [`start`](Controller::start) minus
    /// the forks and the session change, then [`Daemon::run`], then [`Daemon::atexit`], then
    /// the process exits. Inherited descriptors stay open and output stays where the
    /// supervisor sent it (unless a log file is set): supervisors hand over sockets and collect
    /// output on purpose. Under a service manager the daemon says `READY=1` once ready.
    ///
    /// Threads started before it are fine: the daemon's signals are caught by a handler,
    /// whichever thread they land on.
    ///
    /// As pid 1 (a container's main process) the process first becomes a minimal init, as
    /// `tini` is: it forks the daemon, reaps every orphan in the container, forwards `SIGTERM`,
    /// `SIGINT`, `SIGHUP`, `SIGUSR1`, `SIGUSR2` and `SIGQUIT` to the daemon, and exits with the
    /// daemon's exit status (`128 + N` when a signal `N` killed it). Everything else, this
    /// call's errors included, happens in the daemon, pid 2, whose children are its own.
    /// [`container_init(false)`](Controller::container_init) opts out.
    ///
    /// # Errors
    ///
    /// Returns only when a step fails: [`DaemonError::AlreadyRunning`] and the errors of
    /// [`start`](Controller::start). Under a service manager (`NOTIFY_SOCKET` set) the error's
    /// text is also the service's status (`STATUS=`, what `systemctl status` shows), so the
    /// operator reads why the start failed even where no journal keeps the daemon's output.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let Err(error) = Worker::controller().run_foreground();
    /// eprintln!("{error}");
    /// std::process::exit(1);
    /// ```
    pub fn run_foreground(&self) -> Result<Infallible, DaemonError> {
        let Err(error) = self.foreground_until_failure();
        super::manager::status_failed(&error.to_string());
        Err(error)
    }

    /// [`run_foreground`](Controller::run_foreground) up to the failure it returns.
    fn foreground_until_failure(&self) -> Result<Infallible, DaemonError> {
        let turn = launch::take_turn();
        pidfile::check_place(&self.config.pidfile, self.daemon_uid(), true)?;
        match target::locate(&self.config.pidfile)? {
            Located::Running(target) => return Err(self.already_running(target.pid)),
            Located::Elsewhere { .. } => return Err(self.instance().outside_namespace()),
            Located::Stopped | Located::Stale { .. } => {}
        }
        let plan = Plan::new(&self.config, &*self.daemon)?;
        // The daemon runs here for good: it may start daemons itself.
        drop(turn);
        Err(launch::foreground(&*self.daemon, &plan))
    }

    /// Stops the daemon: `SIGTERM`, then waits for it to exit (learning of the exit at once,
    /// without polling); `SIGKILL` if it is still there after the stop timeout (its pidfile is
    /// then left stale: the next `start` replaces it).
    ///
    /// # Errors
    ///
    /// [`DaemonError::SignalRefused`] when the holder is a process this controller must not
    /// signal (another user's, reachable only as root; pid 1), [`DaemonError::Signal`] when
    /// signalling fails, [`DaemonError::StopTimeout`] when it survives even `SIGKILL`, and the
    /// pidfile errors of [`status`](Controller::status).
    ///
    /// ```no_run
    /// use deluxe::process::daemon::StopOutcome;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// match Worker::controller().stop()? {
    ///     StopOutcome::Graceful => println!("stopped"),
    ///     StopOutcome::GraceExpired => println!("stopped, run() cut short after the grace"),
    ///     StopOutcome::Killed => println!("killed after the stop timeout"),
    ///     StopOutcome::NotRunning => println!("was not running"),
    ///     StopOutcome::Requested => println!("this is the daemon: it will stop"),
    /// }
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn stop(&self) -> Result<StopOutcome, DaemonError> {
        self.instance().stop()
    }

    /// Restarts the daemon; returns the new daemon's pid.
    ///
    /// When the running daemon declared listening sockets ([`listener`](super::listener), or
    /// listening sockets its value keeps open), the new daemon starts first, with those
    /// sockets: it does not bind them, its `setup` runs, and once it is ready (its pidfile at
    /// the path) the old daemon stops as on `SIGTERM`, draining what it accepted; this call
    /// waits for it as [`stop`](Controller::stop) does (`SIGKILL` after the stop timeout). No
    /// connection is refused meanwhile. If the new daemon fails before ready, the old one
    /// serves on, untouched, and its error is returned. A daemon without sockets is stopped,
    /// then started; one not running is started.
    ///
    /// The new daemon is forked from this process, as by `start`: it runs this program's code
    /// and this controller's value. A restart from the command line of a newly installed
    /// binary runs the new binary.
    ///
    /// # Errors
    ///
    /// As [`Controller::stop`] and [`Controller::start`] (a new daemon's failure:
    /// [`DaemonError::SetupFailed`], ..., the old daemon still serving);
    /// [`DaemonError::RestartInProgress`] while another restart hands the sockets over;
    /// [`DaemonError::HandoverRefused`] when the hand-over directory or socket is not the
    /// daemon's (planted by another user, a symbolic link) and [`DaemonError::Handover`] when
    /// the exchange fails: then nothing was stopped.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let pid = Worker::controller().restart()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn restart(&self) -> Result<Pid, DaemonError> {
        let _turn = launch::take_turn();
        if let Located::Running(target) = target::locate(&self.config.pidfile)? {
            if target.is_this_process() {
                return Err(DaemonError::RestartFromInside { pid: target.pid });
            }
            let timeout = self.config.start_timeout;
            if let Requested::Session(session) =
                handover::request(&target, &self.config.pidfile, timeout)?
            {
                return self.take_over(&target, session);
            }
        }
        self.stop()?;
        self.start_in_turn()
    }

    /// A restart with a hand-over: starts the new daemon with the sockets of `session`; once
    /// it is ready (it told the old daemon `COMMIT`), waits for the old one, `old`, to stop.
    fn take_over(&self, old: &Target, mut session: Session) -> Result<Pid, DaemonError> {
        let plan = Plan::new(&self.config, &*self.daemon).and_then(|plan| {
            plan.taking_over(&mut session)
                .map_err(|source| DaemonError::Handover {
                    pid: old.pid,
                    source,
                })
        });
        // The plan owns this controller's copies of the sockets: they close with it.
        let started = plan.and_then(|plan| launch::spawn(&*self.daemon, &plan));
        match started {
            Ok(pid) => {
                drop(session);
                self.instance().stop_target(old)?;
                Ok(pid)
            }
            Err(error) => {
                session.abort();
                Err(error)
            }
        }
    }

    /// Reloads the daemon and returns once it says how that went: it reopens its log file
    /// (after a rotation) and runs [`Daemon::on_reload`], telling a service manager
    /// `RELOADING=1`, then `READY=1`, and answers this call as `start` does: the hook's error
    /// comes back as [`DaemonError::ReloadFailed`].
    ///
    /// The request and the answer travel on the daemon's reload socket, `PIDFILE.reload`
    /// (a signal carries no reply), which answers root and the daemon's own user only; this
    /// controller believes only the process holding the pidfile. Concurrent reloads each get
    /// an answer (one that arrives while a reload runs waits for the next). `kill -HUP`
    /// still reloads, without an answer. From inside the daemon it is refused
    /// ([`DaemonError::SignalRefused`], [`Refusal::ThisProcess`](super::Refusal::ThisProcess)):
    /// a hook would wait for itself.
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile;
    /// [`DaemonError::ReloadFailed`] (the hook's message; the daemon runs on);
    /// [`DaemonError::ReloadPanicked`] (the hook panicked; the daemon stops);
    /// [`DaemonError::ReloadTimeout`] after the reload timeout
    /// ([`Config::reload_timeout`](super::Config#structfield.reload_timeout), 30 s by
    /// default); [`DaemonError::ReloadUnanswered`] (a daemon without a reload socket, built
    /// with an older deluxe, is sent `SIGHUP` instead); [`DaemonError::ReloadImpostor`] when
    /// another process listens on the socket; and the errors of [`stop`](Controller::stop)
    /// before anything is sent.
    ///
    /// ```no_run
    /// use deluxe::process::daemon::DaemonError;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// match Worker::controller().reload() {
    ///     Ok(()) => println!("reloaded"),
    ///     Err(DaemonError::ReloadFailed { message, .. }) => eprintln!("kept the old config: {message}"),
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// ```
    pub fn reload(&self) -> Result<(), DaemonError> {
        self.instance().reload()
    }

    /// Sends `SIGUSR1`: the daemon runs [`Daemon::on_user1`].
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().signal_user1()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn signal_user1(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR1)
    }

    /// Sends `SIGUSR2`: the daemon runs [`Daemon::on_user2`].
    ///
    /// # Errors
    ///
    /// [`DaemonError::NotRunning`] (also a `log` warning) when no daemon holds the pidfile.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// Worker::controller().signal_user2()?;
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn signal_user2(&self) -> Result<(), DaemonError> {
        self.send(Signal::SIGUSR2)
    }

    fn send(&self, signal: Signal) -> Result<(), DaemonError> {
        self.instance().send(signal)
    }

    /// What the pidfile says: running (and the pid), stopped, or stale; see [`Status`] for
    /// every state a pidfile can be in.
    ///
    /// `Running { pid }` means the kernel names process `pid` as the holder of the pidfile's
    /// lock (`F_GETLK`, in this process's PID namespace): the daemon's own service account,
    /// a controller in another PID namespace or without `/proc` get the same answer.
    /// `RunningElsewhere` means the holder is outside this PID namespace. A pid the pidfile
    /// merely names is never reported running.
    ///
    /// # Errors
    ///
    /// A pidfile that cannot be read ([`DaemonError::Pidfile`]: a symbolic link, a directory,
    /// no permission); one in an unsafe place ([`DaemonError::UnsafePidfile`]); one locked by
    /// a process no lock names (on Linux: a process the daemon forked, another program) and
    /// that is not the one the file names ([`DaemonError::PidfileHolderMismatch`],
    /// [`DaemonError::PidfileWithoutPid`]), or whose open files this user cannot read
    /// ([`DaemonError::HolderUnconfirmed`]).
    ///
    /// ```
    /// use deluxe::process::daemon::Status;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = Worker::controller().pidfile("/nonexistent/worker.pid");
    /// assert_eq!(controller.status()?, Status::Stopped);
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn status(&self) -> Result<Status, DaemonError> {
        self.instance().status()
    }

    /// The daemon's pid when it runs.
    ///
    /// # Errors
    ///
    /// As [`Controller::status`].
    ///
    /// ```
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = Worker::controller().pidfile("/nonexistent/worker.pid");
    /// assert_eq!(controller.pid()?, None);
    /// # Ok::<(), deluxe::process::daemon::DaemonError>(())
    /// ```
    pub fn pid(&self) -> Result<Option<Pid>, DaemonError> {
        self.instance().pid()
    }

    /// This daemon as an [`Instance`]: its pidfile and settings, without the daemon value.
    ///
    /// ```
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let instance = Worker::controller().pidfile("/nonexistent/worker.pid").instance();
    /// assert_eq!(instance.config().pidfile, std::path::Path::new("/nonexistent/worker.pid"));
    /// ```
    pub fn instance(&self) -> Instance {
        Instance::new(self.config.clone())
    }
}

/// Whether this process was started by a service manager or is one itself, as daemon(7) asks
/// daemons to tell: `NOTIFY_SOCKET` is set (systemd `Type=notify`,
/// `start-stop-daemon --notify-await`), or this process is pid 1 (a container's main
/// process). Then a daemon should run in the foreground ([`Controller::run_foreground`])
/// instead of forking.
///
/// A parent that is pid 1 is not enough: a container's entry shell, `unshare --pid`, or a
/// `Type=forking` unit all run programs that expect `start` to fork and return.
///
/// ```
/// if deluxe::process::daemon::supervised() {
///     println!("running under a supervisor");
/// }
/// ```
pub fn supervised() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|socket| !socket.is_empty())
        || std::process::id() == 1
}

/// The controller's calls as futures, for tokio programs: each runs on tokio's blocking pool
/// (starting forks, stopping waits), so the runtime's threads never block.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
impl<D: Daemon + 'static> Controller<D> {
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Self) -> Result<T, DaemonError> + Send + 'static,
    ) -> Result<T, DaemonError> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || call(&this)).await {
            Ok(result) => result,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }

    /// [`start`](Controller::start), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let controller = Worker::controller();
    /// let pid = controller.start_async().await?;
    /// controller.stop_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`start`](Controller::start).
    pub async fn start_async(&self) -> Result<Pid, DaemonError> {
        self.blocking(Self::start).await
    }

    /// [`stop`](Controller::stop), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let outcome = Worker::controller().stop_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`stop`](Controller::stop).
    pub async fn stop_async(&self) -> Result<StopOutcome, DaemonError> {
        self.blocking(Self::stop).await
    }

    /// [`restart`](Controller::restart), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let outcome = Worker::controller().restart_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`restart`](Controller::restart).
    pub async fn restart_async(&self) -> Result<Pid, DaemonError> {
        self.blocking(Self::restart).await
    }

    /// [`reload`](Controller::reload), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// Worker::controller().reload_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`reload`](Controller::reload).
    pub async fn reload_async(&self) -> Result<(), DaemonError> {
        self.blocking(Self::reload).await
    }

    /// [`signal_user1`](Controller::signal_user1), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let outcome = Worker::controller().signal_user1_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`signal_user1`](Controller::signal_user1).
    pub async fn signal_user1_async(&self) -> Result<(), DaemonError> {
        self.blocking(Self::signal_user1).await
    }

    /// [`signal_user2`](Controller::signal_user2), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let outcome = Worker::controller().signal_user2_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`signal_user2`](Controller::signal_user2).
    pub async fn signal_user2_async(&self) -> Result<(), DaemonError> {
        self.blocking(Self::signal_user2).await
    }

    /// [`status`](Controller::status), as a future.
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::process::daemon::DaemonError> {
    /// let outcome = Worker::controller().status_async().await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`status`](Controller::status).
    pub async fn status_async(&self) -> Result<Status, DaemonError> {
        self.blocking(Self::status).await
    }
}
