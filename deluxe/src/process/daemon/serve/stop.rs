//! The stop state `run` sees: whether the daemon was asked to stop, when the grace ends, and
//! the waits on it ([`stop_requested`], [`stop_deadline`], [`wait_for_stop`], `stopped`).
//!
//! The signal thread sets it (see [`runtime`](super::runtime)); `run` and the hooks read it.
//! It is made once per daemon process, as the daemon is ready, and lives until the process
//! exits: before then (in `setup`) the signal handler's note is the request.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::super::sys;
use super::handler::stop_received;

/// Whether the daemon has been asked to stop, shared with `run` through [`stop_requested`]
/// and [`wait_for_stop`].
pub(super) struct StopState {
    requested: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
    /// When the stop grace ends: set as the stop is taken, when the grace is bounded.
    grace_ends: Mutex<Option<Instant>>,
}

/// The daemon's stop state; unset outside a daemon. Set once, in the daemon process, as it
/// starts serving; it lives until the process exits.
static STOP: OnceLock<StopState> = OnceLock::new();

fn stop_state() -> Option<&'static StopState> {
    STOP.get()
}

impl StopState {
    /// The daemon's stop state, made as it starts serving (once: serving ends the process).
    pub(super) fn install() -> &'static Self {
        STOP.get_or_init(|| Self {
            requested: AtomicBool::new(false),
            lock: Mutex::new(()),
            changed: Condvar::new(),
            grace_ends: Mutex::new(None),
        })
    }

    /// Records when the grace ends, before the stop is requested: `stop_deadline` has it as
    /// soon as `run` can learn of the stop.
    pub(super) fn set_grace_ends(&self, deadline: Option<Instant>) {
        *self
            .grace_ends
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = deadline;
    }

    /// Asks `run` to stop: wakes [`wait_for_stop`] and `stopped`.
    pub(super) fn request(&self) {
        self.requested.store(true, Ordering::Release);
        // A waiter in `wait_for_stop` checks the flag holding the lock and releases it only by
        // waiting: once this thread has taken and released the lock after setting the flag,
        // every waiter either saw the flag or is waiting and is woken below. Notifying with the
        // lock released saves the woken thread a second sleep on it.
        drop(lock(&self.lock));
        self.changed.notify_all();
        #[cfg(feature = "tokio")]
        stop_notify().notify_waiters();
    }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this daemon has been asked to stop (`SIGTERM` or `SIGINT`, `run` returning, or a
/// panic in a hook; `SIGHUP` is a reload, not a stop). Also true in
/// [`setup`](super::super::Daemon::setup) once a stop signal has arrived: a long `setup` may give
/// up early, and the start fails with [`DaemonError::StoppedDuringSetup`] anyway. Always
/// `false` outside a daemon.
///
/// [`DaemonError::StoppedDuringSetup`]: super::super::DaemonError::StoppedDuringSetup
///
/// ```no_run
/// use deluxe::process::daemon;
///
/// # fn do_some_work() {}
/// // In `Daemon::run`:
/// while !daemon::stop_requested() {
///     do_some_work();
/// }
/// ```
pub fn stop_requested() -> bool {
    match stop_state() {
        Some(state) => state.requested.load(Ordering::Acquire),
        // Before "ready" (in `setup`), the handler's note is the request.
        None => stop_received().is_some(),
    }
}

/// When the stop grace ends: the instant by which `run` should have returned, once the daemon
/// was asked to stop. After it the daemon runs `atexit` and exits whether `run` returned or not
/// (see [`Config::stop_grace`](super::super::Config::stop_grace)), so a `run` that drains open
/// connections gives them what is left until then. `None` before a stop is requested, outside a
/// daemon, and when the grace has no end (`stop_grace(Duration::MAX)`).
///
/// ```no_run
/// use std::time::{Duration, Instant};
/// use deluxe::process::daemon;
///
/// # fn finish_open_connections(_: Duration) {}
/// // In `Daemon::run`, once `wait_for_stop` said the daemon is stopping:
/// let left = daemon::stop_deadline()
///     .map_or(Duration::from_secs(5), |ends| ends.saturating_duration_since(Instant::now()));
/// finish_open_connections(left);
/// ```
pub fn stop_deadline() -> Option<Instant> {
    let state = stop_state()?;
    if !state.requested.load(Ordering::Acquire) {
        return None;
    }
    *state
        .grace_ends
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sleeps for `timeout`, waking up early if the daemon is asked to stop; returns whether it
/// was. `Duration::MAX` waits for the stop request however long. Outside a daemon it just
/// sleeps and returns `false`.
///
/// ```no_run
/// use std::time::Duration;
/// use deluxe::process::daemon;
///
/// // In `Daemon::run`: a tick a second until `stop`.
/// while !daemon::wait_for_stop(Duration::from_secs(1)) {
///     println!("tick");
/// }
/// ```
pub fn wait_for_stop(timeout: Duration) -> bool {
    let Some(state) = stop_state() else {
        std::thread::sleep(timeout);
        return false;
    };
    let deadline = sys::deadline_after(timeout);
    let mut guard = lock(&state.lock);
    while !state.requested.load(Ordering::Acquire) {
        guard = match deadline {
            None => state
                .changed
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(_) => {
                let left = sys::time_left(deadline);
                if left.is_zero() {
                    return false;
                }
                state
                    .changed
                    .wait_timeout(guard, left)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
        };
    }
    true
}

/// What [`stopped`] waits on: notified when the stop is requested.
#[cfg(feature = "tokio")]
fn stop_notify() -> &'static tokio::sync::Notify {
    static NOTIFY: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    NOTIFY.get_or_init(tokio::sync::Notify::new)
}

/// Completes when this daemon is asked to stop: the async form of [`wait_for_stop`], for a
/// `run` that serves on tokio. It parks no thread (no `spawn_blocking`), so a `run` that
/// returns, or fails, while it is pending ends at once, and dropping it is free. Outside a
/// daemon it never completes.
///
/// ```no_run
/// use deluxe::process::daemon;
///
/// # async fn serve(listener: tokio::net::TcpListener) {
/// // In `run`, on a runtime built there (after the fork).
/// loop {
///     tokio::select! {
///         () = daemon::stopped() => break,
///         accepted = listener.accept() => {
///             let Ok((socket, _)) = accepted else { continue };
///             tokio::spawn(async move { let _ = socket; /* serve it */ });
///         }
///     }
/// }
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn stopped() {
    let notify = stop_notify();
    loop {
        let notified = notify.notified();
        let mut notified = std::pin::pin!(notified);
        // Registered before the flag is checked: a stop requested in between still wakes it.
        notified.as_mut().enable();
        if stop_requested() {
            return;
        }
        notified.await;
    }
}
