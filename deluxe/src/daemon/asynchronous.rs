//! [`AsyncController`] and [`AsyncInstance`]: the blocking handles' calls as futures, for
//! tokio programs (the `tokio` feature), name for name, as `tokio::fs` mirrors `std::fs`.
//!
//! Each call runs the blocking one on tokio's blocking pool (a start forks and waits for
//! "ready", a stop waits for the exit), so the runtime's threads never block. A future
//! dropped before it completes does not cancel the call: the call runs to its end on the
//! pool as the blocking one would, cleanup included (a start that fails leaves no process,
//! one that succeeds leaves its daemon running; a stop still waits, and kills after the stop
//! timeout).

use super::{Controller, Daemon, DaemonError, Instance, Pid, Status, StopOutcome};

/// Runs `call` on `value` on tokio's blocking pool; a panic in it is resumed here.
async fn blocking<S, T>(
    value: S,
    call: impl FnOnce(&S) -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, DaemonError>
where
    S: Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(move || call(&value)).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// A [`Controller`] whose calls are futures: the same names, the same errors, each run on
/// tokio's blocking pool. The settings and the daemon value are the blocking controller's
/// ([`controller`](Self::controller)). [`Controller::run_foreground`] has no async form: it
/// never returns, this process becoming the daemon; call it before building a runtime.
///
/// ```no_run
/// use deluxe::daemon::AsyncController;
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
/// let controller = AsyncController::new(Worker::controller());
/// let pid = controller.start().await?;
/// controller.reload().await?;
/// controller.stop().await?;
/// # Ok(()) }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncController<D: Daemon> {
    controller: Controller<D>,
}

/// Clones share the daemon value, as [`Controller`]'s clones do.
impl<D: Daemon> Clone for AsyncController<D> {
    fn clone(&self) -> Self {
        Self {
            controller: self.controller.clone(),
        }
    }
}

impl<D: Daemon> From<Controller<D>> for AsyncController<D> {
    fn from(controller: Controller<D>) -> Self {
        Self::new(controller)
    }
}

impl<D: Daemon> AsyncController<D> {
    /// The async form of `controller`.
    ///
    /// ```
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = Worker::controller().configure(|c| c.pidfile("/run/w.pid"));
    /// let controller = AsyncController::new(controller);
    /// assert_eq!(controller.controller().config().pidfile, std::path::Path::new("/run/w.pid"));
    /// ```
    pub fn new(controller: Controller<D>) -> Self {
        Self { controller }
    }

    /// The blocking controller: its settings, its daemon value.
    ///
    /// ```
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = AsyncController::from(Worker::controller());
    /// println!("pidfile: {}", controller.controller().config().pidfile.display());
    /// ```
    pub fn controller(&self) -> &Controller<D> {
        &self.controller
    }

    /// [`Controller::instance`], async: this daemon as an [`AsyncInstance`].
    ///
    /// ```
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// let controller = Worker::controller().configure(|c| c.pidfile("/run/w.pid"));
    /// let controller = AsyncController::new(controller);
    /// let instance = controller.instance();
    /// assert_eq!(instance.instance().config().pidfile, std::path::Path::new("/run/w.pid"));
    /// ```
    pub fn instance(&self) -> AsyncInstance {
        AsyncInstance::new(self.controller.instance())
    }
}

impl<D: Daemon + 'static> AsyncController<D> {
    /// Runs `call` on a clone of the blocking controller, on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Controller<D>) -> Result<T, DaemonError> + Send + 'static,
    ) -> Result<T, DaemonError> {
        blocking(self.controller.clone(), call).await
    }

    /// [`Controller::start`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::start`].
    ///
    /// ```no_run
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// let pid = AsyncController::new(Worker::controller()).start().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start(&self) -> Result<Pid, DaemonError> {
        self.blocking(Controller::start).await
    }

    /// [`Controller::stop`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::stop`].
    ///
    /// ```no_run
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// let outcome = AsyncController::new(Worker::controller()).stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop(&self) -> Result<StopOutcome, DaemonError> {
        self.blocking(Controller::stop).await
    }

    /// [`Controller::restart`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::restart`].
    ///
    /// ```no_run
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// let pid = AsyncController::new(Worker::controller()).restart().await?;
    /// # Ok(()) }
    /// ```
    pub async fn restart(&self) -> Result<Pid, DaemonError> {
        self.blocking(Controller::restart).await
    }

    /// [`Controller::reload`], as a future: resolves once the daemon said how its reload went.
    ///
    /// # Errors
    ///
    /// As [`Controller::reload`].
    ///
    /// ```no_run
    /// use deluxe::daemon::{AsyncController, DaemonError};
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() {
    /// match AsyncController::new(Worker::controller()).reload().await {
    ///     Ok(()) => println!("reloaded"),
    ///     Err(DaemonError::ReloadFailed { message, .. }) => eprintln!("kept the old: {message}"),
    ///     Err(error) => eprintln!("{error}"),
    /// }
    /// # }
    /// ```
    pub async fn reload(&self) -> Result<(), DaemonError> {
        self.blocking(Controller::reload).await
    }

    /// [`Controller::signal_user1`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::signal_user1`].
    ///
    /// ```no_run
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncController::new(Worker::controller()).signal_user1().await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal_user1(&self) -> Result<(), DaemonError> {
        self.blocking(Controller::signal_user1).await
    }

    /// [`Controller::signal_user2`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::signal_user2`].
    ///
    /// ```no_run
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncController::new(Worker::controller()).signal_user2().await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal_user2(&self) -> Result<(), DaemonError> {
        self.blocking(Controller::signal_user2).await
    }

    /// [`Controller::status`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::status`].
    ///
    /// ```
    /// use deluxe::daemon::{AsyncController, Status};
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), deluxe::daemon::DaemonError> {
    /// let controller = Worker::controller().configure(|c| c.pidfile("/nonexistent/w.pid"));
    /// assert_eq!(AsyncController::new(controller).status().await?, Status::Stopped);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status, DaemonError> {
        self.blocking(Controller::status).await
    }

    /// [`Controller::pid`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Controller::pid`].
    ///
    /// ```
    /// use deluxe::daemon::AsyncController;
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), deluxe::daemon::DaemonError> {
    /// let controller = Worker::controller().configure(|c| c.pidfile("/nonexistent/w.pid"));
    /// assert_eq!(AsyncController::new(controller).pid().await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn pid(&self) -> Result<Option<Pid>, DaemonError> {
        self.blocking(Controller::pid).await
    }
}

