//! Helpers shared by the integration tests.
#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::Command as StdCommand;
use std::time::Duration;

/// The account `.ci/run` creates for tests that run commands as another user: a real user
/// with `/bin/bash`.
pub const TEST_USER: &str = "deluxe-user";
/// A second account `.ci/run` creates, with a `nologin` shell.
pub const NOLOGIN_USER: &str = "deluxe-nologin";
/// A system account `.ci/run` creates (UID below `UID_MIN`) with `/bin/bash`.
pub const SYSTEM_USER: &str = "deluxe-sys";

/// Whether the machine has what a test needs (`sudo`, the test accounts, root). Under CI the
/// answer must be yes: `.ci/run` installs it all, so a missing piece fails the test instead of
/// skipping it. Elsewhere the test is skipped with a message saying how to set it up.
pub fn has_sudo_setup(test: &str) -> bool {
    let ready = nix::unistd::geteuid().is_root()
        && StdCommand::new("sudo")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
        && [TEST_USER, NOLOGIN_USER, SYSTEM_USER]
            .iter()
            .all(|user| nix::unistd::User::from_name(user).is_ok_and(|u| u.is_some()));
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI must provide root, sudo and the test accounts (see .ci/run)"
        );
        eprintln!("skipping {test}: needs root, sudo and the test accounts; run `bash .ci/run`");
    }
    ready
}

/// Waits until process `pid` has exited, and says whether it did within `bound` (a hang
/// guard, not a timing check). "Exited" is what the kernel reports through a pidfd: the process
/// may still be a zombie, waiting for its parent (or a slow init) to reap it.
pub fn wait_gone(pid: i32, bound: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // SAFETY: the descriptor was just returned by pidfd_open and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let millis = u16::try_from(bound.as_millis()).unwrap_or(u16::MAX);
    loop {
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)) {
            Ok(ready) => return ready > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => panic!("poll on pidfd: {errno}"),
        }
    }
}
