//! The forked daemon's own bound on its start. The controller kills a daemon that is not
//! ready within the start timeout ([`Config::start_timeout`](super::Config#structfield.start_timeout));
//! a controller that is gone (killed while `setup` hangs) kills nothing, and the daemon would
//! hang for ever: at a restart, the old daemon would wait for it too, answering every other
//! restart [`RestartInProgress`](super::DaemonError::RestartInProgress). So the daemon bounds
//! itself with the same timeout, counted from its fork and one [`MARGIN`] later (a living
//! controller, however late it wakes, ends the start first and says `StartTimeout`), and ends
//! as the controller would end it: `SIGKILL` to its process group.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::sys;
use crate::time;

/// How much later than the controller the daemon ends a start that outlasted its timeout.
const MARGIN: Duration = Duration::from_secs(1);

/// Whether the daemon got to ready: the bound's thread stops waiting.
static READY: Mutex<bool> = Mutex::new(false);
static CHANGED: Condvar = Condvar::new();

fn ready() -> MutexGuard<'static, bool> {
    READY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// In the forked daemon, as its `setup` begins (the first point where it may start a
/// thread): a thread that ends the daemon if it is not ready within `timeout` (and the
/// margin). A timeout too
/// long for the clock sets no bound, as in the controller.
pub(crate) fn arm(timeout: Duration) {
    let Some(deadline) = timeout.checked_add(MARGIN).and_then(time::deadline_after) else {
        return;
    };
    // A thread that cannot start leaves the bound to the controller, as before.
    let _ = std::thread::Builder::new()
        .name("deluxe-start-bound".into())
        .spawn(move || {
            let mut ready = ready();
            while !*ready {
                let left = time::time_left(Some(deadline));
                if left.is_zero() {
                    // Under the lock: `disarm` cannot say ready meanwhile.
                    end(timeout);
                }
                ready = CHANGED
                    .wait_timeout(ready, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        });
}

/// The daemon is ready (before it says so): the bound goes. Called once the bound cannot fire
/// any more, a ready daemon is never ended by it.
pub(crate) fn disarm() {
    *ready() = true;
    CHANGED.notify_all();
}

fn end(timeout: Duration) -> ! {
    super::serve::say(
        log::Level::Error,
        &format!(
            "not ready within the start timeout ({timeout:?}): the start ends here, as the \
             controller that started it would end it"
        ),
    );
    let (group, _) = sys::group_and_session(0);
    if group > 1 {
        sys::kill_group(group, libc::SIGKILL);
    }
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
    sys::exit_now(1)
}
