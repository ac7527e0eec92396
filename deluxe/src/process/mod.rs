//! Process utilities: system commands, real user accounts and daemons.
//!
//! The Rust counterpart of the Python module `deluxe.process`. [`command`] and [`names`]
//! work on Unix and Windows; `daemon` and `users` are Unix-only, as in the Python module.
//!
//! # Platforms
//!
//! On Windows this module holds [`Command`], [`CallOptions`], [`CommandError`], [`NO_ARGS`]
//! and the [`names`] checks; `daemon`, `users`, `Daemon`, `Controller` and `get_real_users`
//! are absent (they need fork, signals, `sudo` and the password database).
//!
//! ```
//! # #[cfg(unix)] {
//! use deluxe::process::{Command, get_real_users};
//!
//! let uname = Command::new("uname")?.call(["-s"])?;
//! let users = get_real_users()?;
//! println!("{} with {} real users", String::from_utf8_lossy(&uname).trim(), users.len());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod command;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod daemon;
pub mod names;
mod time;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod users;

pub use command::{CallOptions, Command, CommandError, NO_ARGS, Output, Pipeline, Running};
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use daemon::{Config, Controller, Daemon, DaemonError, Pid, Status, StopOutcome};
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub use users::{
    Account, all_accounts, get_real_users, get_real_users_os, is_login_shell, parse_uid_min,
    real_users,
};
