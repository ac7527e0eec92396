//! Life after "ready": the stop request, the thread that receives signals, the thread that
//! runs hooks, and the one way out.
//!
//! The signals the daemon reacts to have a minimal, async-signal-safe handler: it notes the
//! signal in an atomic bit set and writes a byte to a pipe (the self-pipe trick of
//! `signal-hook`). The signal thread does the work, and hooks run on their own ordinary
//! thread: they may do anything.
//!
//! `SIGTERM` and `SIGINT` ask the daemon to stop; `SIGHUP` reopens the log file and runs the
//! reload hook; `SIGUSR1` and `SIGUSR2` run theirs. On Linux none of them is blocked in any
//! thread, so every process the daemon starts, however it starts it (deluxe's `Command`,
//! std's, `system()`), begins with an empty mask; when the signal thread takes a stop it
//! first catches up with the signals other threads took before it (see [`inflight`]), so the
//! hooks of signals sent before the stop run before `atexit`. Elsewhere (no `/proc` to follow
//! other threads) `SIGUSR1` and `SIGUSR2` are blocked in every thread but the signal thread,
//! which takes those still pending with one system call; a process the daemon forks gets an
//! empty mask at once (`pthread_atfork`), one started through `posix_spawn` keeps them blocked.
//!
//! [`inflight`]: super::inflight

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};

use super::output;
use super::pidfile::{self, Held, Restore};
use super::reload::{Failure, Listener, Waiter};
use super::setup;
use super::sys::{self, CPath};
use super::{Daemon, Step};
use crate::process::time;

/// The signals that ask the daemon to stop.
pub(crate) const STOP_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// The signals that run hooks: the reload (`SIGHUP`, as logrotate and systemd's
/// `Type=notify-reload` send it) and the user signals.
const HOOK_SIGNALS: [Signal; 3] = [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGUSR2];

/// The signals only the signal thread takes where other threads cannot be followed (not
/// Linux): the user signals, which a stop signal pending at the same time would overtake (the
/// kernel delivers lower numbers first).
const USER_SIGNALS: [Signal; 2] = [Signal::SIGUSR1, Signal::SIGUSR2];

/// Whether every thread takes the daemon's signals (Linux), rather than the signal thread
/// alone taking the user signals.
const EVERY_THREAD_TAKES_SIGNALS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The signals unblocked in every thread.
fn unblocked_everywhere() -> SigSet {
    if EVERY_THREAD_TAKES_SIGNALS {
        handled()
    } else {
        signal_set(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP])
    }
}

fn signal_set(signals: &[Signal]) -> SigSet {
    let mut set = SigSet::empty();
    for signal in signals {
        set.add(*signal);
    }
    set
}

/// Every signal the daemon receives on its signal thread. They are blocked from the first step
/// of setting the daemon up until its handler is in place (see [`install_receiver`]).
pub(crate) fn handled() -> SigSet {
    let mut set = signal_set(&STOP_SIGNALS);
    for signal in HOOK_SIGNALS {
        set.add(signal);
    }
    set
}

