//! The `ticker` example through its command line, as a user runs it: every action in every
//! state with its init-script exit code, the lines its hooks log, and `start-stop-daemon`
//! working on its pidfile.

#![cfg(unix)]

mod common;

use std::path::PathBuf;
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use common::{HANG, ticker_binary, wait_gone};

struct Ticker {
    dir: PathBuf,
}

impl Ticker {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("deluxe-ticker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("ticker.pid")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("ticker.log")
    }

    /// Runs `ticker --pidfile P --log L ARGS`; returns the exit code, stdout and stderr.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output: Output = StdCommand::new(ticker_binary())
            .arg("--pidfile")
            .arg(self.pidfile())
            .arg("--log")
            .arg(self.log())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.pidfile())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn wait_log(&self, predicate: impl Fn(&str) -> bool, what: &str) {
        let start = Instant::now();
        while !self.log_lines().iter().any(|line| predicate(line)) {
            assert!(
                start.elapsed() < HANG,
                "no {what} in the log: {:?}",
                self.log_lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.run(&["stop"]);
    }
}

#[test]
fn every_action_in_every_state_has_its_exit_code() {
    let ticker = Ticker::new("states");

    // Stopped: no pidfile. deluxe's `log` warnings reach the user through the example's
    // logger, next to the CLI's own line.
    let pidfile = ticker.pidfile().display().to_string();
    assert_eq!(
        ticker.run(&["status"]),
        (3, "not running\n".into(), String::new())
    );
    assert_eq!(
        ticker.run(&["stop"]),
        (
            0,
            "not running\n".into(),
            format!("warning: daemon not running (pidfile {pidfile})\n")
        )
    );
    for (action, signal) in [("user1", "SIGUSR1"), ("user2", "SIGUSR2")] {
        let (code, stdout, stderr) = ticker.run(&[action]);
        assert_eq!((code, stdout.as_str()), (1, ""), "{action}");
        assert_eq!(
            stderr,
            format!(
                "warning: daemon not running (pidfile {pidfile}); {signal} not sent\n\
                 error: not running (no process holds pidfile {pidfile})\n"
            )
        );
    }

    // Running.
    let (code, stdout, _) = ticker.run(&["start"]);
    assert_eq!(code, 0);
    let pid = ticker.pid();
    assert_eq!(stdout, format!("started (pid {pid})\n"));
    let (code, stdout, stderr) = ticker.run(&["start"]);
    assert_eq!(
        (code, stdout),
        (0, format!("already running (pid {pid})\n"))
    );
    assert_eq!(
        stderr,
        format!("warning: daemon already running (pid {pid}, pidfile {pidfile})\n")
    );
    let (code, status, stderr) = ticker.run(&["status"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(
        status.starts_with(&format!("running (pid {pid}, since ")) && status.contains(" UTC, up "),
        "{status}"
    );
    assert_eq!(
        ticker.run(&["user1"]),
        (0, "sent SIGUSR1 (on_user1)\n".into(), String::new())
    );
    assert_eq!(
        ticker.run(&["user2"]),
        (0, "sent SIGUSR2 (on_user2)\n".into(), String::new())
    );
    let (code, stdout, _) = ticker.run(&["restart"]);
    assert_eq!(code, 0);
    let new_pid = ticker.pid();
    assert_ne!(new_pid, pid);
    assert_eq!(stdout, format!("restarted (pid {new_pid})\n"));
    assert!(wait_gone(pid, HANG));

    // Stale: the daemon was killed; its pidfile stays.
    // SAFETY: killing the daemon this test started.
    unsafe { libc::kill(new_pid, libc::SIGKILL) };
    assert!(wait_gone(new_pid, HANG));
    assert_eq!(
        ticker.run(&["status"]),
        (
            1,
            format!(
                "not running (stale pidfile {}, pid {new_pid})\n",
                ticker.pidfile().display()
            ),
            String::new()
        )
    );
    assert_eq!(ticker.run(&["user1"]).0, 1);
    assert_eq!(ticker.run(&["stop"]).1, "not running\n");
    assert!(!ticker.pidfile().exists(), "stop removes a stale pidfile");

    // Running again, then stopped.
    assert_eq!(ticker.run(&["restart"]).0, 0);
    assert_eq!(
        ticker.run(&["stop"]),
        (0, "stopped\n".into(), String::new())
    );
    assert_eq!(ticker.run(&["status"]).0, 3);
}

#[test]
fn status_that_cannot_be_told_and_failures_are_reported() {
    let ticker = Ticker::new("unknown");
    std::os::unix::fs::symlink("/etc/passwd", ticker.pidfile()).unwrap();
    let (code, stdout, stderr) = ticker.run(&["status"]);
    assert_eq!((code, stdout.as_str()), (4, ""));
    assert!(
        stderr.starts_with("error: status unknown: pidfile "),
        "{stderr}"
    );
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    let (code, _, stderr) = ticker.run(&["start"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: pidfile "), "{stderr}");
    std::fs::remove_file(ticker.pidfile()).unwrap();

    let missing = ticker.dir.join("missing").join("ticker.pid");
    let output = StdCommand::new(ticker_binary())
        .arg("--pidfile")
        .arg(&missing)
        .arg("start")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: pidfile {}: No such file or directory (os error 2); its directory does not exist\n",
            missing.display()
        )
    );
}

#[test]
fn wrong_arguments_are_usage_errors_and_help_says_it_all() {
    let ticker = Ticker::new("usage");
    for args in [
        &[][..],
        &["frobnicate"],
        &["start", "stop"],
        &["--bogus", "start"],
        &["--pidfile"],
    ] {
        let output = StdCommand::new(ticker_binary())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("usage: ticker [OPTIONS] ACTION"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    let (code, stdout, stderr) = ticker.run(&["--help"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    for needle in [
        "start",
        "stop",
        "restart",
        "status",
        "user1",
        "user2",
        "--pidfile",
        "--log",
        "--stop-timeout",
        "exit 0 running, 1 dead with a stale pidfile, 3 not running",
        "2 wrong arguments",
    ] {
        assert!(
            stdout.contains(needle),
            "--help lacks {needle:?}:\n{stdout}"
        );
    }
    assert!(!ticker.pidfile().exists(), "no action was taken");
}

#[test]
fn hooks_write_their_lines_to_the_log() {
    let ticker = Ticker::new("hooks");
    assert_eq!(ticker.run(&["start"]).0, 0);
    let pid = ticker.pid();
    ticker.wait_log(|line| line == "tick 1", "first tick");
    assert_eq!(ticker.run(&["user1"]).0, 0);
    ticker.wait_log(|line| line == "user1", "user1");
    assert_eq!(ticker.run(&["user2"]).0, 0);
    ticker.wait_log(|line| line.starts_with("ticks="), "ticks=N");
    assert_eq!(ticker.run(&["stop"]).1, "stopped\n");
    assert!(wait_gone(pid, HANG));
    let lines = ticker.log_lines();
    assert_eq!(lines.first().unwrap(), &format!("started (pid {pid})"));
    assert_eq!(lines.last().unwrap(), "atexit");
    assert_eq!(lines.iter().filter(|l| *l == "atexit").count(), 1);
    let ticks: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("ticks="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(ticks >= 1, "the report counts the ticks so far: {lines:?}");
    assert!(lines.contains(&format!("tick {ticks}")));
}

#[test]
fn start_stop_daemon_drives_the_ticker() {
    let ticker = Ticker::new("ssd");
    let ssd = |args: &[&str]| {
        StdCommand::new("start-stop-daemon")
            .args(args)
            .arg("--pidfile")
            .arg(ticker.pidfile())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(ssd(&["--status"]), Some(3));
    assert_eq!(ticker.run(&["start"]).0, 0);
    let pid = ticker.pid();
    assert_eq!(ssd(&["--status"]), Some(0));
    assert_eq!(ssd(&["--stop", "--signal", "USR1"]), Some(0));
    ticker.wait_log(|line| line == "user1", "user1 from start-stop-daemon");
    assert_eq!(ssd(&["--stop", "--retry", "TERM/5/KILL/5"]), Some(0));
    assert!(wait_gone(pid, HANG));
    assert_eq!(ticker.log_lines().last().unwrap(), "atexit");
    assert!(!ticker.pidfile().exists());
    assert_eq!(ticker.run(&["status"]).0, 3);
}
