//! The forked daemon's own bound on its start. The controller kills a daemon that is not
//! ready within the start timeout ([`Config::start_timeout`](super::Config#structfield.start_timeout));
//! a controller that is gone (killed while `setup` hangs) kills nothing, and the daemon would
//! hang for ever: at a restart, the old daemon would wait for it too, answering every other
//! restart [`RestartInProgress`](super::DaemonError::RestartInProgress). So the daemon bounds
//! itself with the same timeout, counted from its fork and one [`MARGIN`] later (a living
//! controller ends the start first and says `StartTimeout`), and ends as the controller would
//! end it: `SIGKILL` to its process group. It first says so on the readiness pipe, so that a
//! controller that was only late (stopped, starved of CPU) still says `StartTimeout`, not
//! `DiedBeforeReady`.
//!
//! The bound's state is its start's own, not a `static`: a daemon that a ready daemon starts
//! (a fork of it) has a bound of its own.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::readiness::Report;
use super::sys;
use crate::time;

/// How much later than the controller the daemon ends a start that outlasted its timeout.
const MARGIN: Duration = Duration::from_secs(1);

/// How long the daemon that ends its start waits for its last log line to be written.
const SAY_WAIT: Duration = Duration::from_millis(500);

/// Whether the daemon got to ready, and what tells the bound's thread it changed.
type State = (Mutex<bool>, Condvar);

/// The bound's state and thread, which stops waiting once the daemon is ready.
pub(crate) struct Bound(Option<(Arc<State>, JoinHandle<()>)>);

fn ready(state: &State) -> MutexGuard<'_, bool> {
    state.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// In the forked daemon, as its `setup` begins (the first point where it may start a
/// thread): a thread that ends the daemon if it is not ready within `timeout` (and the
/// margin), after saying so on `report`, the readiness pipe. A timeout too long for the clock
/// sets no bound, as in the controller.
pub(crate) fn arm(timeout: Duration, report: &Arc<OwnedFd>) -> Bound {
    let Some(deadline) = timeout.checked_add(MARGIN).and_then(time::deadline_after) else {
        return Bound(None);
    };
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let (waited, report) = (Arc::clone(&state), Arc::clone(report));
    // A thread that cannot start leaves the bound to the controller, as before.
    let thread = std::thread::Builder::new()
        .name("deluxe-start-bound".into())
        .spawn(move || {
            let mut ready = ready(&waited);
            while !*ready {
                let left = time::time_left(Some(deadline));
                if left.is_zero() {
                    // Under the lock: `disarm` cannot say ready meanwhile.
                    end(timeout, &report);
                }
                ready = waited
                    .1
                    .wait_timeout(ready, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        });
    Bound(thread.ok().map(|thread| (state, thread)))
}

impl Bound {
    /// The daemon is ready (before it says so): the bound goes, and its thread with its share
    /// of the readiness pipe, so that the pipe closes when the daemon drops its own. Called
    /// once the bound cannot fire any more, a ready daemon is never ended by it.
    pub(crate) fn disarm(self) {
        if let Some((state, thread)) = self.0 {
            *ready(&state) = true;
            state.1.notify_all();
            let _ = thread.join();
        }
    }
}

fn end(timeout: Duration, report: &OwnedFd) -> ! {
    Report::TimedOut.send(report.as_fd());
    // The log line on a thread of its own, waited for at most `SAY_WAIT`: a `setup` that hangs
    // writing its output (the pipe to the log file is full: its pump starts after `setup`),
    // or holding the logger's lock, would block this thread too, and the start must end all
    // the same.
    let message = format!(
        "not ready within the start timeout ({timeout:?}): the start ends here, as the \
         controller that started it would end it"
    );
    let (said, heard) = std::sync::mpsc::channel();
    let saying = std::thread::Builder::new()
        .name("deluxe-start-bound-say".into())
        .spawn(move || {
            super::serve::say(log::Level::Error, &message);
            let _ = said.send(());
        });
    if saying.is_ok() {
        let _ = heard.recv_timeout(SAY_WAIT);
    }
    let (group, _) = sys::group_and_session(0);
    if group > 1 {
        sys::kill_group(group, libc::SIGKILL);
    }
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    sys::exit_now(1)
}