/// Watches the pidfile's directory for removals and renames (Linux: inotify). Elsewhere a
/// removed pidfile is noticed by nobody: a second daemon could start.
#[cfg(any(target_os = "linux", target_os = "android"))]
struct Watcher(
    nix::sys::inotify::Inotify,
    nix::sys::inotify::WatchDescriptor,
);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Watcher {
    /// System calls only (`inotify_init1`, `inotify_add_watch` on a prepared C string). A
    /// watch that cannot be made (`EMFILE`: no descriptor left, or the user's inotify instances
    /// used up; `ENOSPC`: its watches used up) is an error: a daemon that would not notice its
    /// pidfile removed must not pass for ready.
    fn new(directory: &sys::CPath) -> Result<Option<Self>, Errno> {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
        let watch = inotify.add_watch(
            directory.c(),
            AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM,
        )?;
        Ok(Some(Self(inotify, watch)))
    }

    /// Removes the watch, once the daemon is stopping. The kernel frees a watch after a grace
    /// period (SRCU), which the process's exit would otherwise wait for, holding up `stop`;
    /// removed now, the watch is freed while the daemon shuts down.
    fn retire(&self) {
        let _ = self.0.rm_watch(self.1);
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Whether something was removed from or renamed in the directory since the last call.
    fn changed(&self) -> bool {
        self.0.read_events().is_ok_and(|events| !events.is_empty())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
struct Watcher(std::convert::Infallible);

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl Watcher {
    fn new(_directory: &sys::CPath) -> Result<Option<Self>, Errno> {
        Ok(None)
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self.0 {}
    }

    fn changed(&self) -> bool {
        match self.0 {}
    }

    fn retire(&self) {
        match self.0 {}
    }
}

/// The signals received and not yet taken by the signal thread: bit N for signal N.
static RECEIVED: AtomicU32 = AtomicU32::new(0);
/// The write end of the pipe that wakes the signal thread; -1 when there is none.
static WAKE: AtomicI32 = AtomicI32::new(-1);
/// The daemon's pid: a process forked from the daemon without `exec` inherits the handler,
/// and must not take the daemon's signals for its own.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// The signal handler. Async-signal-safe: atomic operations, a `write` to a non-blocking
/// pipe, `getpid`, and `errno` kept as it was.
extern "C" fn on_signal(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    let saved = Errno::last_raw();
    // SAFETY: getpid is async-signal-safe and cannot fail.
    let me = unsafe { libc::getpid() };
    if me == OWNER.load(Ordering::Relaxed) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; null is checked.
        let noted = super::inflight::enter(signal, unsafe { info.as_ref() }, me);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let noted = {
            let _ = info;
            true
        };
        if noted {
            RECEIVED.fetch_or(1 << signal, Ordering::AcqRel);
            wake_signal_thread();
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        super::inflight::leave();
    } else {
        // A child forked from the daemon without `exec`: the signal is its own, with its
        // default action, once this handler returns (the signal is blocked while it runs).
        // SAFETY: signal and raise are async-signal-safe; SIG_DFL installs no handler.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    Errno::set_raw(saved);
}

/// In a process forked from the daemon (in `setup` too): puts the daemon's signals back to
/// their default action and unblocks them (elsewhere than on Linux the daemon keeps the user
/// signals blocked in its threads), so that the child, and a program it `exec`s, starts with
/// an empty mask and dies of `SIGTERM`. Only in a child of the daemon: a failed start in the
/// foreground leaves the handler registered in the caller, which it must not change.
/// Async-signal-safe.
extern "C" fn clean_signals_in_child() {
    // SAFETY: getppid is async-signal-safe and cannot fail.
    if unsafe { libc::getppid() } != OWNER.load(Ordering::Relaxed) {
        return;
    }
    for signal in &handled() {
        // SAFETY: SIG_DFL installs no handler.
        unsafe { libc::signal(signal as libc::c_int, libc::SIG_DFL) };
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&handled()),
        None,
    );
}

/// From now on, every process forked from this one (through the C library's `fork`, which
/// runs `pthread_atfork` handlers) starts with the daemon's signals unblocked and at their
/// default action ([`clean_signals_in_child`]). Registered once per process, in the daemon
/// before `setup` (registering may allocate: the async-signal-safe steps are over).
pub(crate) fn clean_signals_in_forked_children() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a handler that only makes async-signal-safe calls.
        unsafe { libc::pthread_atfork(None, None, Some(clean_signals_in_child)) };
    });
}

/// The stop signal received since the handler was installed and not yet taken by the signal
/// thread: before "ready", a stop asked for while `setup` ran.
pub(crate) fn stop_received() -> Option<Signal> {
    let received = RECEIVED.load(Ordering::Acquire);
    STOP_SIGNALS
        .into_iter()
        .find(|signal| received & (1 << *signal as u32) != 0)
}

/// Writes a byte to the wake pipe. Async-signal-safe; a full pipe already wakes the thread.
fn wake_signal_thread() {
    let fd = WAKE.load(Ordering::Acquire);
    if fd >= 0 {
        // SAFETY: writing one byte from a valid buffer; a closed or full pipe only fails.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// The pipe the signal handler writes to, read by the signal thread.
pub(crate) struct Receiver {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Drop for Receiver {
    /// Only on a failed foreground start: the handler must not write to a closed pipe (the
    /// dispositions are put back too), and the caller's children are not the daemon's.
    fn drop(&mut self) {
        WAKE.store(-1, Ordering::Release);
        OWNER.store(0, Ordering::Release);
        RECEIVED.store(0, Ordering::Release);
    }
}

/// Installs the handler for [`handled`] signals and unblocks them in this thread (not Linux:
/// the user signals stay blocked; the signal thread unblocks them for itself).
/// Async-signal-safe (system calls only), for the step before `setup`: a signal that arrives
/// while `setup` runs is noted (a stop one makes the start fail, see [`stop_received`]; a
/// hook's runs once the daemon is ready), and what `setup` starts does not inherit a mask.
pub(crate) fn install_receiver() -> Result<Receiver, Errno> {
    let (read, write) = sys::pipe_nonblocking()?;
    RECEIVED.store(0, Ordering::Release);
    WAKE.store(write.as_raw_fd(), Ordering::Release);
    // SAFETY: getpid is async-signal-safe and cannot fail.
    OWNER.store(unsafe { libc::getpid() }, Ordering::Release);
    // While the handler runs, the other handled signals wait: one at a time.
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        handled(),
    );
    for signal in &handled() {
        // SAFETY: the handler only does async-signal-safe things (see `on_signal`).
        unsafe { nix::sys::signal::sigaction(signal, &action) }?;
    }
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
        Some(&unblocked_everywhere()),
        None,
    )?;
    Ok(Receiver {
        read,
        _write: write,
    })
}

/// Whether the daemon has been asked to stop, shared with `run` through [`stop_requested`]
/// and [`wait_for_stop`].
struct StopState {
    requested: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
    /// When the stop grace ends: set as the stop is taken, when the grace is bounded.
    grace_ends: Mutex<Option<Instant>>,
}

/// The daemon's stop state; null outside a daemon. Set once, in the daemon process, to a value
/// that lives until the process exits.
static STOP: AtomicPtr<StopState> = AtomicPtr::new(std::ptr::null_mut());

fn stop_state() -> Option<&'static StopState> {
    // SAFETY: the pointer is null or comes from `Box::leak` (see `serve`): valid forever.
    unsafe { STOP.load(Ordering::Acquire).as_ref() }
}

