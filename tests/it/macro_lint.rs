//! The macros' expansions are warning-free: this file denies every rustc warning and clippy's
//! default and pedantic groups (`cargo clippy --all-targets` in CI checks the latter), and
//! uses every form of the macros, including public items under `missing_docs`.
#![deny(warnings, missing_docs, clippy::all, clippy::pedantic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deluxe::daemon::{Controller, Daemon};

/// A public daemon with every setting and every hook.
#[deluxe::daemon(
    pidfile = "/run/lint.pid",
    workdir = "/",
    log_file = "/var/log/lint.log",
    stop_timeout = 3,
    stop_grace = 1.5,
    start_timeout = 20,
    umask = 0o077
)]
#[derive(Default)]
pub struct Linted {
    count: AtomicU64,
}

#[deluxe::daemon]
impl Linted {
    fn run(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    #[on_user1]
    fn one(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    #[on_user2]
    fn two(&self) {
        self.count.fetch_add(2, Ordering::Relaxed);
    }

    #[atexit]
    fn bye(&self) {
        self.count.fetch_add(3, Ordering::Relaxed);
    }
}

/// A private, fallible daemon with no settings.
#[deluxe::daemon]
struct Fallible(u8);

#[deluxe::daemon]
impl Fallible {
    fn run(&self) -> Result<(), std::io::Error> {
        std::fs::metadata(format!("/proc/self/fd/{}", self.0))?;
        Ok(())
    }
}

/// An error that keeps its cause in `source()` only, and borrows from the daemon: a hook's
/// error need not be `'static`, `Send` or `Sync`.
#[derive(Debug)]
struct Context<'a> {
    what: &'a str,
    cause: std::io::Error,
}

impl std::fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

impl std::error::Error for Context<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// A report type as `anyhow::Error` is: `Display`, but not itself a `std::error::Error`; it
/// points to one.
#[derive(Debug)]
struct Report(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::ops::Deref for Report {
    type Target = dyn std::error::Error + Send + Sync;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// Only `Display`: its text is the message.
struct Plain(&'static str);

impl std::fmt::Display for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Each kind of hook error: the `Display` of a cause the error does not print is kept.
#[deluxe::daemon]
struct Causes {
    run: String,
    setup: &'static str,
    reload: &'static str,
}

fn missing() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ENOENT)
}

#[deluxe::daemon]
impl Causes {
    fn run(&self) -> Result<(), Context<'_>> {
        Err(Context {
            what: &self.run,
            cause: missing(),
        })
    }

    #[setup]
    fn prepare(&self) -> Result<(), Box<dyn std::error::Error>> {
        Err(Box::new(Context {
            what: self.setup,
            cause: missing(),
        }))
    }

    #[on_reload]
    fn reread(&self) -> Result<(), Report> {
        Err(Report(Box::new(Context {
            what: self.reload,
            cause: missing(),
        })))
    }
}

/// `Display`-only errors, as before: their text.
#[deluxe::daemon]
struct Texts {
    text: &'static str,
}

#[deluxe::daemon]
impl Texts {
    fn run(&self) -> Result<(), String> {
        Err(self.text.to_owned())
    }

    #[setup]
    fn prepare(&self) -> Result<(), Plain> {
        Err(Plain(self.text))
    }

    #[on_reload]
    fn reread(&self) -> Result<(), &'static str> {
        Err(self.text)
    }
}

#[test]
fn hook_errors_keep_their_causes_through_the_macros() {
    let enoent = "No such file or directory (os error 2)";
    let causes = Causes {
        run: "run".to_owned(),
        setup: "setup",
        reload: "reload",
    };
    let texts = Texts { text: "text" };
    let said = |outcome: Result<(), deluxe::daemon::HookError>| outcome.unwrap_err().to_string();
    assert_eq!(said(Daemon::run(&causes)), format!("run: {enoent}"));
    assert_eq!(said(Daemon::setup(&causes)), format!("setup: {enoent}"));
    assert_eq!(
        said(Daemon::on_reload(&causes)),
        format!("reload: {enoent}")
    );
    assert_eq!(said(Daemon::run(&texts)), "text");
    assert_eq!(said(Daemon::setup(&texts)), "text");
    assert_eq!(said(Daemon::on_reload(&texts)), "text");
}

#[test]
fn expansions_are_usable_and_warning_free() {
    let config = <Linted as Daemon>::config();
    assert_eq!(config.stop_grace, Some(Duration::from_millis(1500)));
    assert_eq!(config.umask, 0o077);
    let controller: Controller<Linted> = Linted::controller();
    controller.daemon().one();
    controller.daemon().two();
    controller.daemon().bye();
    assert_eq!(controller.daemon().count.load(Ordering::Relaxed), 6);
    let fallible = Fallible(1).into_controller();
    assert!(fallible.daemon().run().is_ok());
    assert!(
        Fallible::config()
            .pidfile
            .to_string_lossy()
            .contains("fallible")
    );

    let ls = deluxe::command!("ls", path = "/usr/bin:/bin").unwrap();
    assert!(ls.program().is_absolute());
    let err = deluxe::command!("ls", user = "no-such-user-here").unwrap_err();
    assert!(matches!(
        err,
        deluxe::command::CommandError::UnknownUser { .. }
    ));
}
