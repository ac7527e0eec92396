//! What the macros' expansions name. Not public API: no stability promise.

pub use crate::process::{Command, CommandError};
pub use deluxe_macros::__command;

/// The value `command!` stands for when it reports a compile error, so that the error is the
/// only one the user sees. Never called: the crate that uses it does not compile.
pub fn invalid_command() -> Result<Command, CommandError> {
    unreachable!("`command!` reported a compile error")
}

/// Makes controllers in this process signal with `kill` and wait on the pidfile lock, as
/// they do where pidfds are missing, so that tests exercise that path on Linux too.
pub fn use_portable_signalling() {
    crate::process::daemon::force_portable();
}