fn lock(mutex: &Mutex<()>) -> MutexGuard<'_, ()> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this daemon has been asked to stop (`SIGTERM` or `SIGINT`, `run` returning, or a
/// panic in a hook; `SIGHUP` is a reload, not a stop). Also true in
/// [`setup`](super::Daemon::setup) once a stop signal has arrived: a long `setup` may give
/// up early, and the start fails with [`DaemonError::StoppedDuringSetup`] anyway. Always
/// `false` outside a daemon.
///
/// [`DaemonError::StoppedDuringSetup`]: super::DaemonError::StoppedDuringSetup
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
/// (see [`Config::stop_grace`](super::Config::stop_grace)), so a `run` that drains open
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
    let deadline = time::deadline_after(timeout);
    let mut guard = lock(&state.lock);
    while !state.requested.load(Ordering::Acquire) {
        guard = match deadline {
            None => state
                .changed
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Some(_) => {
                let left = time::time_left(deadline);
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

/// How the running daemon behaves, from its settings.
pub(crate) struct Serving {
    /// How long `run` has after a stop request; `None`: forever.
    pub(crate) grace: Option<Duration>,
    /// The pidfile's directory, watched so that a removed pidfile is put back at once.
    pub(crate) pidfile_directory: Option<sys::CPath>,
    /// Whether `on_user1` is a reload, announced to a service manager.
    pub(crate) user1_reloads: bool,
    /// The log file, reopened on `SIGHUP` (after a rotation by rename).
    pub(crate) log_file: Option<CPath>,
    /// Where the daemon listens for reload requests, which it answers (see [`super::reload`]).
    pub(crate) reload_socket: Option<CPath>,
    /// Who the log file belongs to when the daemon runs as another user or group.
    pub(crate) log_owner: Option<(Option<libc::uid_t>, libc::gid_t)>,
    /// How long the daemon's process group has to exit after `SIGTERM` as the daemon exits,
    /// before `SIGKILL`; `None`: the children may outlive the daemon.
    pub(crate) children_wait: Option<Duration>,
}

/// Why `run` failed, when it returned an error (see [`run_failed`]).
static RUN_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Records that `run` returned this error: the daemon logs it as one line and exits with
/// status 1 (`#[daemon]`'s `run` returning `Err`).
pub(crate) fn run_failed(message: String) {
    *RUN_FAILURE.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
}

/// Says something about the daemon's life: through the `log` crate when the program set up a
/// logger (in the daemon, it writes wherever that logger writes), else as a line on the
/// daemon's stderr (its log file, or `/dev/null`). Either way with the daemon's pid.
pub(crate) fn say(level: log::Level, message: &str) {
    let pid = std::process::id();
    if log::log_enabled!(target: "deluxe", level) {
        log::log!(target: "deluxe", level, "daemon {pid}: {message}");
    } else {
        let _ = sys::write_all(
            sys::stderr(),
            format!("deluxe[{pid}]: {level}: {message}\n").as_bytes(),
        );
    }
}

/// Tells the service manager, if any (`NOTIFY_SOCKET` is set), how the daemon is doing:
/// the readiness protocol of systemd and of `start-stop-daemon --notify-await`.
fn notify(runtime_say: impl Fn(&str), states: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        runtime_say(&format!("cannot notify the service manager: {error}"));
    }
}

/// Hooks waiting to run. Signals arriving while a hook runs coalesce into one more call.
#[derive(Default)]
struct Pending {
    reload: bool,
    /// The controllers that asked for the reload due, waiting for its outcome.
    waiters: Vec<Waiter>,
    user1: bool,
    user2: bool,
    /// Whether the hook thread is running hooks right now.
    running: bool,
    /// Whether the signal thread has taken the stop request, and with it every user signal
    /// that arrived before it: from then on the hooks still due are known.
    stop: StopTaken,
}

/// Whether the signal thread has taken the stop request.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum StopTaken {
    #[default]
    No,
    Yes,
}

impl Pending {
    /// Whether no hook is due or running: `atexit` may run.
    fn settled(&self) -> bool {
        self.stop == StopTaken::Yes && !self.any() && !self.running
    }

    fn any(&self) -> bool {
        self.reload || self.user1 || self.user2
    }
}

/// What the daemon's threads share.
struct Runtime<'d, D> {
    daemon: &'d D,
    stop: &'static StopState,
    pending: Mutex<Pending>,
    posted: Condvar,
    /// Signalled when the hooks have settled (see [`Pending::settled`]).
    idle: Condvar,
    pidfile: Held<'d>,
    serving: &'d Serving,
    /// The reload socket; `None` when it could not be made (the daemon runs without it).
    listener: Option<Listener>,
    /// Whether the last reload failed (its failure is the service manager's status text).
    reload_failed: AtomicBool,
    exiting: AtomicBool,
    failed: AtomicBool,
    /// Whether the daemon exits because the grace expired before `run` returned.
    grace_expired: AtomicBool,
}

