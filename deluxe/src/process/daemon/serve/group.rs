//! The daemon's process group as it exits: its children, and theirs, are asked to end with
//! `SIGTERM`, given a bounded wait, and what is left gets `SIGKILL` (see [`terminate_group`]).

use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid, getsid, setpgid};

use super::super::sys;

/// What [`terminate_group`] left behind.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Survivors {
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
pub(super) fn terminate_group(wait: Duration) -> Survivors {
    // Only this process's ids; -1 if they cannot be read.
    let group = getpgid(None).map_or(-1, Pid::as_raw);
    let session = getsid(None).map_or(-1, Pid::as_raw);
    let me = std::process::id() as libc::pid_t;
    if group <= 0 || group != session || (group != me && sys::process_alive(group)) {
        return Survivors::None;
    }
    if group == me && sys::live_in_group(group) == Some(0) {
        return Survivors::None;
    }
    // Signalling this process's own group, which it is a member of.
    let _ = killpg(Pid::from_raw(group), Signal::SIGTERM);
    // setpgid(0, 0) only moves this process, not a session leader, to a group of its own; it
    // fails for the leader of its group, which stays.
    let left = group != me && setpgid(Pid::from_raw(0), Pid::from_raw(0)).is_ok();
    let deadline = sys::deadline_after(wait);
    let mut pause = Duration::from_millis(1);
    loop {
        // Signal 0 sends nothing; it asks whether the group has members.
        if left && kill(Pid::from_raw(-group), None) == Err(Errno::ESRCH) {
            return Survivors::None;
        }
        match sys::live_in_group(group) {
            // Gone, or zombies (which have exited).
            Some(0) => return Survivors::None,
            // No way to tell (no /proc): SIGTERM was sent; nothing to wait on.
            None => return Survivors::None,
            Some(_) if sys::time_left(deadline).is_zero() => {
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
