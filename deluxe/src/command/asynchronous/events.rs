//! The async forms on Unix, event-driven: a call is driven by whoever polls its future (or
//! its [`AsyncRunning`](super::AsyncRunning) handle), with no thread of its own.
//!
//! Each poll turns the call's loop once without waiting ([`Running::step`]); then the
//! descriptors that loop watches (its pipes and, on Linux, its children's pidfds) wait in
//! tokio's reactor, registered through duplicates ([`AsyncFd`]), and its next wake time (the
//! deadline, the end of the linger, or a short exit-check tick where there are no pidfds) in a
//! tokio timer. A termination (a time limit, [`Engine::kill`], a drop) runs the synchronous
//! path's own code, [`Running::kill`] (`SIGTERM` to the tree, the grace, `SIGKILL`), on tokio's
//! blocking pool: it blocks up to the grace, so a thread is taken only while it runs.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::super::running::Progress;
use super::super::{CommandError, Output, Running};
use super::joined;

/// A call in progress on tokio: the [`Running`] it drives and what it waits on.
pub(super) struct Engine {
    state: State,
    watched: Vec<Watched>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

enum State {
    /// Driven by polls.
    Idle(Box<Running>),
    /// Being terminated on the blocking pool; driven again once that is done.
    Killing(JoinHandle<Box<Running>>),
    /// Waited for (or given away to be dropped).
    Gone,
}

/// One descriptor the loop watches, duplicated and registered with tokio's reactor.
struct Watched {
    /// The loop's own descriptor (the key: the loop opens none after the start).
    source: RawFd,
    events: PollFlags,
    fd: AsyncFd<OwnedFd>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle(running) => format!("{running:?}"),
            State::Killing(_) => "Killing".to_owned(),
            State::Gone => "Gone".to_owned(),
        };
        f.debug_struct("Engine")
            .field("state", &state)
            .field("watched", &self.watched.len())
            .finish()
    }
}

impl Engine {
    pub(super) fn new(running: Running) -> Result<Self, CommandError> {
        Ok(Self {
            state: State::Idle(Box::new(running)),
            watched: Vec::new(),
            timer: None,
        })
    }

    /// Starts terminating the call at once, on the blocking pool (see [`Running::kill`]);
    /// the next poll waits for it to be done.
    pub(super) fn kill(&mut self) {
        if let State::Idle(running) = std::mem::replace(&mut self.state, State::Gone) {
            // Our duplicates go too: a program reading its input sees its end.
            self.watched.clear();
            self.state = kill(running);
        }
    }

    pub(super) fn poll_line(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<String, CommandError>>> {
        loop {
            match &mut self.state {
                State::Idle(running) => {
                    if let Some(answer) = running.imp.buffered_line() {
                        return Poll::Ready(answer);
                    }
                }
                State::Gone => return Poll::Ready(None),
                State::Killing(_) => {}
            }
            if let Err(error) = ready!(self.poll_step(cx, true)) {
                return Poll::Ready(Some(Err(error)));
            }
        }
    }

    pub(super) async fn wait(mut self) -> Result<Output, CommandError> {
        while std::future::poll_fn(|cx| self.poll_step(cx, false)).await? != Progress::Done {}
        self.watched.clear();
        match std::mem::replace(&mut self.state, State::Gone) {
            // Everything has exited: reaping it does not block.
            State::Idle(running) => running.wait(),
            // Its termination never came back (the runtime shut down under it).
            State::Killing(_) | State::Gone => Err(io_error(io::Error::other(
                "the call's termination did not complete: the runtime is shutting down",
            ))),
        }
    }

    /// Turns the loop until it has a line (when `want_line`) or is done, waiting in between
    /// for what it watches.
    fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        want_line: bool,
    ) -> Poll<Result<Progress, CommandError>> {
        loop {
            let running = match &mut self.state {
                State::Idle(running) => running,
                State::Killing(task) => {
                    let killed = ready!(Pin::new(task).poll(cx));
                    self.state = State::Gone;
                    self.state = State::Idle(joined(killed.map(Ok))?);
                    continue;
                }
                State::Gone => return Poll::Ready(Ok(Progress::Done)),
            };
            let progress = running.imp.step(want_line)?;
            if running.imp.take_deferred_kill() {
                self.kill();
                continue;
            }
            // Before anything else, so that a pipe the loop closed is closed here too.
            watch(&mut self.watched, running).map_err(io_error)?;
            if progress != Progress::Idle {
                return Poll::Ready(Ok(progress));
            }
            match running.imp.wake_at(Instant::now()) {
                Some(at) => {
                    let at = tokio::time::Instant::from_std(at);
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    if timer.deadline() != at {
                        timer.as_mut().reset(at);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        continue;
                    }
                }
                None => self.timer = None,
            }
            if any_ready(&self.watched, cx) {
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Our duplicates first: the program sees the end of its input as it would otherwise.
        self.watched.clear();
        if let State::Idle(running) = std::mem::replace(&mut self.state, State::Gone) {
            // Dropping a `Running` terminates and reaps what is left of it (blocking up to
            // the grace): done on the blocking pool, starting now. A task being killed
            // (`Killing`) drops its `Running` itself when the kill is done.
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(running))),
                Err(_) => drop(running),
            }
        }
    }
}

/// Runs [`Running::kill`] on the blocking pool, starting now (in place outside a runtime).
fn kill(mut running: Box<Running>) -> State {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => State::Killing(runtime.spawn_blocking(move || {
            running.kill();
            running
        })),
        Err(_) => {
            running.kill();
            State::Idle(running)
        }
    }
}

/// Registers with tokio what the loop now watches, and lets go of what it no longer does.
fn watch(watched: &mut Vec<Watched>, running: &Running) -> io::Result<()> {
    let wanted = running.imp.watched();
    let same = |w: &Watched, fd: RawFd, events: PollFlags| w.source == fd && w.events == events;
    watched.retain(|w| {
        wanted
            .iter()
            .any(|(fd, events)| same(w, fd.as_raw_fd(), *events))
    });
    for (fd, events) in wanted {
        if watched.iter().any(|w| same(w, fd.as_raw_fd(), events)) {
            continue;
        }
        let interest = if events.contains(PollFlags::POLLOUT) {
            Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let duplicate = fd.try_clone_to_owned()?;
        let registered = super::super::sys::register(duplicate, interest)?;
        watched.push(Watched {
            source: fd.as_raw_fd(),
            events,
            fd: registered,
        });
    }
    Ok(())
}

/// Whether a watched descriptor is ready now; otherwise each is set to wake this task.
/// tokio's readiness can be stale (the loop read through its own descriptor): one that
/// `poll` says is not ready is cleared, so that only a new event wakes the task.
fn any_ready(watched: &[Watched], cx: &mut Context<'_>) -> bool {
    for w in watched {
        loop {
            let polled = if w.events.contains(PollFlags::POLLOUT) {
                w.fd.poll_write_ready(cx)
            } else {
                w.fd.poll_read_ready(cx)
            };
            let mut guard = match polled {
                Poll::Pending => break,
                Poll::Ready(Ok(guard)) => guard,
                // The loop's own poll reports the failure.
                Poll::Ready(Err(_)) => return true,
            };
            let mut fds = [PollFd::new(w.fd.get_ref().as_fd(), w.events)];
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Ok(0) => guard.clear_ready(),
                _ => return true,
            }
        }
    }
    false
}

fn io_error(error: io::Error) -> CommandError {
    CommandError::Io {
        program: std::path::PathBuf::new(),
        error,
    }
}
