// Every setting, every hook, both ways to build a controller, warning-free.
#![deny(warnings)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deluxe::daemon::{Controller, Daemon};

/// A documented public daemon: the generated items are documented too.
#[deluxe::daemon(
    pidfile = "/run/all.pid",
    workdir = "/var/lib",
    log_file = "/var/log/all.log",
    stop_timeout = 7,
    stop_grace = 2.5,
    start_timeout = 30,
    umask = 0o027,
    keep_children = true,
)]
#[derive(Default)]
pub struct All {
    ticks: AtomicU64,
}

#[deluxe::daemon]
impl All {
    fn run(&self) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
    }

    #[setup]
    fn prepare(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    #[on_reload]
    fn reread(&self) -> Result<(), String> {
        Ok(())
    }

    #[on_user1]
    fn reload(&self) {}

    #[deluxe::on_user2]
    fn report(&self) {}

    #[atexit]
    fn cleanup(&self) {}

    /// An ordinary method stays an ordinary method.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }
}

fn main() {
    let config = <All as Daemon>::config();
    assert_eq!(config.pidfile, std::path::Path::new("/run/all.pid"));
    assert_eq!(config.workdir, std::path::Path::new("/var/lib"));
    assert_eq!(config.log_file.as_deref(), Some(std::path::Path::new("/var/log/all.log")));
    assert_eq!(config.stop_timeout, Duration::from_secs(7));
    assert_eq!(config.stop_grace, Some(Duration::from_millis(2500)));
    assert_eq!(config.start_timeout, Duration::from_secs(30));
    assert_eq!(config.umask, 0o027);
    assert!(config.keep_children);
    let by_default: Controller<All> = All::controller();
    let by_value: Controller<All> = All { ticks: AtomicU64::new(5) }.into_controller();
    assert_eq!(by_value.daemon().ticks(), 5);
    let _ = by_default;
    All::default().reload();
}