/// Runs the daemon: starts the signal thread, calls `announce` (with the error if it cannot be
/// started: the daemon has then removed its pidfile, and exits if `announce` returns), then
/// `run`, then `atexit`, and exits the process. The hook thread starts with the first `SIGUSR1` or `SIGUSR2`: a daemon
/// that never gets one has one thread fewer to create and to tear down.
pub(crate) fn serve<'d, D: Daemon>(
    daemon: &'d D,
    pidfile: Held<'d>,
    receiver: &Receiver,
    output: Option<output::Output>,
    serving: &'d Serving,
    announce: impl FnOnce(Result<(), (Step, std::io::Error)>),
) -> ! {
    let watcher = match serving.pidfile_directory.as_ref().map(Watcher::new) {
        Some(Err(errno)) => {
            pidfile.remove();
            announce(Err((Step::WatchPidfile, errno.into())));
            // SAFETY: _exit ends the process at once; nothing else may run.
            unsafe { libc::_exit(1) };
        }
        Some(Ok(watcher)) => watcher,
        None => None,
    };
    if let Some(Err(errno)) = output.map(output::start) {
        pidfile.remove();
        announce(Err((Step::LogPump, errno.into())));
        // SAFETY: _exit ends the process at once; nothing else may run.
        unsafe { libc::_exit(1) };
    }
    let stop: &'static StopState = Box::leak(Box::new(StopState {
        requested: AtomicBool::new(false),
        lock: Mutex::new(()),
        changed: Condvar::new(),
        grace_ends: Mutex::new(None),
    }));
    STOP.store(std::ptr::from_ref(stop).cast_mut(), Ordering::Release);
    let listener = serving.reload_socket.clone().and_then(listen);
    let runtime = Runtime {
        daemon,
        stop,
        pending: Mutex::new(Pending::default()),
        posted: Condvar::new(),
        idle: Condvar::new(),
        pidfile,
        serving,
        listener,
        reload_failed: AtomicBool::new(false),
        exiting: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        grace_expired: AtomicBool::new(false),
    };
    // The scope never ends: every path out of it exits the process, so the threads may borrow
    // the daemon and the runtime for as long as they run.
    std::thread::scope(|scope| {
        let started = std::thread::Builder::new()
            .name("deluxe-signals".into())
            .spawn_scoped(scope, || {
                runtime.receive_signals(scope, receiver, watcher.as_ref());
            });
        if let Err(error) = started {
            if let Some(listener) = &runtime.listener {
                listener.remove();
            }
            runtime.pidfile.remove();
            announce(Err((Step::SignalThread, error)));
            // SAFETY: _exit ends the process at once; nothing else may run.
            unsafe { libc::_exit(1) };
        }
        announce(Ok(()));
        notify(
            |message| runtime.say(message),
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::MainPid(std::process::id()),
            ],
        );
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| runtime.daemon.run())) {
            say(
                log::Level::Error,
                &format!("run() panicked: {}; stopping", panic_message(&*panic)),
            );
            runtime.failed.store(true, Ordering::Release);
        }
        let failure = RUN_FAILURE.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(message) = failure {
            say(
                log::Level::Error,
                &format!("run() failed: {message}; stopping"),
            );
            runtime.failed.store(true, Ordering::Release);
        }
        if !stop_requested() {
            // `run` ended on its own: a stop all the same, taken by the signal thread like any
            // other, so that the hooks already asked for run and the grace bounds them.
            ask_to_stop();
        }
        runtime.settle_hooks();
        runtime.finish()
    })
}

