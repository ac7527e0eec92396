//! Declarative, safe Unix process work.
//!
//! - [`process::Command`] and [`command!`]: run system commands without a shell, optionally as
//!   another user, with typed errors ([`process::CommandError`]).
//! - [`process::get_real_users`]: the machine's real user accounts.
//! - Daemons from a plain struct: [`#[daemon]`](daemon) on the struct and on its `impl`
//!   (with [`#[setup]`](setup), [`#[on_reload]`](on_reload), [`#[on_user1]`](on_user1),
//!   [`#[on_user2]`](on_user2) and [`#[atexit]`](atexit) on hooks), or the [`process::daemon::Daemon`] trait by hand; then a
//!   [`process::daemon::Controller`] starts, stops, restarts, signals and reports the
//!   [`status`](process::daemon::Status) of the daemon, which holds a locked pidfile for its
//!   whole life. Failures are a typed [`process::daemon::DaemonError`]. The [`cli`] module
//!   turns a controller into a command-line tool with the init-script exit codes.
//!
//! ```no_run
//! use std::time::Duration;
//! use deluxe::process::daemon;
//!
//! #[deluxe::daemon(pidfile = "/run/ticker.pid", workdir = "/")]
//! #[derive(Default)]
//! struct Ticker;
//!
//! #[deluxe::daemon]
//! impl Ticker {
//!     fn run(&self) {
//!         while !daemon::wait_for_stop(Duration::from_secs(1)) {
//!             println!("tick");
//!         }
//!     }
//!
//!     #[on_user1]
//!     fn reload(&self) { println!("reloading"); }
//! }
//!
//! let controller = Ticker::controller();
//! let pid = controller.start()?;      // returns once the daemon is really up
//! controller.signal_user1()?;
//! controller.stop()?;
//! # let _ = pid;
//! # Ok::<(), deluxe::process::daemon::DaemonError>(())
//! ```
//!
//! The API mirrors Python's `deluxe.process` module, with typed errors and the guarantees the
//! README lists (readiness handshake, pid-reuse safety, hooks on an ordinary thread, ...).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(unix))]
compile_error!("deluxe supports Unix systems only (Linux, macOS, the BSDs)");

pub mod cli;
pub mod process;

pub use deluxe_macros::{atexit, daemon, on_reload, on_user1, on_user2, setup};

#[doc(hidden)]
pub mod __private;

/// The README's examples, compiled and run as doc tests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// Builds a [`process::Command`], checking at compile time everything that can be checked.
///
/// ```
/// let ls = deluxe::command!("ls")?;
/// let bin = deluxe::command!("ls", path = "/usr/bin:/bin")?;
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
///
/// ```no_run
/// let apt = deluxe::command!("apt-get", user = "root")?;
/// apt.call(["update"])?;
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
///
/// The macro evaluates to `Result<Command, CommandError>`: the program is still looked up
/// (on `PATH`, or in `path`) and the user still checked to exist when the code runs. What it
/// refuses to compile, each with an error on the offending token that says how to fix it:
///
/// - no program, or a program that is not a string literal (use [`process::Command::new`]
///   for a name known only at run time);
/// - a program name that is empty, holds whitespace (arguments go to `call()`), shell syntax
///   (`` | ; & $ ` < > * ? ``: commands never run through a shell) or NUL, or is a relative path;
/// - a key other than `user` and `path`, a key given twice, a value that is not a string
///   literal;
/// - a user name `sudo` could misread (leading `-` or `#`, whitespace, `:`, `/`, NUL);
/// - a `path` that is empty or not absolute, or a `path` with an absolute program.
///
/// The checks are those of the runtime ([`process::names`]), applied earlier.
#[macro_export]
macro_rules! command {
    ($($input:tt)*) => {
        $crate::__private::__command!(($crate) $($input)*)
    };
}
