//! What the macros' expansions name. Not public API: no stability promise.

pub use crate::command::{Command, CommandError};
#[cfg(unix)]
pub use crate::daemon::{Config, Controller, Daemon, HookError};
pub use core::time::Duration;
pub use deluxe_macros::__command;
#[cfg(unix)]
pub use std::os::fd::{AsFd, BorrowedFd};
pub use std::vec;
pub use std::vec::Vec;

/// The value `command!` stands for when it reports a compile error, so that the error is the
/// only one the user sees. Never called: the crate that uses it does not compile.
pub fn invalid_command() -> Result<Command, CommandError> {
    unreachable!("`command!` reported a compile error")
}

#[cfg(unix)]
/// Makes controllers in this process signal with `kill` and wait on the pidfile lock, as
/// they do where pidfds are missing, so that tests exercise that path on Linux too.
pub fn use_portable_signalling() {
    crate::daemon::use_portable_signalling();
}

#[cfg(unix)]
/// The settings `#[daemon(..)]` on a struct records; the `#[daemon]` impl block reads them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `#[deluxe::daemon(..)]` attribute",
    label = "the `#[daemon]` impl block needs the settings of `{Self}`",
    note = "add `#[deluxe::daemon]` (or `#[deluxe::daemon(pidfile = \"/run/NAME.pid\")]`) to the struct `{Self}`"
)]
pub trait DaemonSettings {
    /// The settings written in the attribute, defaults for the rest.
    fn settings() -> Config;

    /// The fields marked `#[keep_open]`.
    fn keep_open(&self) -> Vec<BorrowedFd<'_>> {
        Vec::new()
    }
}

#[cfg(unix)]
/// Implemented by the `#[daemon]` impl block: the struct's settings are read only through it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has `#[deluxe::daemon]` on its struct but no `#[deluxe::daemon]` impl block",
    label = "the settings of `{Self}` are read by a `#[deluxe::daemon] impl {Self}` block only",
    note = "add `#[deluxe::daemon]` to an `impl {Self}` block that has `fn run(&self)`; to implement `Daemon` by hand instead, remove `#[deluxe::daemon]` from the struct and return the settings from `Daemon::config` (a hand-written impl would ignore them)"
)]
pub trait DaemonImplBlock {}

#[cfg(unix)]
/// What a `#[keep_open]` field must be: something that owns a descriptor.
#[diagnostic::on_unimplemented(
    message = "`#[keep_open]` on a field of type `{Self}`, which holds no descriptor",
    label = "`{Self}` does not implement `AsFd`",
    note = "mark only fields that own a descriptor (`File`, `TcpListener`, `OwnedFd`, ...); make other resources in `#[setup]`"
)]
pub trait KeepOpen {
    /// The descriptor.
    fn descriptor(&self) -> BorrowedFd<'_>;
}

#[cfg(unix)]
impl<T: AsFd> KeepOpen for T {
    fn descriptor(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

#[cfg(unix)]
/// What a `run`, `#[setup]` or `#[on_reload]` method may return: nothing, or a `Result` whose
/// error (`Display`) stops the daemon (run: atexit, status 1, the message in the log), makes
/// `start` fail (setup), or is logged when a reload fails. An error that has causes keeps them
/// ([`Outcome`] chooses); this impl takes the rest, by their `Display`.
#[diagnostic::on_unimplemented(
    message = "`run` or a hook returns `{Self}`, which a daemon cannot use",
    label = "return `()` or `Result<(), E>` where `E: Display`",
    note = "`run`, `#[setup]` and `#[on_reload]` return nothing, or a `Result` whose error stops the daemon (run), makes `start` fail (setup) or is logged (reload)"
)]
pub trait HookOutcome {
    /// The outcome as `Daemon::run`, `Daemon::setup` or `Daemon::on_reload` returns it.
    fn into_result(self) -> Result<(), HookError>;
}

#[cfg(unix)]
impl HookOutcome for () {
    fn into_result(self) -> Result<(), HookError> {
        Ok(())
    }
}

#[cfg(unix)]
impl<E: core::fmt::Display> HookOutcome for Result<(), E> {
    fn into_result(self) -> Result<(), HookError> {
        self.map_err(|error| HookError::from(error.to_string()))
    }
}

/// What `run` or a hook returned, for the expansion to choose how its error becomes a
/// [`HookError`]: an error with a `source()` chain keeps its causes, any other `Display` is its
/// text. The expansion writes `(&&outcome).deluxe_hook_kind().into_result(outcome)`: method
/// lookup tries [`ErrorKind`] (the error is a `std::error::Error`), then [`DerefKind`] (it
/// points to one: `Box<dyn Error>`, `anyhow::Error`), then [`PlainKind`] ([`HookOutcome`]).
/// The `#[daemon]` impl block is not generic, so the error's type is always known there.
#[cfg(unix)]
pub struct Outcome<T>(pub T);

/// The error is a `std::error::Error`: its message and causes.
#[cfg(unix)]
pub struct ErrorChain;

/// The error points to a `std::error::Error`: that error's message and causes.
#[cfg(unix)]
pub struct DerefChain;

/// Anything else: [`HookOutcome`].
#[cfg(unix)]
pub struct Plain;

/// Chooses [`ErrorChain`]; see [`Outcome`].
#[cfg(unix)]
pub trait ErrorKind {
    /// The choice.
    fn deluxe_hook_kind(&self) -> ErrorChain {
        ErrorChain
    }
}

#[cfg(unix)]
impl<E: std::error::Error> ErrorKind for &Outcome<Result<(), E>> {}

/// Chooses [`DerefChain`]; see [`Outcome`].
#[cfg(unix)]
pub trait DerefKind {
    /// The choice.
    fn deluxe_hook_kind(&self) -> DerefChain {
        DerefChain
    }
}

#[cfg(unix)]
impl<E> DerefKind for &&Outcome<Result<(), E>>
where
    E: core::ops::Deref,
    E::Target: std::error::Error,
{
}

/// Chooses [`Plain`]; see [`Outcome`].
#[cfg(unix)]
pub trait PlainKind {
    /// The choice.
    fn deluxe_hook_kind(&self) -> Plain {
        Plain
    }
}

#[cfg(unix)]
impl<T> PlainKind for Outcome<T> {}

#[cfg(unix)]
impl ErrorChain {
    /// The error's message and causes.
    pub fn into_result<E: std::error::Error>(
        self,
        outcome: Outcome<Result<(), E>>,
    ) -> Result<(), HookError> {
        outcome
            .0
            .map_err(|error| HookError::from(crate::daemon::hook_message(&error)))
    }
}

#[cfg(unix)]
impl DerefChain {
    /// The message and causes of the error the error points to.
    pub fn into_result<E>(self, outcome: Outcome<Result<(), E>>) -> Result<(), HookError>
    where
        E: core::ops::Deref,
        E::Target: std::error::Error,
    {
        outcome
            .0
            .map_err(|error| HookError::from(crate::daemon::hook_message(&*error)))
    }
}

#[cfg(unix)]
impl Plain {
    /// The outcome as [`HookOutcome`] makes it.
    pub fn into_result<T: HookOutcome>(self, outcome: Outcome<T>) -> Result<(), HookError> {
        outcome.0.into_result()
    }
}