/// How long a reload socket that could not accept rests before it is tried again.
const ACCEPT_REST: Duration = Duration::from_secs(1);

/// The reload socket at `path`; `None`, with a warning, when it cannot be made: the daemon
/// then serves without it (reloads by `SIGHUP` go unanswered).
fn listen(path: CPath) -> Option<Listener> {
    Listener::bind(path.clone())
        .map_err(|error| {
            say(
                log::Level::Warn,
                &format!(
                    "cannot listen on reload socket {}: {error}; reloads will not be answered",
                    path.path().display()
                ),
            );
        })
        .ok()
}

impl<D: Daemon> Runtime<'_, D> {
    /// The signal thread: turns signals into a stop request or pending hooks, and after a stop
    /// request times the grace: if `run` has not returned by then, the daemon runs `atexit` and
    /// exits anyway.
    fn receive_signals<'scope>(
        &'scope self,
        scope: &'scope Scope<'scope, '_>,
        receiver: &Receiver,
        mut watcher: Option<&Watcher>,
    ) {
        // The one thread that takes the user signals.
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
            Some(&signal_set(&USER_SIGNALS)),
            None,
        );
        let mut deadline: Option<Instant> = None;
        let mut hook_thread = false;
        // A listener that could not accept (no descriptor left: `EMFILE`) stays readable:
        // it rests until then, out of the poll, rather than spin, and is tried again after.
        let mut resting: Option<Instant> = None;
        // Said once, until an accept works again.
        let mut accept_failed = false;
        loop {
            if self.exiting.load(Ordering::Acquire) {
                return;
            }
            if resting.is_some_and(|until| Instant::now() >= until) {
                resting = None;
            }
            let listener = self.listener.as_ref().filter(|_| resting.is_none());
            let left = time::time_left(deadline);
            let wait = left.min(time::time_left(resting));
            let mut fds = vec![receiver.read.as_fd()];
            fds.extend(watcher.map(Watcher::fd));
            fds.extend(listener.map(Listener::fd));
            let woken = !wait.is_zero() && sys::wait_readable_any(&fds, wait).unwrap_or(true);
            if !woken && time::time_left(deadline).is_zero() {
                self.give_up();
            }
            if let Some(watcher) = watcher
                && watcher.changed()
            {
                self.restore_pidfile();
            }
            sys::drain(receiver.read.as_fd());
            if let Some(socket) = listener {
                let mut waiters = Vec::new();
                if let Err(error) = socket.accept(&mut waiters) {
                    if !accept_failed {
                        self.say(&format!(
                            "cannot accept reload requests ({error}); trying again every \
                             {ACCEPT_REST:?}"
                        ));
                    }
                    accept_failed = true;
                    resting = Instant::now().checked_add(ACCEPT_REST);
                } else {
                    accept_failed = false;
                }
                // Once stopping, a request is hung up on unanswered ([`Unanswered::Closed`]).
                //
                // [`Unanswered::Closed`]: super::Unanswered::Closed
                if !waiters.is_empty() && !stop_requested() {
                    self.post(Signal::SIGHUP, waiters, scope, &mut hook_thread);
                }
            }
            let mut taken = RECEIVED.swap(0, Ordering::AcqRel);
            if STOP_SIGNALS
                .into_iter()
                .any(|signal| taken & (1 << signal as u32) != 0)
            {
                taken |= catch_up(deadline);
                taken |= RECEIVED.swap(0, Ordering::AcqRel);
            }
            let got = |signal: Signal| taken & (1 << signal as u32) != 0;
            // Hook signals first: one that arrived before a stop (or with it) has its hook
            // run before `atexit`.
            for signal in HOOK_SIGNALS {
                if got(signal) {
                    self.post(signal, Vec::new(), scope, &mut hook_thread);
                }
            }
            if !STOP_SIGNALS.into_iter().any(got) {
                continue;
            }
            if !stop_requested() {
                notify(
                    |message| self.say(message),
                    &[sd_notify::NotifyState::Stopping],
                );
            }
            // Stopping: the pidfile is not put back any more (the daemon removes it itself
            // as it exits), and the watch is freed meanwhile.
            if let Some(watcher) = watcher.take() {
                watcher.retire();
            }
            self.pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stop = StopTaken::Yes;
            self.idle.notify_all();
            if deadline.is_none()
                && let Some(grace) = self.serving.grace
            {
                // A grace too long for the clock: no deadline, as with none. Known before
                // `run` can learn of the stop, so `stop_deadline` has it then.
                deadline = time::deadline_after(grace);
                *self
                    .stop
                    .grace_ends
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = deadline;
            }
            self.request_stop();
        }
    }

    /// The pidfile's directory changed: puts the pidfile back if it was removed.
    fn restore_pidfile(&self) {
        let path = self.pidfile.path().to_string_lossy();
        match self.pidfile.restore() {
            Restore::InPlace => {}
            Restore::Restored => self.say(&format!("pidfile {path} was removed; restored it")),
            Restore::Lost(errno) => self.say(&format!(
                "pidfile {path} was removed or replaced and cannot be restored ({errno}); this \
                 daemon can no longer be reached through it"
            )),
        }
    }

    /// Marks the hook of a user signal due (with the controllers that wait for a reload's
    /// outcome) and wakes the hook thread, starting it with the first user signal.
    fn post<'scope>(
        &'scope self,
        signal: Signal,
        waiters: Vec<Waiter>,
        scope: &'scope Scope<'scope, '_>,
        hook_thread: &mut bool,
    ) {
        {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.waiters.extend(waiters);
            match signal {
                Signal::SIGHUP => pending.reload = true,
                Signal::SIGUSR1 => pending.user1 = true,
                _ => pending.user2 = true,
            }
        }
        self.posted.notify_one();
        if !*hook_thread {
            // Not Linux: the hook thread must not take user signals: it starts with them
            // blocked.
            let mut unblocked = SigSet::empty();
            let masked = !EVERY_THREAD_TAKES_SIGNALS
                && nix::sys::signal::pthread_sigmask(
                    nix::sys::signal::SigmaskHow::SIG_BLOCK,
                    Some(&signal_set(&USER_SIGNALS)),
                    Some(&mut unblocked),
                )
                .is_ok();
            let started = std::thread::Builder::new()
                .name("deluxe-hooks".into())
                .spawn_scoped(scope, || self.run_hooks());
            if masked {
                let _ = nix::sys::signal::pthread_sigmask(
                    nix::sys::signal::SigmaskHow::SIG_SETMASK,
                    Some(&unblocked),
                    None,
                );
            }
            *hook_thread = started.is_ok();
            if let Err(error) = started {
                // Late, but the hook must still run: here, at the cost of stop requests
                // waiting for it.
                self.say(&format!(
                    "cannot start the hook thread ({error}); running the hook on the signal thread"
                ));
                let due = self.take_pending();
                self.run_pending(due);
                self.idle.notify_all();
            }
        }
    }

    /// Waits until every hook due at the stop request has run, and a hook running then has
    /// returned. The grace still bounds the wait: when it expires the signal thread exits the
    /// daemon from under this wait.
    fn settle_hooks(&self) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !pending.settled() {
            pending = self
                .idle
                .wait(pending)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn request_stop(&self) {
        self.stop.requested.store(true, Ordering::Release);
        // A waiter in `wait_for_stop` checks the flag holding the lock and releases it only by
        // waiting: once this thread has taken and released the lock after setting the flag,
        // every waiter either saw the flag or is waiting and is woken below. Notifying with the
        // lock released saves the woken thread a second sleep on it.
        drop(lock(&self.stop.lock));
        self.stop.changed.notify_all();
        #[cfg(feature = "tokio")]
        stop_notify().notify_waiters();
    }

    /// The grace is over and `run` has not returned.
    fn give_up(&self) -> ! {
        self.grace_expired.store(true, Ordering::Release);
        self.say(&format!(
            "run() did not return within {:?} of the stop request; exiting",
            self.serving.grace.unwrap_or_default()
        ));
        self.finish()
    }

    /// The hook thread: runs hooks one at a time, as signals ask for them.
    fn run_hooks(&self) {
        loop {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            while !pending.any() {
                pending = self.posted.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            pending.running = true;
            drop(pending);
            let due = self.take_pending();
            self.run_pending(due);
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.running = false;
            if pending.settled() {
                self.idle.notify_all();
            }
        }
    }

    /// Which hooks are due, clearing them: signals that arrive while they run ask again.
    fn take_pending(&self) -> Due {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let due = Due {
            reload: pending.reload,
            waiters: std::mem::take(&mut pending.waiters),
            user1: pending.user1,
            user2: pending.user2,
        };
        pending.reload = false;
        pending.user1 = false;
        pending.user2 = false;
        due
    }

    fn run_pending(
        &self,
        Due {
            reload,
            waiters,
            user1,
            user2,
        }: Due,
    ) {
        if reload {
            let outcome = self.reload();
            for waiter in waiters {
                waiter.answer(&outcome);
            }
        }
        if user1 {
            let reloads = self.serving.user1_reloads;
            if reloads {
                let now = sd_notify::NotifyState::monotonic_usec_now();
                let mut states = vec![sd_notify::NotifyState::Reloading];
                states.extend(now.ok());
                notify(|message| self.say(message), &states);
            }
            let _ = self.call_hook("on_user1", || self.daemon.on_user1());
            if reloads {
                notify(
                    |message| self.say(message),
                    &[sd_notify::NotifyState::Ready],
                );
            }
        }
        if user2 {
            let _ = self.call_hook("on_user2", || self.daemon.on_user2());
        }
    }

    /// `SIGHUP` or a request on the reload socket: tells a service manager `RELOADING=1`,
    /// reopens the log file (a rotation may have renamed it), runs the reload hook, and says
    /// `READY=1`; returns the hook's error, or its panic, as the controllers who asked are
    /// told. A reload hook that fails is logged, is the service manager's status text
    /// (`STATUS=`, cleared by the next reload that works: `READY=1` cannot say "failed"), and
    /// the daemon keeps running (with its previous configuration, if the hook keeps it until
    /// the new one is valid); one that panics stops the daemon.
    fn reload(&self) -> Result<(), Failure> {
        let now = sd_notify::NotifyState::monotonic_usec_now();
        let mut states = vec![sd_notify::NotifyState::Reloading];
        states.extend(now.ok());
        notify(|message| self.say(message), &states);
        if let Some(path) = &self.serving.log_file {
            let reopened = setup::open_log(path.c(), self.serving.log_owner)
                .and_then(|log| output::reopen(log).map_err(|errno| (Step::LogFile, errno)));
            if let Err((_, errno)) = reopened {
                self.say(&format!(
                    "cannot reopen log file {}: {}; still writing to the previous one",
                    path.path().display(),
                    std::io::Error::from(errno)
                ));
            }
        }
        let mut failed = None;
        let panicked = self
            .call_hook("on_reload", || {
                failed = self.daemon.on_reload().err().map(|error| error.to_string());
            })
            .err();
        if let Some(message) = &failed {
            self.say(&format!("on_reload() failed: {message}; still running"));
        }
        // A panic was logged as it happened, and stops the daemon.
        let outcome = match (panicked, failed) {
            (Some(message), _) => Err(Failure::Panicked(message)),
            (None, Some(message)) => Err(Failure::Failed(message)),
            (None, None) => Ok(()),
        };
        let status = match &outcome {
            Err(failure) => {
                self.reload_failed.store(true, Ordering::Release);
                Some(format!("reload failed: {}", failure.message()))
            }
            Ok(()) if self.reload_failed.swap(false, Ordering::AcqRel) => Some(String::new()),
            Ok(()) => None,
        };
        let mut states = vec![sd_notify::NotifyState::Ready];
        states.extend(status.as_deref().map(sd_notify::NotifyState::Status));
        notify(|message| self.say(message), &states);
        outcome
    }

    /// Runs a hook. A hook that panics stops the daemon, as a panic in `run` does: the daemon
    /// is asked to stop (as by `SIGTERM`, with the same grace) and exits with status 1; the
    /// error says so.
    fn call_hook(&self, name: &str, hook: impl FnOnce()) -> Result<(), String> {
        catch_unwind(AssertUnwindSafe(hook)).map_err(|panic| {
            let message = format!("{name}() panicked: {}; stopping", panic_message(&*panic));
            say(log::Level::Error, &message);
            self.failed.store(true, Ordering::Release);
            // Through the signal thread, so that the grace applies as for any stop.
            ask_to_stop();
            message
        })
    }

    /// The one way out: `atexit` exactly once, the pidfile removed, the process exited.
    fn finish(&self) -> ! {
        if self.exiting.swap(true, Ordering::AcqRel) {
            // Another thread is already on its way out.
            loop {
                std::thread::park();
            }
        }
        // Lets the signal thread end now, while `atexit` runs, rather than be torn down by
        // the exit afterwards: the process is gone sooner.
        wake_signal_thread();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.daemon.atexit())) {
            say(
                log::Level::Error,
                &format!("atexit() panicked: {}", panic_message(&*panic)),
            );
            self.failed.store(true, Ordering::Release);
        }
        let survivors = self
            .serving
            .children_wait
            .map_or(Survivors::None, terminate_group);
        if self.grace_expired.load(Ordering::Acquire) {
            // For the controller's `stop`, which reads the file it holds open once the daemon
            // is gone: it tells a daemon that ran out of time from one whose `run` returned.
            self.pidfile.mark(pidfile::GRACE_EXPIRED);
        }
        // What the daemon wrote is in its log before the pidfile's lock says it is gone.
        output::flush();
        if let Some(listener) = &self.listener {
            listener.remove();
        }
        self.pidfile.remove();
        if survivors != Survivors::None {
            say(
                log::Level::Warn,
                "processes of the daemon's group ignored SIGTERM; sending SIGKILL",
            );
        }
        match survivors {
            Survivors::None => {}
            Survivors::InGroup(group) => {
                // SAFETY: the group's members, still there a moment ago, keep its id; if they
                // have just gone, the signal finds nobody.
                unsafe { libc::killpg(group, libc::SIGKILL) };
            }
            Survivors::InOwnGroup => {
                // The last act: the group's processes that ignored SIGTERM, and this one. The
                // SIGKILL ends this process too: its output reaches the log file first.
                output::drain();
                // SAFETY: killpg(0, ..) signals this process's own group, which this process,
                // still alive, keeps from being reused.
                unsafe { libc::killpg(0, libc::SIGKILL) };
            }
        }
        std::process::exit(i32::from(self.failed.load(Ordering::Acquire)))
    }

    /// A warning about the daemon's life (see [`say`]).
    fn say(&self, message: &str) {
        say(log::Level::Warn, message);
    }
}

