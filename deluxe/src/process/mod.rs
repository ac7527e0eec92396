//! Process utilities: system commands, real user accounts and daemons.
//!
//! The Rust counterpart of the Python module `deluxe.process`.
//!
//! ```
//! use deluxe::process::{Command, get_real_users};
//!
//! let uname = Command::new("uname")?.call(["-s"])?;
//! let users = get_real_users()?;
//! println!("{} with {} real users", String::from_utf8_lossy(&uname).trim(), users.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod command;
pub mod daemon;
pub mod names;
pub mod users;

pub use command::{CallOptions, Command, CommandError, NO_ARGS, Output, Pipeline, Running};
pub use daemon::{Config, Controller, Daemon, DaemonError, Pid, Status, StopOutcome};
pub use users::{
    Account, all_accounts, get_real_users, get_real_users_os, is_login_shell, parse_uid_min,
    real_users,
};
