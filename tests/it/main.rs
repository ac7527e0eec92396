//! deluxe's integration tests, one binary with a module per area. They drive real processes,
//! real signals and real `sudo`: daemons are started by the helper programs in `tests/bin`
//! (`deluxe-daemon-helper`, `deluxe-probe`) and by the `ticker` example, never by this harness.
//!
//! Run one area with `cargo test --test it daemon::`, one test with its name.
//!
//! - `common`: what the areas share: the `Scene` fixture (a test's directory, its pidfile and
//!   events, the helper programs run on them), `eventually` (wait for a condition, bounded by
//!   `HANG`), and readings of `/proc`.
//! - `command`: `Command` against real programs; `command_bounds`: timeouts, cancellation
//!   that takes down the whole tree, background processes, memory, the caller's signals,
//!   Ctrl-C; `command_output`: streaming, output kept, pipelines, redirection, errors;
//!   `command_sudo`: `sudo`'s refusals, the environment and access as another user;
//!   `users`: `get_real_users`.
//! - `daemon`: the daemon runtime's life cycle, pidfile and signals; `privileges`: a daemon run
//!   as another user; `supervision`: readiness notification, the foreground mode,
//!   `start-stop-daemon`; `ticker`: the `ticker` example's command line; `asynchronous`: the
//!   tokio forms (with `--features tokio` only).
//! - `services`: what real services need, through a service written with the macros
//!   (`deluxe-services-helper`): setup before ready, owned descriptors, reload and logrotate,
//!   children, socket activation and the watchdog, the tokio example; `greeter`: the tokio
//!   example's `restart`, which refuses no connection (with `--features tokio` only).
//! - `restart`: restart without dropping a connection: sockets handed over to the new daemon
//!   (`deluxe-restart-helper`), real TCP clients, failures and kills at each step, other users.
//! - `safety`: what another user, a crash or an odd environment can do to a daemon (files
//!   planted at the log path, forked workers, a removed pidfile, ...).
//! - `trust`: whom a controller believes and signals: only the kernel-confirmed holder of the
//!   pidfile's lock (pidfiles planted by another user, processes that cannot be inspected,
//!   shared directories, default names, controllers racing while daemons are killed).
//! - `attacks`: `SIGKILL` at each step of `start`, `stop` and their cleanup, a low
//!   `RLIMIT_NOFILE`, `SIGCHLD` ignored, pid 1 as the controller's parent or the controller.
//! - `containers`: the daemon as pid 1 of real PID namespaces, with deluxe's init, under
//!   `tini` and without an init (Linux, as root).
//! - `faults`: faults of the machine on real file systems: a log file on a disk that fills up,
//!   a pidfile on a full disk (tmpfs mounts, as root).
//! - `endurance`: many cycles, calls and racing starts; `deployment`: the shipped systemd unit.
//! - `systemd`: the daemons under a real systemd (252 and 254) in namespaces of their own:
//!   notify, status text, reload, notify-reload, watchdog, socket activation, forking, stop,
//!   restarts that refuse no connection.
//! - `newuser`: what a newcomer meets first: messages that say how to fix the usual mistakes,
//!   the command line's status line for a program's own output.
//! - `hygiene`: the harness itself: scratch directories, skips that say so, `EINTR`;
//!   `layout`: where the runtime crate allows `unsafe` (its system-call modules only).
//! - `properties`: property tests of the parsers and validators; `macro_lint`: the macros'
//!   expansions are warning-free; `ui`: the macros' compile-fail and pass cases (trybuild).
//!
//! Unix only, as what they test; `tests/windows.rs` is the Windows suite.
#![cfg(unix)]

mod common;

mod asynchronous;
mod attacks;
mod command;
mod command_bounds;
mod command_output;
mod command_sudo;
mod containers;
mod daemon;
mod deployment;
mod endurance;
mod faults;
#[cfg(feature = "tokio")]
mod greeter;
mod hygiene;
mod layout;
// Public, so that `missing_docs` applies to the public items the macros expand to.
pub mod macro_lint;
mod newuser;
mod privileges;
mod properties;
mod reload;
mod restart;
mod safety;
mod services;
mod supervision;
mod systemd;
mod ticker;
mod trust;
mod ui;
mod users;
