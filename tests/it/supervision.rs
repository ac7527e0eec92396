//! Under service managers: the readiness protocol on a real `NOTIFY_SOCKET` this test binds,
//! the foreground mode a supervisor needs, and `start-stop-daemon --background --notify-await`
//! as the supervisor of the `ticker` example.

use crate::common::{
    HANG, NotifySocket, Scene, helper_command, is_alive, open_fds, read_pidfile, stat,
    ticker_binary, wait_gone,
};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

#[test]
fn a_forked_daemon_tells_the_service_manager_it_is_ready_with_its_pid() {
    let scene = Scene::new("notify-forked");
    let notify = NotifySocket::bind(&scene.dir);
    let output = helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &["--user1-reloads"],
        &["start"],
    )
    .env("NOTIFY_SOCKET", &notify.path)
    .output()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let pid = read_pidfile(&scene.pidfile()).unwrap();
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );

    // on_user1 marked as a reload: RELOADING=1 with the monotonic time, then READY=1.
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    let reloading = notify.next();
    assert_eq!(reloading[0], "RELOADING=1");
    assert!(reloading[1].starts_with("MONOTONIC_USEC="), "{reloading:?}");
    assert_eq!(notify.next(), ["READY=1"]);
    scene.wait_event("user1", 1);
    // on_user2 is not a reload: nothing is said.
    assert_eq!(scene.helper(&["user2"]).1, "sent");
    scene.wait_event("user2", 1);

    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert_eq!(notify.next(), ["STOPPING=1"]);
    assert!(!is_alive(pid));
}

#[test]
fn the_foreground_mode_runs_the_daemon_in_the_supervised_process() {
    let scene = Scene::new("foreground");
    let notify = NotifySocket::bind(&scene.dir);
    let mut supervised = helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &["--leak-fds"],
        &["foreground"],
    )
    .env("NOTIFY_SOCKET", &notify.path)
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = supervised.id() as i32;
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );
    scene.wait_event(&format!("run {pid}"), 1);

    // No fork, no new session: the supervisor's child is the daemon.
    assert_eq!(read_pidfile(&scene.pidfile()), Some(pid));
    let stat = stat(pid).unwrap();
    assert_eq!(stat.ppid, std::process::id() as i32);
    // SAFETY: getsid only reads.
    assert_eq!(stat.session, unsafe { libc::getsid(0) });
    // Inherited descriptors stay (a supervisor hands over sockets), stdin is /dev/null.
    let fds = open_fds(pid);
    assert_eq!(fds[0].1, Path::new("/dev/null"));
    assert!(
        fds.iter()
            .filter(|(_, target)| target == Path::new("/dev/zero"))
            .count()
            >= 3,
        "{fds:?}"
    );

    // The other controllers see it as any daemon.
    assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("user1", 1);
    assert_eq!(
        scene.helper(&["start"]).1,
        format!(
            "error AlreadyRunning {pid}: already running (pid {pid}, pidfile {})",
            scene.pidfile().display()
        )
    );
    let (ok, line) = scene.helper_with(&[], &["foreground"]);
    assert!(
        !ok && line.starts_with(&format!("error AlreadyRunning {pid}")),
        "{line}"
    );

    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert_eq!(notify.next(), ["STOPPING=1"]);
    let status = supervised.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a stopped daemon exits 0");
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.events().iter().filter(|e| *e == "atexit").count(), 1);
}

#[test]
fn the_foreground_mode_reports_setup_failures_to_the_caller() {
    let scene = Scene::new("foreground-fails");
    let missing = scene.dir.join("missing");
    let (ok, line) = scene.helper_with(&["--workdir", missing.to_str().unwrap()], &["foreground"]);
    assert!(!ok);
    assert!(line.starts_with("error WorkdirMissing"), "{line}");
    assert!(!scene.pidfile().exists());
}

#[test]
fn start_stop_daemon_supervises_the_ticker_with_notify_await() {
    let ticker = ticker_binary().to_path_buf();
    let scene = Scene::new("ssd-notify");
    let pidfile = scene.pidfile();
    // start-stop-daemon forks, sets NOTIFY_SOCKET, and waits for READY=1: `ticker start`
    // sees it is supervised and runs in the foreground.
    let status = StdCommand::new("start-stop-daemon")
        .args([
            "--start",
            "--background",
            "--notify-await",
            "--notify-timeout",
            "30",
        ])
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--exec")
        .arg(&ticker)
        .arg("--")
        .args(scene.ticker_options())
        .arg("start")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "start-stop-daemon saw READY=1");
    let pid = read_pidfile(&pidfile).expect("the ticker holds its pidfile");
    assert!(is_alive(pid));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(
        exe, ticker,
        "the supervised process is the ticker itself, not a fork of it"
    );
    let status_line = scene.ticker_command(&["status"]).output().unwrap();
    let status_line = String::from_utf8_lossy(&status_line.stdout);
    assert!(
        status_line.starts_with(&format!("running (pid {pid}, since "))
            && status_line.contains(" UTC, up "),
        "{status_line}"
    );
    let stop = StdCommand::new("start-stop-daemon")
        .args(["--stop", "--retry", "TERM/10/KILL/5", "--pidfile"])
        .arg(&pidfile)
        .status()
        .unwrap();
    assert_eq!(stop.code(), Some(0));
    assert!(wait_gone(pid, HANG));
    assert!(scene.log_lines().iter().any(|line| line == "atexit"));
    assert!(!pidfile.exists());
}

#[test]
fn the_cli_starts_in_the_foreground_when_supervised_and_forks_when_told() {
    let scene = Scene::new("cli-supervised");
    let notify = NotifySocket::bind(&scene.dir);
    let pidfile = scene.pidfile();
    let run = |args: &[&str], notify_socket: bool| {
        let mut command = scene.ticker_command(args);
        if notify_socket {
            command.env("NOTIFY_SOCKET", &notify.path);
        }
        command
    };
    // --background under a supervisor: a forked daemon, which still notifies with its pid.
    let output = run(&["--background", "start"], true).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let pid = read_pidfile(&pidfile).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("started (pid {pid})\n")
    );
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );
    assert_eq!(
        run(&["stop"], false).output().unwrap().status.code(),
        Some(0)
    );
    assert_eq!(notify.next(), ["STOPPING=1"]);

    // Supervised, plain `start`: the CLI process itself becomes the daemon.
    let mut child = run(&["start"], true).stdout(Stdio::null()).spawn().unwrap();
    let pid = child.id() as i32;
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );
    assert_eq!(read_pidfile(&pidfile), Some(pid));
    assert_eq!(
        run(&["stop"], false).output().unwrap().status.code(),
        Some(0)
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_failed_foreground_start_leaves_the_process_as_it_was() {
    let scene = Scene::new("foreground-restore");
    let log = scene.log();
    let missing = scene.dir.join("missing").join("daemon.pid");
    // The pidfile's directory is missing: that step fails after output went to the log file.
    let output = StdCommand::new(env!("CARGO_BIN_EXE_deluxe-daemon-helper"))
        .arg("--pidfile")
        .arg(&missing)
        .arg("--log")
        .arg(&log)
        .args(["foreground-then-report"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The error reaches the caller's own output, and the caller is back as it was.
    assert!(stdout.contains("error Pidfile: pidfile "), "{stdout}");
    assert!(stdout.contains("its directory does not exist"), "{stdout}");
    assert!(
        stdout.contains("after: cwd unchanged, umask unchanged, SIGTERM unblocked"),
        "{stdout}"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains("error"),
        "the error went to the log file: {logged}"
    );
}
