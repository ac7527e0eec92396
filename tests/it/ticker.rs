//! The `ticker` example through its command line, as a user runs it: every action in every
//! state with its init-script exit code, the lines its hooks log, and `start-stop-daemon`
//! working on its pidfile.

use std::process::Command as StdCommand;

use crate::common::{HANG, Scene, TEST_USER, has_sudo_setup, ticker_binary, wait_gone};

#[test]
fn every_action_in_every_state_has_its_exit_code() {
    let scene = Scene::new("ticker-states");

    // Stopped: no pidfile. deluxe's `log` warnings reach the user through the example's
    // logger, next to the CLI's own line.
    let pidfile = scene.pidfile().display().to_string();
    assert_eq!(
        scene.ticker(&["status"]),
        (3, "not running\n".into(), String::new())
    );
    assert_eq!(
        scene.ticker(&["stop"]),
        (
            0,
            "not running\n".into(),
            format!("warning: daemon not running (pidfile {pidfile})\n")
        )
    );
    // LSB's "program is not running", for an action that needs it running: 7, the same for
    // each.
    for (action, signal) in [
        ("user1", "SIGUSR1"),
        ("user2", "SIGUSR2"),
        ("reload", "SIGHUP"),
    ] {
        let (code, stdout, stderr) = scene.ticker(&[action]);
        assert_eq!((code, stdout.as_str()), (7, ""), "{action}");
        assert_eq!(
            stderr,
            format!(
                "warning: daemon not running (pidfile {pidfile}); {signal} not sent\n\
                 error: not running (no process holds pidfile {pidfile})\n"
            )
        );
    }

    // Running.
    let (code, stdout, _) = scene.ticker(&["start"]);
    assert_eq!(code, 0);
    let pid = scene.pid();
    assert_eq!(stdout, format!("started (pid {pid})\n"));
    let (code, stdout, stderr) = scene.ticker(&["start"]);
    assert_eq!(
        (code, stdout),
        (0, format!("already running (pid {pid})\n"))
    );
    assert_eq!(
        stderr,
        format!("warning: daemon already running (pid {pid}, pidfile {pidfile})\n")
    );
    let (code, status, stderr) = scene.ticker(&["status"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert!(
        status.starts_with(&format!("running (pid {pid}, since ")) && status.contains(" UTC, up "),
        "{status}"
    );
    assert_eq!(
        scene.ticker(&["user1"]),
        (0, "sent SIGUSR1 (on_user1)\n".into(), String::new())
    );
    assert_eq!(
        scene.ticker(&["user2"]),
        (0, "sent SIGUSR2 (on_user2)\n".into(), String::new())
    );
    // The reload answers once its hook has run.
    assert_eq!(
        scene.ticker(&["reload"]),
        (
            0,
            "reloaded (log reopened, on_reload done)\n".into(),
            String::new()
        )
    );
    scene.wait_log("the reload hook's line", |line| line == "reloaded");
    let (code, stdout, _) = scene.ticker(&["restart"]);
    assert_eq!(code, 0);
    let new_pid = scene.pid();
    assert_ne!(new_pid, pid);
    assert_eq!(stdout, format!("restarted (pid {new_pid})\n"));
    assert!(wait_gone(pid, HANG));

    // Stale: the daemon was killed; its pidfile stays.
    // SAFETY: killing the daemon this test started.
    unsafe { libc::kill(new_pid, libc::SIGKILL) };
    assert!(wait_gone(new_pid, HANG));
    assert_eq!(
        scene.ticker(&["status"]),
        (
            1,
            format!(
                "not running (stale pidfile {}, pid {new_pid})\n",
                scene.pidfile().display()
            ),
            String::new()
        )
    );
    assert_eq!(scene.ticker(&["user1"]).0, 7);
    assert_eq!(scene.ticker(&["stop"]).1, "not running\n");
    assert!(
        scene.pidfile().exists(),
        "stop leaves a stale pidfile, for the next start to replace"
    );

    // Running again, then stopped.
    assert_eq!(scene.ticker(&["restart"]).0, 0);
    assert_eq!(
        scene.ticker(&["stop"]),
        (0, "stopped\n".into(), String::new())
    );
    assert_eq!(scene.ticker(&["status"]).0, 3);
}

#[test]
fn status_that_cannot_be_told_and_failures_are_reported() {
    let scene = Scene::new("ticker-unknown");
    std::os::unix::fs::symlink("/etc/passwd", scene.pidfile()).unwrap();
    let (code, stdout, stderr) = scene.ticker(&["status"]);
    assert_eq!((code, stdout.as_str()), (4, ""));
    assert!(
        stderr.starts_with("error: status unknown: pidfile "),
        "{stderr}"
    );
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    let (code, _, stderr) = scene.ticker(&["start"]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("error: pidfile "), "{stderr}");
    std::fs::remove_file(scene.pidfile()).unwrap();

    let missing = scene.dir.join("missing").join("ticker.pid");
    // A log file this user can write: the default one, in /tmp, may be another user's.
    let output = StdCommand::new(ticker_binary())
        .arg("--pidfile")
        .arg(&missing)
        .arg("--log")
        .arg(scene.log())
        .arg("start")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: pidfile {}: No such file or directory (os error 2); its directory does not \
             exist: create it first, or choose another pidfile\n",
            missing.display()
        )
    );
}