/// Asks for a stop the way a `SIGTERM` from outside does: through the signal thread, which
/// takes the user signals sent before it and times the grace.
fn ask_to_stop() {
    // `kill`, not `raise`: a signal directed at this thread, which blocks it, would stay
    // pending.
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGTERM);
}

/// On a stop: takes the signals sent before it that are still pending, and waits for those
/// other threads took to be noted; returns the bits of those taken here. `deadline` (the
/// grace's) bounds the wait.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn catch_up(deadline: Option<Instant>) -> u32 {
    super::inflight::catch_up(&handled(), deadline)
}

/// On a stop: a user signal sent before it is noted already or still pending, for this
/// thread alone (the only one that does not block the user signals): returning from any
/// system call hands it to the handler.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn catch_up(_deadline: Option<Instant>) -> u32 {
    // SAFETY: sigset_t is plain data, filled by sigpending below.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigpending fills a valid sigset_t; the call is what matters.
    unsafe { libc::sigpending(&raw mut pending) };
    0
}

/// What [`terminate_group`] left behind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Survivors {
    /// Nothing: the group's other processes are gone, or there were none.
    None,
    /// Processes that ignored `SIGTERM` in the daemon's former group, which it has left.
    InGroup(libc::pid_t),
    /// Processes that ignored `SIGTERM` in the group the daemon leads (and cannot leave).
    InOwnGroup,
}

