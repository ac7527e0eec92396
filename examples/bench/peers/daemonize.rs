//! daemonize 0.5, the Rust crate: its parent learns only the intermediate process's exit code,
//! so "started" is measured until its pidfile names the daemon; it has no stop, so "stopped"
//! is SIGTERM and a pidfd wait, as its users do.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Cycles, Facts};
use crate::floor::terminate;
use crate::stats::{Plan, micros};

pub const NAME: &str = "daemonize 0.5";

/// Start and stop cycles, then the probes, in a directory of their own.
pub fn measure(plan: Plan) -> (Cycles, Facts) {
    let dir = std::env::temp_dir().join(format!("deluxe-bench-daemonize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (starts, stops) = (0..plan.rounds)
        .map(|_| cycle(&dir.join("cycle.pid")))
        .unzip();
    let facts = probe(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    (Cycles { starts, stops }, facts)
}

/// Starts a daemonize daemon; returns the exit code its caller gets. The daemon itself
/// (the forked bench) idles until a signal ends it.
fn start(pidfile: &Path) -> i32 {
    match daemonize::Daemonize::new()
        .pid_file(pidfile)
        .working_directory("/")
        .execute()
    {
        daemonize::Outcome::Parent(Ok(parent)) => parent.first_child_exit_code,
        daemonize::Outcome::Parent(Err(_)) => -1,
        daemonize::Outcome::Child(Ok(_)) => loop {
            // SAFETY: pause only waits for a signal; SIGTERM's default action ends us.
            unsafe { libc::pause() };
        },
        // SAFETY: the failed daemon ends at once, as daemonize leaves it to its user.
        daemonize::Outcome::Child(Err(_)) => unsafe { libc::_exit(1) },
    }
}

/// The pid in `pidfile` once a live process has written it.
fn pid(pidfile: &Path, timeout: Duration) -> Option<libc::pid_t> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let pid = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|text| text.trim().parse::<libc::pid_t>().ok());
        // SAFETY: signal 0 only checks that the process exists.
        if let Some(pid) = pid.filter(|pid| *pid > 0 && unsafe { libc::kill(*pid, 0) } == 0) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// One cycle: (start, stop) in microseconds.
fn cycle(pidfile: &Path) -> (f64, f64) {
    let t = Instant::now();
    start(pidfile);
    let pid = pid(pidfile, Duration::from_secs(10)).expect("the daemonize daemon writes its pid");
    let started = micros(t);
    let t = Instant::now();
    terminate(pid);
    let stopped = micros(t);
    let _ = std::fs::remove_file(pidfile);
    (started, stopped)
}

/// The same situations as the Python probes.
fn probe(dir: &Path) -> Facts {
    let pidfile = dir.join("daemonize.pid");
    start(&pidfile);
    let first = pid(&pidfile, Duration::from_secs(10)).expect("starts");
    let second_start_exit = start(&pidfile);
    std::thread::sleep(Duration::from_millis(200));
    let missing = dir.join("missing").join("x.pid");
    let missing_pidfile_dir_start_exit = start(&missing);
    let created_missing_pidfile_dir = missing.parent().unwrap().is_dir();
    terminate(first);
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let link = dir.join("link.pid");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    start(&link);
    if let Some(pid) = pid(&link, Duration::from_secs(2)) {
        terminate(pid);
    }
    Facts {
        second_start_exit,
        second_start_reported_pid: false,
        missing_pidfile_dir_start_exit,
        created_missing_pidfile_dir,
        stale_pidfile_unrelated_process_signalled: None,
        symlink_target_untouched: std::fs::read_to_string(&victim).unwrap() == "precious\n",
        restart_refused: None,
    }
}
