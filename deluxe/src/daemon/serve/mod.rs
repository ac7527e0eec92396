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
//! One file per concern: [`handler`] (the signal handler and its self-pipe), [`stop`] (the
//! stop state `run` sees), [`runtime`] (the signal and hook threads and the way out),
//! [`group`] (the daemon's process group as it exits), [`report`] (log lines, service-manager
//! notifications, panic text); here, [`serve`], which starts them. Their system calls are
//! safe wrappers in [`sys`](super::sys); only the signal handler's own calls stay beside it.
//!
//! [`inflight`]: super::inflight

mod group;
mod handler;
mod report;
mod runtime;
mod stop;

#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::AsFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::errno::Errno;

use super::error::hook_message;
use super::output;
use super::pidfile::Held;
use super::sys::{self, CPath};
use super::{Daemon, Step};
use handler::ask_to_stop;
use report::notify;
use runtime::Runtime;

pub(crate) use handler::{
    Receiver, clean_signals_in_forked_children, handled, install_receiver, stop_received,
    wake_signal_thread,
};
pub(crate) use report::{panic_message, say};
#[cfg(feature = "tokio")]
pub use stop::stopped;
pub use stop::{stop_deadline, stop_requested, wait_for_stop};

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
            sys::exit_now(1);
        }
        Some(Ok(watcher)) => watcher,
        None => None,
    };
    if let Some(Err(errno)) = output.map(output::start) {
        pidfile.remove();
        announce(Err((Step::LogPump, errno.into())));
        sys::exit_now(1);
    }
    let runtime = Runtime::new(daemon, pidfile, serving);
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
            sys::exit_now(1);
        }
        announce(Ok(()));
        notify(
            |message| runtime.say(message),
            &[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::MainPid(std::process::id()),
            ],
        );
        let failure = match catch_unwind(AssertUnwindSafe(|| runtime.daemon.run())) {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("run() failed: {}; stopping", hook_message(&*error))),
            Err(panic) => Some(format!(
                "run() panicked: {}; stopping",
                panic_message(&*panic)
            )),
        };
        if let Some(message) = failure {
            say(log::Level::Error, &message);
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
