//! Process utilities: system commands, real user accounts and daemons.
//!
//! The Rust counterpart of the Python module `deluxe.process`.

pub mod command;
pub mod daemon;
pub mod names;
pub mod users;

pub use command::{CallOptions, Command, CommandError, NO_ARGS};
pub use daemon::{Config, Controller, Daemon, DaemonError, Pid, Status, StopOutcome};
pub use users::{Account, all_accounts, get_real_users, is_login_shell, parse_uid_min, real_users};
