//! Declarative, safe process work.
//!
//! Run system commands without a shell (optionally as another user), list the machine's real
//! user accounts, and turn a plain struct into a well-behaved daemon with one attribute.
//!
//! # Items
//!
//! Every public item has one path: the crate root holds the macros, and four area modules hold
//! the rest.
//!
//! - At the root: [`command!`](macro@command) (a [`Command`](command::Command) checked at
//!   compile time), [`args!`] (arguments of mixed string types), and the attributes
//!   [`#[daemon]`](macro@daemon), [`#[setup]`](macro@setup), [`#[on_reload]`](macro@on_reload),
//!   [`#[on_user1]`](macro@on_user1), [`#[on_user2]`](macro@on_user2) and
//!   [`#[atexit]`](macro@atexit).
//! - [`mod@command`]: [`Command`](command::Command) and what a call takes and gives:
//!   [`CallOptions`](command::CallOptions), [`Output`](command::Output),
//!   [`Running`](command::Running), [`Lines`](command::Lines),
//!   [`Pipeline`](command::Pipeline), `AsyncRunning` (feature
//!   `tokio`), the typed [`CommandError`](command::CommandError), and the name checks
//!   `command!` applies ([`check_program`](command::check_program),
//!   [`check_user_name`](command::check_user_name)).
#![cfg_attr(
    unix,
    doc = "- [`mod@daemon`] (Unix): the [`Daemon`](daemon::Daemon) trait, its
  [`Config`](daemon::Config) (every setting), the [`Controller`](daemon::Controller) that
  starts, stops, restarts, reloads and signals it, the [`Instance`](daemon::Instance) that
  acts on a running daemon without its value, their async mirrors
  `AsyncController` and `AsyncInstance` (feature `tokio`), the typed
  [`DaemonError`](daemon::DaemonError), and the functions a running daemon calls
  ([`wait_for_stop`](daemon::wait_for_stop), [`stop_deadline`](daemon::stop_deadline),
  [`listener`](daemon::listener) (a socket that `restart` hands over),
  [`listen_fds`](daemon::listen_fds), ...).
- [`users`] (Unix): [`get_real_users`](users::get_real_users) and the
  [`Account`](users::Account)s behind it.
- [`cli`] (Unix): a daemon's command line with the init-script exit codes
  ([`cli::main`], [`cli::Exit`])."
)]
#![cfg_attr(
    windows,
    doc = "- `daemon`, `users` and `cli`: Unix only (see [Platforms](#platforms))."
)]
//!
//! The guide, [`_guide`], explains them chapter by chapter, with examples.
//!
//! ```no_run
//! # #[cfg(unix)] {
//! use std::time::Duration;
//! use deluxe::daemon;
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
//! Every failure is a typed error to match, and a daemon comes with guarantees (a readiness
//! handshake, pid-reuse safety, hooks on an ordinary thread, ...) that the guide explains.
//!
//! # Platforms
//!
//! | | Unix (Linux, macOS, the BSDs) | Windows |
//! |---|---|---|
//! | `Command`, `command!`, `CallOptions`, `call_async` | yes | yes |
//! | `Command::user`, `command!(.., user = ..)` | yes, through `sudo` | a typed error; a compile error |
//! | `#[daemon]`, `daemon`, `cli` | yes | absent; `#[daemon]` is a compile error |
//! | `get_real_users` and `users` | yes | absent |
//!
//! Windows has no passwordless way for a program to run another as a different user (no
//! `sudo`; `runas` asks for the password), and no fork, signals or pidfile locks for a daemon:
//! a Windows program that must keep running is a service, managed by the Service Control
//! Manager.
#![deny(missing_docs)]
// `unsafe` lives only in the modules that wrap system calls (`daemon::sys`, `daemon::sys_handover`, `command::sys`,
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
pub mod command;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod daemon;
mod time;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod users;

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

/// Builds a [`command::Command`], checking at compile time everything that can be checked.
///
/// ```
/// let ls = deluxe::command!("ls")?;
/// let bin = deluxe::command!("ls", path = "/usr/bin:/bin")?;
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
///
/// ```no_run
/// let apt = deluxe::command!("apt-get", user = "root")?;
/// apt.call(["update"])?;
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
///
/// The macro evaluates to `Result<Command, CommandError>`: the program is still looked up
/// (on `PATH`, or in `path`) and the user still checked to exist when the code runs. What it
/// refuses to compile, each with an error on the offending token that says how to fix it:
///
/// - no program, or a program that is not a string literal (use [`command::Command::new`]
///   for a name known only at run time);
/// - a program name that is empty, holds whitespace or an invisible character
///   ([`command::is_blank`]: arguments go to `call()`), shell syntax
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
/// The checks are those of the runtime ([`mod@command`]), applied earlier.
///
/// On Windows, `user = ..` is a compile error: Windows has no passwordless way to run a
/// program as another user (see [`command::Command::user`]).
#[macro_export]
macro_rules! command {
    ($($input:tt)*) => {
        $crate::__private::__command!(($crate) $($input)*)
    };
}

/// Arguments of mixed string types in one list: `&str`, `String`, `&Path`, `PathBuf`,
/// `OsString`, ... each turned into an [`OsString`](std::ffi::OsString), for
/// [`call`](command::Command::call) and its peers (an array must hold one type). For no
/// arguments, use [`NO_ARGS`](command::NO_ARGS).
///
/// ```
/// use std::path::Path;
/// let branch = String::from("main");
/// let dir = Path::new("/");
/// let echo = deluxe::command!("echo")?;
/// let more = std::ffi::OsString::from("x");
/// assert_eq!(echo.read(deluxe::args!["log", &branch, dir, more])?, "log main / x");
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        [$(::std::ffi::OsString::from($arg)),*]
    };
}