/// An [`Instance`] whose calls are futures: the same names, the same errors, each run on
/// tokio's blocking pool.
///
/// ```no_run
/// use deluxe::daemon::{AsyncInstance, Config, Instance};
/// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
/// for shard in 0..4 {
///     let config = Config::new(format!("/run/shards/{shard}.pid"));
///     let instance = AsyncInstance::new(Instance::new(config));
///     instance.reload().await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncInstance {
    instance: Instance,
}

impl From<Instance> for AsyncInstance {
    fn from(instance: Instance) -> Self {
        Self::new(instance)
    }
}

impl AsyncInstance {
    /// The async form of `instance`.
    ///
    /// ```
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// let instance = AsyncInstance::new(Instance::new(Config::new("/run/w.pid")));
    /// assert_eq!(instance.instance().config().pidfile, std::path::Path::new("/run/w.pid"));
    /// ```
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }

    /// The blocking instance: its settings.
    ///
    /// ```
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// let instance = AsyncInstance::from(Instance::new(Config::new("/run/w.pid")));
    /// println!("pidfile: {}", instance.instance().config().pidfile.display());
    /// ```
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// Runs `call` on a clone of the blocking instance, on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Instance) -> Result<T, DaemonError> + Send + 'static,
    ) -> Result<T, DaemonError> {
        blocking(self.instance.clone(), call).await
    }

    /// [`Instance::stop`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Instance::stop`].
    ///
    /// ```no_run
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncInstance::new(Instance::new(Config::new("/run/shards/2.pid"))).stop().await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop(&self) -> Result<StopOutcome, DaemonError> {
        self.blocking(Instance::stop).await
    }

    /// [`Instance::reload`], as a future: resolves once the daemon said how its reload went.
    ///
    /// # Errors
    ///
    /// As [`Instance::reload`].
    ///
    /// ```no_run
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncInstance::new(Instance::new(Config::new("/run/shards/2.pid"))).reload().await?;
    /// # Ok(()) }
    /// ```
    pub async fn reload(&self) -> Result<(), DaemonError> {
        self.blocking(Instance::reload).await
    }

    /// [`Instance::signal_user1`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Instance::signal_user1`].
    ///
    /// ```no_run
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncInstance::new(Instance::new(Config::new("/run/shards/2.pid"))).signal_user1().await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal_user1(&self) -> Result<(), DaemonError> {
        self.blocking(Instance::signal_user1).await
    }

    /// [`Instance::signal_user2`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Instance::signal_user2`].
    ///
    /// ```no_run
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// # async fn example() -> Result<(), deluxe::daemon::DaemonError> {
    /// AsyncInstance::new(Instance::new(Config::new("/run/shards/2.pid"))).signal_user2().await?;
    /// # Ok(()) }
    /// ```
    pub async fn signal_user2(&self) -> Result<(), DaemonError> {
        self.blocking(Instance::signal_user2).await
    }

    /// [`Instance::status`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Instance::status`].
    ///
    /// ```
    /// use deluxe::daemon::{AsyncInstance, Config, Instance, Status};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), deluxe::daemon::DaemonError> {
    /// let instance = AsyncInstance::new(Instance::new(Config::new("/nonexistent/w.pid")));
    /// assert_eq!(instance.status().await?, Status::Stopped);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<Status, DaemonError> {
        self.blocking(Instance::status).await
    }

    /// [`Instance::pid`], as a future.
    ///
    /// # Errors
    ///
    /// As [`Instance::pid`].
    ///
    /// ```
    /// use deluxe::daemon::{AsyncInstance, Config, Instance};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), deluxe::daemon::DaemonError> {
    /// let instance = AsyncInstance::new(Instance::new(Config::new("/nonexistent/w.pid")));
    /// assert_eq!(instance.pid().await?, None);
    /// # Ok(()) }
    /// ```
    pub async fn pid(&self) -> Result<Option<Pid>, DaemonError> {
        self.blocking(Instance::pid).await
    }
}