#[test]
fn wrong_arguments_are_usage_errors_and_help_says_it_all() {
    let scene = Scene::new("ticker-usage");
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
    let (code, stdout, stderr) = scene.ticker(&["--help"]);
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
    assert!(!scene.pidfile().exists(), "no action was taken");
}

#[test]
fn hooks_write_their_lines_to_the_log() {
    let scene = Scene::new("ticker-hooks");
    assert_eq!(scene.ticker(&["start"]).0, 0);
    let pid = scene.pid();
    scene.wait_log("first tick", |line| line == "tick 1");
    assert_eq!(scene.ticker(&["user1"]).0, 0);
    scene.wait_log("user1", |line| line == "user1");
    assert_eq!(scene.ticker(&["user2"]).0, 0);
    scene.wait_log("ticks=N", |line| line.starts_with("ticks="));
    assert_eq!(scene.ticker(&["stop"]).1, "stopped\n");
    assert!(wait_gone(pid, HANG));
    let lines = scene.log_lines();
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
    let scene = Scene::new("ticker-ssd");
    let ssd = |args: &[&str]| scene.start_stop_daemon(args);
    assert_eq!(ssd(&["--status"]), Some(3));
    assert_eq!(scene.ticker(&["start"]).0, 0);
    let pid = scene.pid();
    assert_eq!(ssd(&["--status"]), Some(0));
    assert_eq!(ssd(&["--stop", "--signal", "USR1"]), Some(0));
    scene.wait_log("user1 from start-stop-daemon", |line| line == "user1");
    assert_eq!(ssd(&["--stop", "--retry", "TERM/5/KILL/5"]), Some(0));
    assert!(wait_gone(pid, HANG));
    assert_eq!(scene.log_lines().last().unwrap(), "atexit");
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.ticker(&["status"]).0, 3);
}

#[test]
fn the_tour_runs_start_to_end_and_leaves_nothing_behind() {
    // The README's first command, `cargo run --example tour`.
    let output = StdCommand::new(crate::common::example_binary("tour"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for shown in [
        "start() returned once the daemon was ready",
        "status() = Running { pid: ",
        "on_user1: hello #2",
        "stop() = Graceful",
        "atexit: goodbye",
        "status() = Stopped",
        "Done: nothing is left running.",
    ] {
        assert!(stdout.contains(shown), "{shown:?} missing from: {stdout}");
    }
    // One warning (the second start), not a stray one from stopping a stopped daemon.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");
    let daemon: i32 = stdout
        .lines()
        .find_map(|line| line.split("ready: pid ").nth(1)?.trim().parse().ok())
        .expect("the tour names its daemon's pid");
    assert!(
        !crate::common::is_alive(daemon),
        "the tour's daemon is gone"
    );
}

/// Another user's command line on root's daemon: `stop`, `reload` and the signals fail with
/// exit 1 and a message that says why and what to do; the daemon runs on.
#[test]
fn actions_on_another_users_daemon_say_whose_it_is_and_exit_1() {
    if !has_sudo_setup("actions_on_another_users_daemon_say_whose_it_is_and_exit_1") {
        return;
    }
    let scene = Scene::new("ticker-other-user");
    std::fs::set_permissions(
        &scene.dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(scene.ticker(&["start"]).0, 0);
    let pid = scene.pid();
    for (action, signal) in [
        ("stop", "SIGTERM"),
        ("reload", "SIGHUP"),
        ("user1", "SIGUSR1"),
    ] {
        let output = StdCommand::new("sudo")
            .args(["-n", "-u", TEST_USER, "--"])
            .arg(ticker_binary())
            .args(scene.ticker_options())
            .arg(action)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{action}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: cannot send {signal} to the daemon (pid {pid}): Operation not permitted \
                 (os error 1); it runs as another user: run this as root or as the daemon's user"
            )),
            "{action}: {stderr}"
        );
    }
    assert_eq!(scene.pid(), pid);
    assert_eq!(
        scene.ticker(&["stop"]),
        (0, "stopped\n".into(), String::new())
    );
}
