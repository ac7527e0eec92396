//! The daemon runtime against the real OS: a helper program (`deluxe-daemon-helper`) is the
//! controller and the daemon; these tests watch it through its pidfile, `/proc`, signals and
//! `start-stop-daemon`, as a user would. The test harness itself never forks a daemon.

use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    HANG, Scene, TEST_USER, has_sudo_setup, helper_as_test_user, helper_command, is_alive,
    live_processes_mentioning, open_fds, race_to_start, read_pidfile, result_line, stat, wait_gone,
};

/// An unrelated process: `sleep`, which any signal the tests could send would kill.
struct Bystander(std::process::Child);

impl Bystander {
    fn new() -> Self {
        Self(StdCommand::new("sleep").arg("1000").spawn().unwrap())
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn assert_untouched(&mut self) {
        assert!(
            self.0.try_wait().unwrap().is_none(),
            "the unrelated process was signalled"
        );
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_started_daemon_is_detached_and_set_up_as_asked() {
    let scene = Scene::new("setup");
    let workdir = scene.dir.join("work");
    std::fs::create_dir(&workdir).unwrap();
    let log = scene.log();
    let workdir_arg = workdir.to_str().unwrap();
    let log_arg = log.to_str().unwrap();
    let options = [
        "--workdir",
        workdir_arg,
        "--umask",
        "027",
        "--log",
        log_arg,
        "--leak-fds",
        "--mode",
        "chatty",
    ];
    let pid = scene.start(&options);
    scene.wait_event(&format!("run {pid}"), 1);

    let stat = stat(pid).unwrap();
    assert!(is_alive(pid));
    assert_ne!(stat.session, pid, "the daemon must not be a session leader");
    assert_eq!(stat.tty, 0, "the daemon must have no controlling terminal");
    assert_ne!(stat.ppid, std::process::id() as i32);
    // SAFETY: getsid only reads.
    assert_ne!(stat.session, unsafe { libc::getsid(0) });
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        workdir
    );

    // Stdio (stdout and stderr the pipe to the log pump), the pidfile, the log file and the
    // pipe's read end (the pump's), the two ends of the pipe the signal handler wakes the
    // signal thread through and the two of the one that wakes the pump, and the inotify watch
    // on the pidfile's directory, which puts a removed pidfile back, and the reload socket,
    // which answers reloads; the 3 descriptors the
    // controller left inheritable (and any the test harness passed on) are kept occupied by
    // /dev/null, so that no file the daemon opens can take their numbers.
    let fds = open_fds(pid);
    assert_eq!(fds[0], (0, PathBuf::from("/dev/null")));
    let output = fds[1].1.to_string_lossy().into_owned();
    assert!(output.starts_with("pipe:["), "{fds:?}");
    assert_eq!(fds[2].1, fds[1].1);
    // (The helper's `run` creates a probe file, open for an instant.)
    let rest: Vec<String> = fds[3..]
        .iter()
        .map(|(_, target)| target.to_string_lossy().into_owned())
        .filter(|target| target != "/dev/null" && !target.ends_with("umask-probe"))
        .collect();
    assert_eq!(rest.len(), 9, "{fds:?}");
    assert!(
        rest.contains(&scene.pidfile().to_string_lossy().into_owned()),
        "{fds:?}"
    );
    assert!(
        rest.contains(&log.to_string_lossy().into_owned()),
        "{fds:?}"
    );
    assert_eq!(
        rest.iter().filter(|t| **t == output).count(),
        1,
        "only the pump reads the pipe: {fds:?}"
    );
    assert_eq!(
        rest.iter().filter(|t| t.starts_with("pipe:[")).count(),
        5,
        "{fds:?}"
    );
    assert!(rest.contains(&"anon_inode:inotify".to_owned()), "{fds:?}");
    assert_eq!(
        rest.iter().filter(|t| t.starts_with("socket:[")).count(),
        1,
        "{fds:?}"
    );
    assert!(
        fds.iter()
            .filter(|(_, target)| target == Path::new("/dev/null"))
            .count()
            >= 4
    );
    // Those placeholders are close-on-exec: the programs the daemon starts do not get them.
    for (fd, _) in fds[3..]
        .iter()
        .filter(|(_, target)| target == Path::new("/dev/null"))
    {
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap();
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|flags| u32::from_str_radix(flags.trim(), 8).unwrap())
            .unwrap();
        assert_ne!(flags & libc::O_CLOEXEC as u32, 0, "fd {fd}: {info}");
    }

    // The umask applies to what the daemon creates; the pidfile is 0644 whatever the umask.
    // (`run` makes its probe file after recording that it runs: wait for it.)
    let probe = scene.events_path().with_extension("umask-probe");
    let made = crate::common::eventually("the daemon's umask probe file", || {
        std::fs::metadata(&probe)
    });
    assert_eq!(made.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::metadata(scene.pidfile())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
    assert_eq!(
        std::fs::read_to_string(scene.pidfile()).unwrap(),
        format!("{pid}\n")
    );

    // Output goes to the log file, from run and from hooks (which may use println!).
    assert_eq!(scene.helper(&["user1"]), (true, "sent".into()));
    scene.wait_event("user1", 1);
    let (ok, line) = scene.helper(&["stop"]);
    assert!(ok && line == "stopped Graceful", "{line}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("user1 1\n"), "{log_text}");
    assert!(log_text.contains("user1 on stderr\n"), "{log_text}");
}

#[test]
fn without_a_log_file_stdio_is_dev_null() {
    let scene = Scene::new("devnull");
    let pid = scene.start(&[]);
    let fds = open_fds(pid);
    for (fd, target) in &fds[..3] {
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

#[test]
fn status_follows_the_daemon_through_its_life() {
    let scene = Scene::new("status");
    assert_eq!(scene.helper(&["status"]), (true, "status Stopped".into()));
    assert_eq!(scene.helper(&["pid"]), (true, "pid -".into()));
    let pid = scene.start(&[]);
    assert_eq!(
        scene.helper(&["status"]),
        (true, format!("status Running {pid}"))
    );
    assert_eq!(scene.helper(&["pid"]), (true, format!("pid {pid}")));
    assert_eq!(scene.helper(&["stop"]), (true, "stopped Graceful".into()));
    assert!(!scene.pidfile().exists(), "the daemon removes its pidfile");
    assert!(!is_alive(pid));
    assert_eq!(scene.helper(&["status"]), (true, "status Stopped".into()));
    assert_eq!(
        scene.events(),
        [format!("run {pid}"), "run-returned".into(), "atexit".into()]
    );
}

#[test]
fn a_second_start_finds_the_daemon_running_and_changes_nothing() {
    let scene = Scene::new("twice");
    let pid = scene.start(&[]);
    let before = std::fs::metadata(scene.pidfile()).unwrap();
    for _ in 0..3 {
        let (ok, line) = scene.helper(&["start"]);
        assert!(!ok);
        assert!(
            line.starts_with(&format!(
                "error AlreadyRunning {pid}: already running (pid {pid}"
            )),
            "{line}"
        );
    }
    let after = std::fs::metadata(scene.pidfile()).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec(), before.len()),
        (after.ino(), after.mtime_nsec(), after.len())
    );
    assert_eq!(read_pidfile(&scene.pidfile()), Some(pid));
    assert_eq!(
        live_processes_mentioning(&scene.dir.to_string_lossy()),
        [pid]
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

#[test]
fn sixteen_racing_starts_make_exactly_one_daemon() {
    let scene = Scene::new("race16");
    let pid = race_to_start(&scene, 16, "round");
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(!is_alive(pid));
    let runs = scene
        .events()
        .iter()
        .filter(|e| e.starts_with("run "))
        .count();
    assert_eq!(runs, 1);
}

#[test]
fn a_killed_daemon_leaves_a_stale_pidfile_that_start_replaces() {
    let scene = Scene::new("stale");
    let pid = scene.start(&[]);
    // SAFETY: killing the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_gone(pid, HANG));
    assert_eq!(
        scene.helper(&["status"]),
        (true, format!("status Stale {pid}"))
    );
    assert_eq!(
        scene.helper(&["user1"]).1,
        format!(
            "error NotRunning: not running (no process holds pidfile {})",
            scene.pidfile().display()
        )
    );
    let new = scene.start(&[]);
    assert_ne!(new, pid);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert_eq!(
        scene.events().iter().filter(|e| *e == "atexit").count(),
        1,
        "SIGKILL skips atexit"
    );
}

#[test]
fn pidfiles_nobody_holds_are_never_signalled() {
    let scene = Scene::new("unheld");
    let mut bystander = Bystander::new();
    let contents = [
        String::new(),
        "garbage\n".into(),
        "-1\n".into(),
        "0\n".into(),
        format!("{}\n", bystander.pid()),
        format!("{}", bystander.pid()),
        "1\n".into(),
    ];
    for content in contents {
        std::fs::write(scene.pidfile(), &content).unwrap();
        let (ok, status) = scene.helper(&["status"]);
        assert!(
            ok && status.starts_with("status Stale"),
            "{content:?}: {status}"
        );
        assert!(!scene.helper(&["user1"]).0);
        assert!(!scene.helper(&["user2"]).0);
        assert_eq!(
            scene.helper(&["stop"]),
            (true, "stopped NotRunning".into()),
            "{content:?}"
        );
        assert_eq!(
            std::fs::read(scene.pidfile()).unwrap(),
            content.as_bytes(),
            "stop leaves a stale pidfile for the next start to replace"
        );
        bystander.assert_untouched();
        let pid = scene.start(&[]);
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
        assert!(!is_alive(pid));
        bystander.assert_untouched();
    }
}

#[test]
fn a_locked_pidfile_naming_another_process_is_never_signalled() {
    let scene = Scene::new("impostor");
    let mut bystander = Bystander::new();
    // This process holds the lock, but the pid written is the bystander's.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(scene.pidfile())
        .unwrap();
    std::fs::write(scene.pidfile(), format!("{}\n", bystander.pid())).unwrap();
    // SAFETY: a zeroed flock is "whole file"; then a write lock on the test's own file.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    // SAFETY: F_OFD_SETLK reads the flock.
    let locked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    assert_eq!(locked, 0);

    let (ok, line) = scene.helper(&["user1"]);
    assert!(
        !ok && line.contains("is locked, but not by the process it names"),
        "{line}"
    );
    let (ok, line) = scene.helper(&["stop"]);
    assert!(!ok && line.starts_with("error Pidfile"), "{line}");
    assert!(!scene.helper(&["start"]).0);
    bystander.assert_untouched();
    drop(file);
}

#[test]
fn a_symlinked_pidfile_is_refused_and_its_target_untouched() {
    let scene = Scene::new("symlink");
    let victim = scene.dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, scene.pidfile()).unwrap();
    for action in ["start", "status", "stop", "user1"] {
        let (ok, line) = scene.helper(&[action]);
        assert!(!ok, "{action}: {line}");
        assert!(line.starts_with("error Pidfile"), "{action}: {line}");
        assert!(line.contains("is a symbolic link"), "{action}: {line}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::symlink_metadata(scene.pidfile())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
}

#[test]
fn a_pidfile_that_is_a_directory_is_a_typed_error() {
    let scene = Scene::new("pidfile-dir");
    std::fs::create_dir(scene.pidfile()).unwrap();
    let (ok, line) = scene.helper(&["start"]);
    assert!(
        !ok && line.starts_with("error Pidfile") && line.contains("directory"),
        "{line}"
    );
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
}

#[test]
fn a_missing_workdir_is_a_typed_error_and_leaves_nothing() {
    let scene = Scene::new("no-workdir");
    let missing = scene.dir.join("missing");
    let (ok, line) = scene.helper_with(&["--workdir", missing.to_str().unwrap()], &["start"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!(
            "error WorkdirMissing: working directory {} does not exist; create it or choose another `workdir`",
            missing.display()
        )
    );
    assert!(!scene.pidfile().exists());
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
    assert!(scene.events().is_empty(), "run never started");
}

#[test]
fn a_pidfile_directory_the_user_cannot_write_is_a_typed_error() {
    if !has_sudo_setup("a_pidfile_directory_the_user_cannot_write_is_a_typed_error") {
        return;
    }
    let scene = Scene::new("unwritable");
    let locked_dir = scene.dir.join("root-only");
    std::fs::create_dir(&locked_dir).unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&locked_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pidfile = locked_dir.join("daemon.pid");
    // As an ordinary user, through deluxe's own Command.
    let helper = deluxe::command::Command::new(env!("CARGO_BIN_EXE_deluxe-daemon-helper"))
        .unwrap()
        .user(TEST_USER)
        .unwrap();
    let error = helper
        .call(["--pidfile", pidfile.to_str().unwrap(), "start"])
        .unwrap_err();
    let deluxe::command::CommandError::Exit { code: 1, .. } = &error else {
        panic!("{error:?}")
    };
    let output = helper
        .call_with(
            ["--pidfile", pidfile.to_str().unwrap(), "status"],
            &deluxe::command::CallOptions::new(),
        )
        .unwrap();
    assert_eq!(output, b"status Stopped\n");
    let (code, line) = helper_as_test_user(&pidfile, &["start"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        line,
        format!(
            "error Pidfile: pidfile {}: Permission denied (os error 13); choose a pidfile in a \
             directory this user can write, or run as root",
            pidfile.display()
        )
    );
    assert!(!pidfile.exists());
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
}

#[test]
fn a_daemon_ignoring_sigterm_is_killed_after_the_timeout() {
    let scene = Scene::new("stubborn");
    let pid = scene.start(&["--mode", "stubborn", "--stop-timeout", "700"]);
    scene.wait_event(&format!("run {pid}"), 1);
    let started = Instant::now();
    let (ok, line) = scene.helper_with(&["--stop-timeout", "700"], &["stop"]);
    assert!(ok && line == "stopped Killed", "{line}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "SIGKILL only after the timeout"
    );
    assert!(!is_alive(pid));
    // A controller never removes a pidfile: the killed daemon's is left stale.
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Stale {pid}"),
        "stop leaves the pidfile of a killed daemon stale"
    );
    assert!(scene.events().contains(&"stop-ignored".to_string()));
    assert!(
        !scene.events().contains(&"atexit".to_string()),
        "SIGKILL skips atexit"
    );
}

#[test]
fn a_run_ignoring_the_stop_request_gets_atexit_after_the_grace() {
    let scene = Scene::new("grace");
    let pid = scene.start(&["--mode", "ignore-stop", "--grace", "300"]);
    scene.wait_event(&format!("run {pid}"), 1);
    let (ok, line) = scene.helper_with(&["--stop-timeout", "20000"], &["stop"]);
    assert!(ok && line == "stopped GraceExpired", "{line}");
    assert!(!is_alive(pid));
    assert!(!scene.pidfile().exists());
    let events = scene.events();
    assert_eq!(
        events.iter().filter(|e| *e == "atexit").count(),
        1,
        "{events:?}"
    );
    assert!(events.contains(&"stop-ignored".to_string()));
}

#[test]
fn run_learns_when_the_stop_grace_ends_to_drain_within_it() {
    let scene = Scene::new("drain");
    let pid = scene.start(&["--mode", "drain", "--grace", "3000"]);
    scene.wait_event("deadline-before none", 1);
    let (ok, line) = scene.helper_with(&["--stop-timeout", "20000"], &["stop"]);
    assert!(ok && line == "stopped Graceful", "{line}");
    assert!(!is_alive(pid));
    let events = scene.events();
    let left: u64 = events
        .iter()
        .find_map(|e| e.strip_prefix("deadline-left "))
        .unwrap_or_else(|| panic!("run recorded the deadline: {events:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("a deadline, not none: {events:?}"));
    // What is left of a 3 s grace when run learns of the stop: some of it, never more.
    assert!(left > 0 && left <= 3000, "{events:?}");
}

#[test]
fn a_run_that_returns_ends_the_daemon_cleanly() {
    let scene = Scene::new("returns");
    let pid = scene.start_brief(&["--mode", "return"]);
    assert!(wait_gone(pid, HANG));
    scene.wait_event("atexit", 1);
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.events(), [format!("run {pid}"), "atexit".into()]);
    assert_eq!(scene.helper(&["status"]).1, "status Stopped");
}

#[test]
fn a_panic_in_run_runs_atexit_once_and_removes_the_pidfile() {
    let scene = Scene::new("panic-run");
    let log = scene.log();
    let pid = scene.start_brief(&["--mode", "panic-run", "--log", log.to_str().unwrap()]);
    assert!(wait_gone(pid, HANG));
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.events(), [format!("run {pid}"), "atexit".into()]);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("run gave up on purpose"), "{log_text}");
    assert!(
        log_text.contains(&format!(
            "deluxe[{pid}]: ERROR: run() panicked: run gave up on purpose; stopping"
        )),
        "{log_text}"
    );
}

#[test]
fn a_hand_written_run_that_returns_an_error_stops_the_daemon_as_a_panic_does() {
    // The helper implements `Daemon` by hand: its `run` returns `Err` at once.
    let scene = Scene::new("fail-run");
    let log = scene.log();
    let pid = scene.start_brief(&["--mode", "fail-run", "--log", log.to_str().unwrap()]);
    assert!(wait_gone(pid, HANG));
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.events(), [format!("run {pid}"), "atexit".into()]);
    let expected = format!("deluxe[{pid}]: ERROR: run() failed: run gave up on purpose; stopping");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains(&expected),
        "{expected}"
    );

    // In the foreground the helper is the daemon: its exit status is the daemon's.
    let scene = Scene::new("fail-run-foreground");
    let log = scene.log();
    let status = helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &["--mode", "fail-run", "--log", log.to_str().unwrap()],
        &["foreground"],
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(1));
    let events = scene.events();
    let [run, atexit] = &events[..] else {
        panic!("run, then atexit: {events:?}")
    };
    let pid = run.strip_prefix("run ").expect("run first");
    assert_eq!(atexit, "atexit");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("deluxe[{pid}]: ERROR: run() failed: run gave up on purpose; stopping\n")
    );
    assert!(!scene.pidfile().exists());
}

/// The cause a `Caused` error of the helper keeps in `source()` and leaves out of its message.
const CAUSE: &str = "No such file or directory (os error 2)";

#[test]
fn a_hand_written_setup_error_reaches_start_with_its_cause() {
    let scene = Scene::new("setup-caused");
    let (ok, line) = scene.helper_with(&["--mode", "setup-caused"], &["start"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!("error SetupFailed: the daemon's setup failed: cannot load config: {CAUSE}")
    );
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.helper(&["status"]).1, "status Stopped");
}

#[test]
fn a_hand_written_reload_error_reaches_the_controller_and_the_log_with_its_cause() {
    let scene = Scene::new("reload-caused");
    let log = scene.log();
    let pid = scene.start(&["--mode", "reload-caused", "--log", log.to_str().unwrap()]);
    let (ok, line) = scene.helper_with(&["--mode", "reload-caused"], &["reload"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!(
            "error ReloadFailed: the daemon (pid {pid}) failed to reload: cannot reload config: \
             {CAUSE}; it runs on as before: fix the problem and reload again"
        )
    );
    assert!(is_alive(pid));
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    let expected = format!(
        "deluxe[{pid}]: WARN: on_reload() failed: cannot reload config: {CAUSE}; still running"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains(&expected), "{log_text}");
}

#[test]
fn a_hand_written_run_error_is_logged_with_its_cause() {
    let scene = Scene::new("run-caused");
    let log = scene.log();
    let pid = scene.start_brief(&["--mode", "run-caused", "--log", log.to_str().unwrap()]);
    assert!(wait_gone(pid, HANG));
    scene.wait_event("atexit", 1);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("deluxe[{pid}]: ERROR: run() failed: run cannot go on: {CAUSE}; stopping\n")
    );
}

#[test]
fn a_panic_in_a_hook_stops_the_daemon_with_atexit_once() {
    let scene = Scene::new("panic-hook");
    let log = scene.log();
    let pid = scene.start(&["--mode", "panic-hook", "--log", log.to_str().unwrap()]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    assert!(wait_gone(pid, HANG));
    assert!(!scene.pidfile().exists());
    assert_eq!(
        scene.events(),
        [format!("run {pid}"), "run-returned".into(), "atexit".into()]
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains(&format!(
            "deluxe[{pid}]: ERROR: on_user1() panicked: on_user1 gave up on purpose; stopping"
        )),
        "{log_text}"
    );
}

#[test]
fn user_signals_reach_the_hooks_and_a_burst_does_not_kill() {
    let scene = Scene::new("hooks");
    let pid = scene.start(&[]);
    assert_eq!(scene.helper(&["user1"]), (true, "sent".into()));
    scene.wait_event("user1", 1);
    assert_eq!(scene.helper(&["user2"]), (true, "sent".into()));
    scene.wait_event("user2", 1);
    // 100 signals as fast as they can be sent: they may coalesce, never kill.
    for round in 0..100 {
        let signal = if round % 2 == 0 {
            libc::SIGUSR1
        } else {
            libc::SIGUSR2
        };
        // SAFETY: signalling the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
    assert_eq!(scene.helper(&["user1"]), (true, "sent".into()));
    scene.wait_event("user1", 2);
    assert!(is_alive(pid));
    assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert_eq!(scene.events().iter().filter(|e| *e == "atexit").count(), 1);
}

/// The events of each daemon's life, each ending with its `atexit`. (A hook may record itself
/// before `run` does: the daemon is ready, and takes signals, before `run` starts.)
fn lives(events: &[String]) -> Vec<&[String]> {
    events
        .split_inclusive(|event| event == "atexit")
        .filter(|life| life.last().is_some_and(|event| event == "atexit"))
        .collect()
}

#[test]
fn user_signals_sent_just_before_stop_run_their_hooks_before_atexit() {
    let scene = Scene::new("signals-then-stop");
    let rounds = 50;
    let (ok, line) = scene.helper(&["signals-then-stop", &rounds.to_string()]);
    assert_eq!((ok, line.as_str()), (true, "signals-then-stop 50"));
    let events = scene.events();
    let lives = lives(&events);
    assert_eq!(lives.len(), rounds, "{events:?}");
    for life in lives {
        for hook in ["user1", "user2"] {
            assert_eq!(
                life.iter().filter(|e| *e == hook).count(),
                1,
                "{hook} ran once before atexit: {life:?}"
            );
        }
    }
}

#[test]
fn a_user_signal_pending_with_a_lower_numbered_stop_signal_still_runs_its_hook() {
    // With SIGHUP, SIGUSR1, SIGUSR2 and a stop signal sent at once (SIGINT is delivered before
    // SIGUSR1; each may be taken by any of the daemon's threads), the hooks of the signals sent
    // first must run all the same. A hook may run before `run` has begun, so the hooks are
    // counted over the whole events file.
    let scene = Scene::new("signals-then-int");
    for (round, stop) in [libc::SIGINT, libc::SIGTERM]
        .into_iter()
        .cycle()
        .take(20)
        .enumerate()
    {
        let pid = scene.start(&[]);
        signal_then_stop(&scene, pid, stop, round);
    }
}

/// Sends the daemon `SIGHUP`, `SIGUSR1`, `SIGUSR2` and `stop` at once and checks, once it is
/// gone, that each hook and `atexit` have run `round + 1` times in the scene's life.
fn signal_then_stop(scene: &Scene, pid: i32, stop: libc::c_int, round: usize) {
    for signal in [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2, stop] {
        // SAFETY: signalling the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
    assert!(wait_gone(pid, HANG), "round {round}");
    let events = scene.events();
    for hook in ["reload", "user1", "user2", "atexit"] {
        assert_eq!(
            events.iter().filter(|event| *event == hook).count(),
            round + 1,
            "round {round}: {hook} in {events:?}"
        );
    }
}

#[test]
fn a_thread_blocking_every_signal_neither_loses_hooks_nor_holds_up_the_stop() {
    // On a stop the daemon waits for each of its threads to have noted the signals it took;
    // a thread that blocks them all for good takes none and is not waited on forever.
    let scene = Scene::new("blocking-thread");
    for round in 0..3 {
        let pid = scene.start(&["--mode", "blocking-thread"]);
        scene.wait_event("blocking-thread", round + 1);
        signal_then_stop(&scene, pid, libc::SIGTERM, round);
    }
}

#[test]
fn a_hook_running_at_stop_finishes_before_atexit_and_the_grace_bounds_it() {
    let scene = Scene::new("slow-hook");
    // A hook of 300 ms within a grace of a minute: the stop waits for it.
    let pid = scene.start(&[
        "--mode",
        "slow-hook",
        "--hook-ms",
        "300",
        "--grace",
        "60000",
    ]);
    assert_eq!(scene.helper(&["user1"]), (true, "sent".into()));
    scene.wait_event("user1-begin", 1);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(!is_alive(pid));
    let events = scene.events();
    let finished = events
        .iter()
        .position(|e| e == "user1")
        .expect("the hook finished");
    let atexit = events.iter().position(|e| e == "atexit").unwrap();
    assert!(finished < atexit, "{events:?}");
    // A hook that would take an hour, with a grace of 200 ms: the daemon exits all the same,
    // with atexit, without the hook's end.
    let pid = scene.start(&[
        "--mode",
        "slow-hook",
        "--hook-ms",
        "3600000",
        "--grace",
        "200",
        "--stop-timeout",
        "60000",
    ]);
    assert_eq!(scene.helper(&["user1"]), (true, "sent".into()));
    scene.wait_event("user1-begin", 2);
    let (ok, line) = scene.helper(&["stop"]);
    assert!(ok, "{line}");
    assert!(wait_gone(pid, HANG));
    let events = scene.events();
    assert_eq!(
        events.iter().filter(|e| *e == "atexit").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "user1").count(),
        1,
        "{events:?}"
    );
}

#[test]
fn restart_replaces_the_daemon_without_overlap() {
    let scene = Scene::new("restart");
    let first = scene.start(&[]);
    let (ok, line) = scene.helper(&["restart"]);
    assert!(ok, "{line}");
    let second: i32 = line.strip_prefix("restarted ").unwrap().parse().unwrap();
    assert_ne!(first, second);
    assert!(!is_alive(first));
    assert_eq!(read_pidfile(&scene.pidfile()), Some(second));
    assert_eq!(
        live_processes_mentioning(&scene.dir.to_string_lossy()),
        [second]
    );
    scene.wait_event(&format!("run {second}"), 1);
    // The old daemon had finished (atexit) before the new one ran.
    let events = scene.events();
    let atexit = events.iter().position(|e| e == "atexit").unwrap();
    let new_run = events
        .iter()
        .position(|e| *e == format!("run {second}"))
        .unwrap();
    assert!(atexit < new_run, "{events:?}");
    // restart also starts a stopped daemon.
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    let (ok, line) = scene.helper(&["restart"]);
    assert!(ok && line.starts_with("restarted "), "{line}");
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

#[test]
fn starting_from_a_busy_multithreaded_process_never_hangs() {
    let scene = Scene::new("busy");
    let helper = helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &["--busy-threads", "--mode", "chatty"],
        &["cycles", "200"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = helper.id() as i32;
    assert!(
        wait_gone(pid, Duration::from_secs(600)),
        "200 start/stop cycles from a busy process hung; events: {}",
        scene.events().len()
    );
    let output = helper.wait_with_output().unwrap();
    assert_eq!(result_line(&output.stdout), "cycles 200");
    assert_eq!(
        scene.events().iter().filter(|e| *e == "atexit").count(),
        200
    );
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
}

#[test]
fn start_stop_daemon_works_on_our_pidfile() {
    let scene = Scene::new("ssd");
    let ssd = |args: &[&str]| scene.start_stop_daemon(args);
    assert_eq!(ssd(&["--status"]), Some(3), "no pidfile: not running");
    let pid = scene.start(&[]);
    assert_eq!(ssd(&["--status"]), Some(0));
    assert_eq!(ssd(&["--stop", "--signal", "USR1"]), Some(0));
    scene.wait_event("user1", 1);
    assert!(is_alive(pid));
    assert_eq!(ssd(&["--stop", "--retry", "TERM/5/KILL/5"]), Some(0));
    assert!(!is_alive(pid));
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.events().iter().filter(|e| *e == "atexit").count(), 1);
    assert_eq!(ssd(&["--status"]), Some(3));
}

#[test]
fn the_portable_path_signals_and_waits_without_pidfds() {
    let scene = Scene::new("portable");
    let pid = scene.start(&["--portable"]);
    assert_eq!(
        scene.helper_with(&["--portable"], &["user1"]),
        (true, "sent".into())
    );
    scene.wait_event("user1", 1);
    assert_eq!(
        scene.helper_with(&["--portable"], &["stop"]),
        (true, "stopped Graceful".into())
    );
    // The lock is released as the process exits, a moment before it is a zombie.
    assert!(wait_gone(pid, HANG));
    let pid = scene.start(&["--mode", "stubborn"]);
    scene.wait_event(&format!("run {pid}"), 1);
    let (ok, line) = scene.helper_with(&["--portable", "--stop-timeout", "300"], &["stop"]);
    assert!(ok && line == "stopped Killed", "{line}");
    assert!(wait_gone(pid, HANG));
    assert_eq!(scene.helper(&["status"]).1, format!("status Stale {pid}"));
}

#[test]
fn a_daemon_can_start_a_daemon_of_its_own() {
    let scene = Scene::new("nested");
    let pid = scene.start(&["--mode", "nested"]);
    scene.wait_events("the daemon's own start() and stop()", |events| {
        events
            .iter()
            .any(|e| e.starts_with("nested stopped") || e.starts_with("nested failed"))
    });
    let events = scene.events();
    assert!(
        events.iter().any(|e| e.starts_with("nested started ")),
        "{events:?}"
    );
    assert!(
        events.contains(&"nested stopped Graceful".to_owned()),
        "{events:?}"
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
}

#[test]
fn a_start_timeout_of_duration_max_means_no_limit() {
    // `Duration::MAX` cannot be added to the clock: it is no deadline, not a panic, for the
    // start from a program of one thread and for the one from a program with others.
    for options in [&[][..], &["--idle-thread"][..]] {
        let scene = Scene::new("start-timeout-max");
        let (ok, line) =
            scene.helper_with(&[&["--start-timeout", "max"], options].concat(), &["start"]);
        assert!(ok && line.starts_with("started "), "{options:?}: {line}");
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    }
}

/// Every `Duration` the daemon's settings take at its maximum, for real: a start and a stop,
/// with a hook run between them. `stop_timeout(Duration::MAX)` with a normal grace leaves the
/// daemon's children `Duration::MAX / 2` at its exit: before, that deadline overflowed and the
/// exit panicked (the pidfile left behind; after a hook, a daemon that never exits and a
/// `stop` that gives up only at its own timeout, with SIGKILL).
#[test]
fn every_duration_setting_at_its_maximum_starts_and_stops() {
    let scene = Scene::new("durations-max");
    let log = scene.log();
    let pid = scene.start(&[
        "--stop-timeout",
        "max",
        "--start-timeout",
        "max",
        "--grace",
        "60000",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("user1", 1);
    // This controller's own stop timeout is the default: a daemon that never exits ends in
    // SIGKILL ("stopped Killed"), not in a hang of the test.
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    scene.wait_event("atexit", 1);
    assert!(!scene.pidfile().exists());
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.contains("panicked"), "{logged}");
    // With the grace at its maximum too (`run` waited for however long).
    let pid = scene.start(&["--stop-timeout", "max", "--grace", "max"]);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    assert!(!scene.pidfile().exists());
}
