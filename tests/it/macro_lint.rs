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
