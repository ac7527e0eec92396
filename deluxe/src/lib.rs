//! Declarative, safe process work.
//!
//! - [`process::Command`] and [`command!`]: run system commands without a shell, optionally as
//!   another user, with typed errors ([`process::CommandError`]); bounded by timeouts,
//!   streamed line by line or collected, alone or in pipelines, and leaving no process behind
//!   when cancelled.
//! - `process::get_real_users`: the machine's real user accounts (Unix).
//! - Daemons from a plain struct (Unix): `#[daemon]` on the struct and on its `impl` (with
//!   `#[setup]`, `#[on_reload]`, `#[on_user1]`, `#[on_user2]` and `#[atexit]` on hooks, and
//!   `#[keep_open]` on fields), or the `process::daemon::Daemon`
//!   trait by hand; then a `process::daemon::Controller` starts, stops, restarts, signals and
//!   reports the status of the daemon, which holds a locked pidfile for its whole life.
//!   Failures are a typed `process::daemon::DaemonError`. The `cli` module turns a controller
//!   into a command-line tool with the init-script exit codes.
//!
//! ```no_run
//! # #[cfg(unix)] {
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
//!     fn rotate(&self) { println!("rotating"); }
//! }
//!
//! let controller = Ticker::controller();
//! let pid = controller.start()?;      // returns once the daemon is really up
//! controller.signal_user1()?;
//! controller.stop()?;
//! # let _ = pid;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The API mirrors Python's `deluxe.process` module, with typed errors and guarantees beyond it
//! (readiness handshake, pid-reuse safety, hooks on an ordinary thread, ...). The guide,
//! [`_guide`], explains them chapter by chapter, with examples.
//!
//! # Platforms
//!
//! | | Unix (Linux, macOS, the BSDs) | Windows |
//! |---|---|---|
//! | `Command`, `command!`, `CallOptions`, `call_async` | yes | yes |
//! | `Command::user`, `command!(.., user = ..)` | yes, through `sudo` | a typed error; a compile error |
//! | `#[daemon]`, `process::daemon`, `cli` | yes | absent; `#[daemon]` is a compile error |
//! | `get_real_users` and `process::users` | yes | absent |
//!
//! Windows has no passwordless way for a program to run another as a different user (no
//! `sudo`; `runas` asks for the password), and no fork, signals or pidfile locks for a daemon:
//! a Windows program that must keep running is a service, managed by the Service Control
//! Manager.
#![deny(missing_docs)]
// `unsafe` lives only in the modules that wrap system calls (`daemon::sys`, `command::sys`,
// `users::sys`, the Windows Job Object in `command::windows::job`), each `#[allow]`ed where
// it is declared; the rest of the crate uses their safe wrappers over owned descriptors. One
// item-level exception, not a system call: `launch`'s borrow handed across the fork.
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(not(any(unix, windows)))]
compile_error!("deluxe supports Unix systems (Linux, macOS, the BSDs) and Windows only");

#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod cli;
pub mod process;

// On Windows the attribute macros exist only to say, in one compile error, that daemons are
// Unix-only (see their docs).
pub use deluxe_macros::{atexit, daemon, on_reload, on_user1, on_user2, setup};

#[cfg(any(doc, doctest))]
pub mod _guide;

#[doc(hidden)]
pub mod __private;

/// The README's examples, compiled and run as doc tests so that the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
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
/// - a program name that is empty, holds whitespace or an invisible character
///   ([`process::names::is_blank`]: arguments go to `call()`), shell syntax
///   (`` | ; & $ ` < > * ? ``: commands never run through a shell) or NUL, or is a relative path;
/// - arguments written into the macro (`command!("ls", "-la")`: they go to `call()`), a
///   stray or double comma;
/// - a key other than `user` and `path`, a key given twice, a value that is not a string
///   literal;
/// - a user name `sudo` could misread (leading `-` or `#`, whitespace, `:`, `/`, NUL);
/// - a `path` that is empty, not absolute or has an empty entry, or a `path` with an absolute
///   program. A `path` naming the program's own file (`path = "/opt/tools/bin/ls"`) runs that
///   file.
///
/// The checks are those of the runtime ([`process::names`]), applied earlier.
///
/// On Windows, `user = ..` is a compile error: Windows has no passwordless way to run a
/// program as another user (see [`process::Command::user`]).
#[macro_export]
macro_rules! command {
    ($($input:tt)*) => {
        $crate::__private::__command!(($crate) $($input)*)
    };
}

/// Arguments of mixed string types in one list: `&str`, `String`, `&Path`, `PathBuf`,
/// `OsString`, ... each turned into an [`OsString`](std::ffi::OsString), for
/// [`call`](process::Command::call) and its peers (an array must hold one type). For no
/// arguments, use [`NO_ARGS`](process::NO_ARGS).
///
/// ```
/// use std::path::Path;
/// let branch = String::from("main");
/// let dir = Path::new("/");
/// let echo = deluxe::command!("echo")?;
/// let more = std::ffi::OsString::from("x");
/// assert_eq!(echo.read(deluxe::args!["log", &branch, dir, more])?, "log main / x");
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        [$(::std::ffi::OsString::from($arg)),*]
    };
}
