//! The running daemon's threads and what they share ([`Runtime`]): the signal thread, which
//! turns signals, reload requests and pidfile removals into a stop request or hooks due and
//! times the stop grace; the hook thread, which runs hooks one at a time on an ordinary
//! thread (they may do anything); and the one way out ([`Runtime::finish`]).

use std::os::fd::AsFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::Scope;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal, killpg};
use nix::unistd::Pid;

use super::super::error::hook_message;
use super::super::output;
use super::super::pidfile::{self, Held, Restore};
use super::super::reload::{Failure, Listener, Waiter};
use super::super::setup;
use super::super::sys::{self, CPath};
use super::super::{Daemon, Step};
use super::Serving;
use super::Watcher;
use super::group::{Survivors, terminate_group};
use super::handler::{
    EVERY_THREAD_TAKES_SIGNALS, HOOK_SIGNALS, RECEIVED, Receiver, STOP_SIGNALS, USER_SIGNALS,
    ask_to_stop, catch_up, signal_set, wake_signal_thread,
};
use super::report::{notify, panic_message, say};
use super::stop::{StopState, stop_requested};
use crate::time;

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
pub(super) struct Runtime<'d, D> {
    pub(super) daemon: &'d D,
    stop: &'static StopState,
    pending: Mutex<Pending>,
    posted: Condvar,
    /// Signalled when the hooks have settled (see [`Pending::settled`]).
    idle: Condvar,
    pub(super) pidfile: Held<'d>,
    serving: &'d Serving,
    /// The reload socket; `None` when it could not be made (the daemon runs without it).
    pub(super) listener: Option<Listener>,
    /// Whether the last reload failed (its failure is the service manager's status text).
    reload_failed: AtomicBool,
    exiting: AtomicBool,
    pub(super) failed: AtomicBool,
    /// Whether the daemon exits because the grace expired before `run` returned.
    grace_expired: AtomicBool,
}

impl<'d, D> Runtime<'d, D> {
    /// The shared state of a daemon that starts serving, with its reload socket if it has one.
    pub(super) fn new(daemon: &'d D, pidfile: Held<'d>, serving: &'d Serving) -> Self {
        Self {
            daemon,
            stop: StopState::install(),
            pending: Mutex::new(Pending::default()),
            posted: Condvar::new(),
            idle: Condvar::new(),
            pidfile,
            serving,
            listener: serving.reload_socket.clone().and_then(listen),
            reload_failed: AtomicBool::new(false),
            exiting: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            grace_expired: AtomicBool::new(false),
        }
    }
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
    pub(super) fn receive_signals<'scope>(
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
            let changed = watcher.is_some_and(Watcher::changed);
            if pidfile::take_reclaim() || changed {
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
                self.stop.set_grace_ends(deadline);
            }
            self.stop.request();
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
    pub(super) fn settle_hooks(&self) {
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
                failed = self
                    .daemon
                    .on_reload()
                    .err()
                    .map(|error| hook_message(&*error));
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
    pub(super) fn finish(&self) -> ! {
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
                // The group's members, still there a moment ago, keep its id; if they have just
                // gone, the signal finds nobody.
                let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
            }
            Survivors::InOwnGroup => {
                // The last act: the group's processes that ignored SIGTERM, and this one. The
                // SIGKILL ends this process too: its output reaches the log file first.
                output::drain();
                // killpg(0, ..) signals this process's own group, which this process, still
                // alive, keeps from being reused.
                let _ = killpg(Pid::from_raw(0), Signal::SIGKILL);
            }
        }
        std::process::exit(i32::from(self.failed.load(Ordering::Acquire)))
    }

    /// A warning about the daemon's life (see [`say`]).
    pub(super) fn say(&self, message: &str) {
        say(log::Level::Warn, message);
    }
}

/// The hooks due, taken from [`Pending`].
struct Due {
    reload: bool,
    waiters: Vec<Waiter>,
    user1: bool,
    user2: bool,
}