/// Ends the processes of the daemon's own process group (its children, theirs, ...) as the
/// daemon exits: `SIGTERM`, then a wait of up to `wait` for them to exit.
///
/// The group is the daemon's own when it is its session's group and its leader is the daemon
/// itself (a daemon a supervisor started with `setsid`) or gone (a forked daemon, whose
/// intermediate process made the session and exited); in the foreground of a shell the group
/// is the shell's job, and under a container's init (deluxe's own) the init's: both are left
/// alone. The daemon signals its group while it is still a member, so the group id cannot
/// have been reused (`SIGTERM` reaches this process too, whose handler only notes it).
///
/// A forked daemon then leaves the group (`setpgid(0, 0)`): whether anything is left in it is
/// one `kill(-group, 0)` (`ESRCH`: nothing), with no look through `/proc` unless something
/// is (zombies, which have exited, keep a group but do not count). A daemon that leads its
/// group cannot leave it, and looks through `/proc` first.
fn terminate_group(wait: Duration) -> Survivors {
    // SAFETY: getpgid and getsid only read this process's ids.
    let (group, session) = unsafe { (libc::getpgid(0), libc::getsid(0)) };
    let me = std::process::id() as libc::pid_t;
    if group <= 0 || group != session || (group != me && sys::process_alive(group)) {
        return Survivors::None;
    }
    if group == me && sys::live_in_group(group) == Some(0) {
        return Survivors::None;
    }
    // SAFETY: signalling this process's own group, which it is a member of.
    unsafe { libc::killpg(group, libc::SIGTERM) };
    // SAFETY: setpgid(0, 0) only moves this process, not a session leader, to a group of its
    // own; it fails for the leader of its group, which stays.
    let left = group != me && unsafe { libc::setpgid(0, 0) } == 0;
    let deadline = time::deadline_after(wait);
    let mut pause = Duration::from_millis(1);
    loop {
        // SAFETY: signal 0 sends nothing; it asks whether the group has members.
        if left && unsafe { libc::kill(-group, 0) } == -1 && Errno::last() == Errno::ESRCH {
            return Survivors::None;
        }
        match sys::live_in_group(group) {
            // Gone, or zombies (which have exited).
            Some(0) => return Survivors::None,
            // No way to tell (no /proc): SIGTERM was sent; nothing to wait on.
            None => return Survivors::None,
            Some(_) if time::time_left(deadline).is_zero() => {
                return if left {
                    Survivors::InGroup(group)
                } else {
                    Survivors::InOwnGroup
                };
            }
            Some(_) => {
                // The group's processes are nobody's children here: there is nothing to wait
                // on but their disappearance.
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// The hooks due, taken from [`Pending`].
struct Due {
    reload: bool,
    waiters: Vec<Waiter>,
    user1: bool,
    user2: bool,
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}
