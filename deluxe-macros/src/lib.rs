//! Procedural macros of the `deluxe` crate: `#[daemon]` (with its helper attributes) and the
//! implementation of `command!`. Use them through `deluxe`, which re-exports and documents
//! them.
#![deny(missing_docs)]

mod args;
mod command;
mod daemon;
#[allow(dead_code)] // Shared with the runtime crate, which uses all of it.
mod names;

use proc_macro::TokenStream;

/// Turns a struct and its impl block into a daemon.
///
/// On the struct, the settings, each a literal and each optional:
///
/// | key | value | meaning |
/// |---|---|---|
/// | `pidfile` | absolute path | the pidfile; by default one named after the struct's path (`my_app::net::Server`: `my-app.net.server.pid`, see `Config::named`) |
/// | `workdir` | absolute path | the daemon's working directory (default `/`) |
/// | `log_file` | absolute path | stdout and stderr appended there (default `/dev/null`) |
/// | `stop_timeout` | seconds | how long `stop` waits before `SIGKILL` |
/// | `stop_grace` | seconds | how long `run` has after a stop request |
/// | `start_timeout` | seconds | how long `start` waits for "ready" |
/// | `umask` | octal integer (`0o022`; `022` is decimal, refused) | the daemon's umask (default `0o022`) |
/// | `user` | account name | started as root, the daemon runs as this user |
/// | `group` | group name | and this group (default: the user's) |
/// | `keep_children` | `true`/`false` | whether processes it started outlive it (default `false`) |
/// | `crate` | path string | where `deluxe` is, for a renamed dependency |
///
/// It also generates `Type::controller()` (for `Default` types) and
/// `value.into_controller()`.
///
/// On the impl block: `fn run(&self)` (required), and the methods marked `#[on_user1]`,
/// `#[on_user2]` and `#[atexit]`, which become the daemon's hooks. The methods stay ordinary
/// methods.
///
/// Unix only: built for Windows, `#[daemon]` is one compile error saying so (a daemon needs
/// fork, signals and pidfile locks; a Windows program that keeps running is a service).
///
/// ```no_run
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::time::Duration;
///
/// #[deluxe::daemon(pidfile = "/run/ticker.pid", workdir = "/", stop_timeout = 10, umask = 0o022)]
/// #[derive(Default)]
/// struct Ticker {
///     ticks: AtomicU64,
/// }
///
/// #[deluxe::daemon]
/// impl Ticker {
///     fn run(&self) {
///         while !deluxe::daemon::wait_for_stop(Duration::from_secs(1)) {
///             self.ticks.fetch_add(1, Ordering::Relaxed);
///         }
///     }
///
///     #[on_user2]
///     fn report(&self) {
///         println!("ticks={}", self.ticks.load(Ordering::Relaxed));
///     }
/// }
///
/// let pid = Ticker::controller().start()?;
/// # Ok::<(), deluxe::daemon::DaemonError>(())
/// ```
#[proc_macro_attribute]
pub fn daemon(args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::expand(args.into(), item.into()).into()
}

/// Marks the method of a `#[daemon]` impl block that runs on `SIGUSR1`
/// (`Controller::signal_user1`). `#[on_user1(reload)]` also tells a service manager that the
/// hook reloads the configuration (`RELOADING=1`, then `READY=1`). On its own, outside a
/// `#[daemon]` impl block, it is an error.
///
/// ```
/// #[deluxe::daemon]
/// #[derive(Default)]
/// struct Server;
///
/// #[deluxe::daemon]
/// impl Server {
///     fn run(&self) {}
///
///     #[on_user1(reload)]
///     fn reload(&self) {
///         // re-read the configuration
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn on_user1(_args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::misplaced("on_user1", item.into()).into()
}

/// Marks the method of a `#[daemon]` impl block that prepares the daemon before it is ready
/// (`Daemon::setup`): in the daemon, after its pidfile is locked and, when it runs as another
/// user, still as root. It returns `()` or `Result<(), E>` with `E: Display`; an error makes
/// `Controller::start` fail with its message. On its own, it is an error.
///
/// ```
/// use std::net::TcpListener;
/// use std::sync::OnceLock;
///
/// #[deluxe::daemon]
/// #[derive(Default)]
/// struct Server {
///     listener: OnceLock<TcpListener>,
/// }
///
/// #[deluxe::daemon]
/// impl Server {
///     #[setup]
///     fn bind(&self) -> std::io::Result<()> {
///         let _ = self.listener.set(TcpListener::bind("127.0.0.1:0")?);
///         Ok(())
///     }
///
///     fn run(&self) {}
/// }
/// ```
#[proc_macro_attribute]
pub fn setup(_args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::misplaced("setup", item.into()).into()
}

/// Marks the method of a `#[daemon]` impl block that runs on `SIGHUP` (`Controller::reload`,
/// logrotate, systemd's `Type=notify-reload`), after the daemon reopened its log file
/// (`Daemon::on_reload`). It returns `()` or `Result<(), E>` with `E: Display`; an error is
/// logged and the daemon keeps running. On its own, it is an error.
///
/// ```
/// use std::sync::RwLock;
///
/// #[deluxe::daemon]
/// #[derive(Default)]
/// struct Proxy {
///     upstream: RwLock<String>,
/// }
///
/// #[deluxe::daemon]
/// impl Proxy {
///     fn run(&self) {}
///
///     #[on_reload]
///     fn reread(&self) -> std::io::Result<()> {
///         *self.upstream.write().unwrap() = std::fs::read_to_string("/etc/proxy/upstream")?;
///         Ok(())
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn on_reload(_args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::misplaced("on_reload", item.into()).into()
}

/// Marks the method of a `#[daemon]` impl block that runs on `SIGUSR2`
/// (`Controller::signal_user2`). On its own, it is an error.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[deluxe::daemon]
/// #[derive(Default)]
/// struct Counter {
///     served: AtomicU64,
/// }
///
/// #[deluxe::daemon]
/// impl Counter {
///     fn run(&self) {}
///
///     #[on_user2]
///     fn report(&self) {
///         println!("served {}", self.served.load(Ordering::Relaxed));
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn on_user2(_args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::misplaced("on_user2", item.into()).into()
}

/// Marks the method of a `#[daemon]` impl block that runs exactly once when the daemon ends in
/// a way it can observe (`run` returned, a stop was requested, a panic). On its own, it is an
/// error.
///
/// ```
/// #[deluxe::daemon]
/// #[derive(Default)]
/// struct Worker;
///
/// #[deluxe::daemon]
/// impl Worker {
///     fn run(&self) {}
///
///     #[atexit]
///     fn cleanup(&self) {
///         // flush, close, remove temporary files
///     }
/// }
/// ```
#[proc_macro_attribute]
pub fn atexit(_args: TokenStream, item: TokenStream) -> TokenStream {
    daemon::misplaced("atexit", item.into()).into()
}

/// The implementation of `deluxe::command!`, which forwards here with `$crate` first.
#[doc(hidden)]
#[proc_macro]
pub fn __command(input: TokenStream) -> TokenStream {
    command::expand(input.into()).into()
}
