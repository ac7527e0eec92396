//! Attacks on the daemon's life cycle, with real processes: `SIGKILL` at each step of
//! `start`, `stop` and their cleanup (of the controller, of the daemon, of both), a low
//! `RLIMIT_NOFILE`, `SIGCHLD` ignored by the controller, and a controller whose parent is, or
//! who is, pid 1.
//!
//! After each attack the pidfile is in one of its documented states, `status` says so, a
//! `start` then a `stop` work, and no process of the test is left (read from `/proc`). Exact
//! steps are hit through the daemon helper's gates (a `setup` or `atexit` that waits for a
//! file) and through `strace`'s fault injection (`-e inject=SYSCALL:signal=SIGKILL`, on the
//! system calls that touch the pidfile).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::time::Duration;

use crate::common::{
    HANG, Scene, eventually, helper_command, is_alive, live_processes_mentioning, read_pidfile,
    result_line, wait_gone, wrapped_helper_command,
};

const HELPER: &str = env!("CARGO_BIN_EXE_deluxe-daemon-helper");

/// Whether the machine has `program` (and root, for `unshare`); where it does not, the test is
/// skipped (`.ci/run` installs `strace` and util-linux, and makes a skip fail).
fn can_run(test: &str, program: &str, root: bool) -> bool {
    let has = crate::common::has_program(program);
    let ready = has && (!root || nix::unistd::geteuid().is_root());
    if !ready {
        let needs = if root {
            format!("needs root and {program}; run `bash .ci/run` as root")
        } else {
            format!("needs {program}; run `bash .ci/run`")
        };
        crate::common::skip(test, &needs);
    }
    ready
}

/// Starts the helper on the scene (stdout piped), without waiting for it.
fn spawn(scene: &Scene, options: &[&str], args: &[&str]) -> Child {
    helper_command(&scene.pidfile(), &scene.events_path(), options, args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a helper to end (bounded by [`HANG`]: reaching it is a hang); returns how it
/// ended and its result line.
fn finish(child: Child) -> (ExitStatus, String) {
    assert!(
        wait_gone(child.id() as i32, HANG),
        "the controller hangs (pid {})",
        child.id()
    );
    let output = child.wait_with_output().unwrap();
    (output.status, result_line(&output.stdout))
}

fn sigkill(pid: i32) {
    // SAFETY: kill only sends a signal, to a process of this test.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// The pid after `PREFIX` in a line such as `started 123` or `setup 123`.
fn pid_after(line: &str, prefix: &str) -> i32 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.split([' ', ':']).next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix}PID`, got {line:?}"))
}

/// The pid of the daemon once its `setup` hook runs (mode `setup-gate`).
fn wait_setup(scene: &Scene) -> i32 {
    eventually("setup in the events", || {
        scene
            .events()
            .iter()
            .find_map(|line| line.strip_prefix("setup ")?.parse::<i32>().ok())
            .ok_or_else(|| scene.events())
    })
}

/// Whether a status line is one of the documented answers.
fn documented(status: &str) -> bool {
    status.starts_with("status Running ")
        || status == "status Stopped"
        || status.starts_with("status Stale ")
}

/// No live process mentions the scene's directory (waited for: one may be exiting), and the
/// pidfile is gone or stale (a controller never removes one: the next start replaces it).
fn assert_nothing_left(scene: &Scene) {
    eventually("no process of the test left", || {
        let live = live_processes_mentioning(&scene.dir.to_string_lossy());
        if live.is_empty() { Ok(()) } else { Err(live) }
    });
    let status = scene.helper(&["status"]).1;
    assert!(
        status == "status Stopped" || status.starts_with("status Stale "),
        "pidfile left held: {status}"
    );
}

/// What every attack must leave: `status` answers a documented state, `start` then `stop`
/// work, and then nothing is left.
fn assert_recovers(scene: &Scene) {
    let (_, status) = scene.helper(&["status"]);
    assert!(documented(&status), "{status}");
    let (ok, line) = scene.helper(&["start"]);
    let pid = if ok {
        pid_after(&line, "started ")
    } else {
        pid_after(&line, "error AlreadyRunning ")
    };
    assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
    let (ok, line) = scene.helper(&["stop"]);
    assert!(ok && line.starts_with("stopped "), "{line}");
    assert!(wait_gone(pid, HANG));
    assert_nothing_left(scene);
}

// SIGKILL at each step of start.

#[test]
fn a_controller_killed_while_setup_runs_leaves_a_daemon_that_gets_ready_and_stops() {
    let scene = Scene::new("attack-ctl-setup");
    let controller = spawn(&scene, &["--mode", "setup-gate"], &["start"]);
    let daemon = wait_setup(&scene);
    sigkill(controller.id() as i32);
    let (status, _) = finish(controller);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // Locked and named in setup: reachable, and a second start finds it.
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Running {daemon}")
    );
    let (ok, line) = scene.helper(&["start"]);
    assert!(
        !ok && line.starts_with(&format!("error AlreadyRunning {daemon}:")),
        "{line}"
    );
    // Its controller is gone; the daemon finishes setting up and runs all the same.
    std::fs::write(scene.events_path().with_extension("gate"), "").unwrap();
    scene.wait_event(&format!("run {daemon}"), 1);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    scene.wait_event("atexit", 1);
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

#[test]
fn a_daemon_whose_setup_blocks_on_its_full_output_ends_at_the_start_timeout_without_its_controller()
{
    // `setup` prints more than the pipe to the log file holds (its pump starts after `setup`)
    // and blocks writing; its controller is killed. The daemon's own start bound ends it at
    // the start timeout all the same: its last word (to the log, through the same full pipe)
    // must not keep it from ending.
    let scene = Scene::new("attack-setup-flood");
    let log = scene.dir.join("log");
    let options = [
        "--mode",
        "setup-flood",
        "--count",
        "40000",
        "--log",
        log.to_str().unwrap(),
        "--start-timeout",
        "2000",
    ];
    let controller = spawn(&scene, &options, &["start"]);
    let daemon = wait_setup(&scene);
    sigkill(controller.id() as i32);
    let (status, _) = finish(controller);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(wait_gone(daemon, HANG), "the daemon {daemon} still hangs");
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

#[test]
fn a_daemon_started_by_a_ready_daemon_ends_at_its_start_timeout_when_that_one_dies() {
    // A ready daemon starts one of its own from `run` (a supervisor), whose `setup` hangs, and
    // is killed meanwhile: its daemon, whose controller is gone, ends itself at its start
    // timeout as any other. (It is a fork of a ready daemon: that one's "ready" is not its.)
    let scene = Scene::new("attack-nested-hang");
    let (status, line) = finish(spawn(&scene, &["--mode", "nested-hang"], &["start"]));
    assert!(status.success(), "{line}");
    let outer = pid_after(&line, "started ");
    let inner = wait_setup(&scene);
    assert_ne!(inner, outer);
    sigkill(outer);
    assert!(wait_gone(outer, HANG));
    assert!(
        wait_gone(inner, HANG),
        "the inner daemon {inner} still hangs"
    );
    assert_nothing_left(&scene);
}

#[test]
fn a_controller_killed_while_setup_hangs_leaves_a_daemon_that_stop_ends() {
    let scene = Scene::new("attack-ctl-setup-hang");
    let controller = spawn(&scene, &["--mode", "setup-gate"], &["start"]);
    let daemon = wait_setup(&scene);
    sigkill(controller.id() as i32);
    finish(controller);
    // The setup never ends and nobody times it out any more: `stop` must still end it (its
    // SIGTERM is noted, but `setup` does not return, so SIGKILL after the stop timeout).
    let (ok, line) = scene.helper_with(&["--stop-timeout", "200"], &["stop"]);
    assert!(ok && line == "stopped Killed", "{line}");
    assert!(wait_gone(daemon, HANG));
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

/// A `SIGTERM` while `setup` runs is a stop: the start fails with a typed error once `setup`
/// returns (before, the signal waited until the daemon was ready, `start` said "started",
/// and the daemon stopped right after), and nothing is left.
#[test]
fn a_sigterm_during_setup_fails_start_with_a_typed_error() {
    let scene = Scene::new("attack-term-setup");
    let controller = spawn(&scene, &["--mode", "setup-gate"], &["start"]);
    let daemon = wait_setup(&scene);
    // SAFETY: kill only sends a signal, to the daemon of this test.
    assert_eq!(unsafe { libc::kill(daemon, libc::SIGTERM) }, 0);
    // The handler has noted it (it is not pending, blocked, any more) before setup goes on.
    eventually("SIGTERM taken by the daemon", || {
        let status = std::fs::read_to_string(format!("/proc/{daemon}/status")).unwrap();
        let pending = status
            .lines()
            .find_map(|line| line.strip_prefix("ShdPnd:"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap());
        if pending == Some(0) {
            Ok(())
        } else {
            Err(pending)
        }
    });
    std::fs::write(scene.events_path().with_extension("gate"), "").unwrap();
    let (status, line) = finish(controller);
    assert_eq!(status.code(), Some(1), "{line}");
    assert!(
        line.starts_with("error StoppedDuringSetup: the daemon was asked to stop (SIGTERM)"),
        "{line}"
    );
    assert!(!scene.events().iter().any(|event| event.starts_with("run ")));
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

#[test]
fn a_daemon_killed_in_setup_fails_start_and_leaves_nothing() {
    let scene = Scene::new("attack-daemon-setup");
    let controller = spawn(&scene, &["--mode", "setup-gate"], &["start"]);
    sigkill(wait_setup(&scene));
    let (status, line) = finish(controller);
    assert_eq!(status.code(), Some(1), "{line}");
    assert!(line.starts_with("error DiedBeforeReady:"), "{line}");
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

/// Runs `strace -f` on the helper with `args`, killing every traced process at its first
/// `syscall` on the pidfile (strace counts per process). Returns how the helper ended and
/// its result line.
fn under_strace(scene: &Scene, syscall: &str, options: &[&str], args: &[&str]) -> (i32, String) {
    let strace: Vec<OsString> = ["strace", "-f", "-qq", "-o", "/dev/null", "-P"]
        .into_iter()
        .map(OsString::from)
        .chain([
            scene.pidfile().into_os_string(),
            format!("-etrace={syscall}").into(),
            format!("-einject={syscall}:signal=SIGKILL:when=1").into(),
        ])
        .collect();
    let output = wrapped_helper_command(
        &strace,
        &scene.pidfile(),
        &scene.events_path(),
        options,
        args,
    )
    .output()
    .unwrap();
    // strace ends the way its tracee did (killed: the same signal).
    let ended = output
        .status
        .code()
        .unwrap_or_else(|| 128 + output.status.signal().unwrap());
    (ended, result_line(&output.stdout))
}

#[test]
fn a_daemon_killed_at_each_step_of_taking_its_pidfile_fails_start_and_start_recovers() {
    if !can_run(
        "a_daemon_killed_at_each_step_of_taking_its_pidfile",
        "strace",
        false,
    ) {
        return;
    }
    // The daemon creates, locks and fills its pidfile under a private name: the one step at
    // the pidfile's path is the rename into place. Killed there, nothing is at the path (no
    // empty or unlocked pidfile, ever), and the next start works.
    let scene = Scene::new("attack-lock-rename");
    let (ended, line) = under_strace(&scene, "renameat2", &[], &["start"]);
    assert_eq!(ended, 1, "{line}");
    assert!(line.starts_with("error DiedBeforeReady:"), "{line}");
    assert!(!scene.pidfile().exists());
    assert_recovers(&scene);
    // Over a stale pidfile, the same: it stays stale, and is replaced by the next start.
    std::fs::write(scene.pidfile(), "").unwrap();
    let (ended, line) = under_strace(&scene, "renameat2", &[], &["start"]);
    assert_eq!(ended, 1, "{line}");
    assert!(line.starts_with("error DiedBeforeReady:"), "{line}");
    assert_eq!(scene.helper(&["status"]).1, "status Stale -");
    assert_recovers(&scene);
}

#[test]
fn controllers_and_daemons_killed_at_random_moments_of_start_leave_one_reachable_daemon_or_none() {
    let scene = Scene::new("attack-random");
    let mut state = u64::from(std::process::id()) | 1;
    let mut random = move |bound: u64| {
        // xorshift64: enough to pick moments and victims.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let dir = scene.dir.to_string_lossy().into_owned();
    for round in 0..24 {
        let controller = spawn(&scene, &[], &["start"]);
        let controller_pid = controller.id() as i32;
        // Not a wait for an event: the moment of the attack, anywhere in the start.
        std::thread::sleep(Duration::from_micros(random(20_000)));
        let kill_controller = random(2) == 0;
        if kill_controller {
            sigkill(controller_pid);
        } else {
            // The daemon's side: the intermediate process and the daemon, whichever exist.
            for pid in live_processes_mentioning(&dir) {
                if pid != controller_pid {
                    sigkill(pid);
                }
            }
        }
        let (status, line) = finish(controller);
        assert_ne!(status.code(), Some(101), "round {round}: a panic: {line}");
        if status.code().is_some() {
            assert!(
                line.starts_with("started ") || line.starts_with("error DiedBeforeReady:"),
                "round {round}: {line}"
            );
        }
        // What the attack left settles by itself into no process, or one daemon that is
        // running, reachable through its pidfile: never a daemon nobody can reach.
        eventually(format!("round {round} settled"), || {
            let live = live_processes_mentioning(&dir);
            match live.as_slice() {
                [] => Ok(()),
                [pid]
                    if scene.events().contains(&format!("run {pid}"))
                        && scene.helper(&["status"]).1 == format!("status Running {pid}") =>
                {
                    Ok(())
                }
                _ => Err((live, scene.helper(&["status"]).1)),
            }
        });
        assert_recovers(&scene);
    }
}

// SIGKILL at each step of stop and its cleanup.

#[test]
fn a_controller_killed_while_stop_waits_leaves_the_stop_to_the_next_one() {
    let scene = Scene::new("attack-ctl-stop");
    let daemon = scene.start(&["--mode", "stubborn"]);
    let controller = spawn(&scene, &["--stop-timeout", "600000"], &["stop"]);
    scene.wait_event("stop-ignored", 1);
    sigkill(controller.id() as i32);
    finish(controller);
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Running {daemon}")
    );
    let (ok, line) = scene.helper(&["start"]);
    assert!(
        !ok && line.starts_with(&format!("error AlreadyRunning {daemon}:")),
        "{line}"
    );
    let (ok, line) = scene.helper_with(&["--stop-timeout", "200"], &["stop"]);
    assert!(ok && line == "stopped Killed", "{line}");
    assert!(wait_gone(daemon, HANG));
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

#[test]
fn a_daemon_killed_after_the_stop_timeout_leaves_a_stale_pidfile_the_next_start_replaces() {
    let scene = Scene::new("attack-ctl-cleanup");
    let daemon = scene.start(&["--mode", "stubborn"]);
    // The controller SIGKILLs the daemon after the stop timeout, and leaves the pidfile the
    // daemon could not remove: removing it could remove a new daemon's.
    let (ok, line) = scene.helper_with(&["--stop-timeout", "200"], &["stop"]);
    assert!(ok && line == "stopped Killed", "{line}");
    assert!(wait_gone(daemon, HANG));
    assert_eq!(read_pidfile(&scene.pidfile()), Some(daemon));
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Stale {daemon}")
    );
    assert_recovers(&scene);
}

#[test]
fn a_daemon_killed_during_atexit_is_stopped_and_its_pidfile_removed() {
    let scene = Scene::new("attack-atexit");
    let daemon = scene.start(&["--mode", "atexit-gate"]);
    let controller = spawn(&scene, &[], &["stop"]);
    scene.wait_event("atexit-begin", 1);
    // Still the daemon while it shuts down.
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Running {daemon}")
    );
    sigkill(daemon);
    let (status, line) = finish(controller);
    assert!(status.success() && line.starts_with("stopped "), "{line}");
    assert!(!scene.events().contains(&"atexit".to_owned()));
    assert_nothing_left(&scene);
    assert_recovers(&scene);

    // The same with the controller killed first: the pidfile is left stale.
    let daemon = scene.start(&["--mode", "atexit-gate"]);
    let controller = spawn(&scene, &[], &["stop"]);
    scene.wait_event("atexit-begin", 2);
    sigkill(controller.id() as i32);
    finish(controller);
    sigkill(daemon);
    assert!(wait_gone(daemon, HANG));
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Stale {daemon}")
    );
    assert_recovers(&scene);
}

#[test]
fn a_daemon_killed_during_a_hook_leaves_a_stale_pidfile_that_every_call_handles() {
    let scene = Scene::new("attack-hook");
    let daemon = scene.start(&["--mode", "slow-hook", "--hook-ms", "600000"]);
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("user1-begin", 1);
    sigkill(daemon);
    assert!(wait_gone(daemon, HANG));
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Stale {daemon}")
    );
    let (ok, line) = scene.helper(&["user1"]);
    assert!(!ok && line.starts_with("error NotRunning:"), "{line}");
    assert_recovers(&scene);
}

// A low RLIMIT_NOFILE.

/// The helper under `prlimit --nofile=SOFT:` (the hard limit unchanged).
fn limited(scene: &Scene, soft: u32, options: &[&str], args: &[&str]) -> (ExitStatus, String) {
    let prlimit = ["prlimit".into(), format!("--nofile={soft}:").into()];
    let child = wrapped_helper_command(
        &prlimit,
        &scene.pidfile(),
        &scene.events_path(),
        options,
        args,
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    finish(child)
}

fn says_emfile(line: &str) -> bool {
    line.starts_with("error ") && line.contains("Too many open files (os error 24)")
}

#[test]
fn start_under_a_low_open_file_limit_works_or_says_emfile_and_leaves_nothing() {
    if !can_run("start_under_a_low_open_file_limit", "prlimit", false) {
        return;
    }
    let scene = Scene::new("attack-nofile-start");
    let log = scene.log();
    let log = log.to_str().unwrap();
    // What deluxe needs: the standard three, the pidfile, the signal pipe, the inotify watch,
    // and the report pipe while starting; with a log file, also the log, the output pipe and
    // the log pump's wake pipe: 8, or 12 with a log file (one more here, for a descriptor the
    // test harness passes on). Above that, a start works; below, it says EMFILE.
    for options in [&["--log", log][..], &[][..]] {
        let mut lowest_working = None;
        for soft in [16, 13, 12, 11, 9, 8, 7, 6, 5, 4] {
            let (status, line) = limited(&scene, soft, options, &["start"]);
            assert_ne!(status.code(), Some(101), "limit {soft}: a panic: {line}");
            if status.success() {
                let pid = pid_after(&line, "started ");
                assert!(
                    lowest_working.is_none_or(|lowest| lowest > soft),
                    "limit {soft} works, a higher one did not: {line}"
                );
                lowest_working = Some(soft);
                // Whole: every step of the start happened, the pidfile restore watch included.
                assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
                assert!(
                    std::fs::read_dir(format!("/proc/{pid}/fd"))
                        .unwrap()
                        .flatten()
                        .any(|fd| std::fs::read_link(fd.path())
                            .is_ok_and(|to| to.to_string_lossy().contains("inotify"))),
                    "limit {soft}: no pidfile watch"
                );
                assert_eq!(scene.helper(&["user1"]).1, "sent");
                assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
            } else {
                assert!(says_emfile(&line), "limit {soft}: {line}");
            }
            assert_nothing_left(&scene);
        }
        assert!(
            lowest_working.is_some_and(|lowest| lowest <= 13),
            "{options:?}: {lowest_working:?}"
        );
    }
}

/// The helper on the scene's pidfile and events, as words of a shell script (the scene's
/// paths hold no character a shell would take apart).
fn helper_in_shell(scene: &Scene) -> String {
    format!(
        "{HELPER} --pidfile {} --events {}",
        scene.pidfile().display(),
        scene.events_path().display()
    )
}

#[test]
fn an_inherited_descriptor_above_a_low_open_file_limit_is_not_kept_by_the_daemon() {
    if !can_run(
        "an_inherited_descriptor_above_a_low_open_file_limit",
        "bash",
        false,
    ) {
        return;
    }
    // `$(program start)` or `program start | ...`: the caller reads until every writer is
    // gone. Here the pipe is also open as descriptor 300, above the soft limit of 16, where
    // `dup2` cannot point it at /dev/null: the daemon must close it, not keep it.
    let scene = Scene::new("attack-nofile-inherit");
    let script = format!(
        "exec 300>&1; exec prlimit --nofile=16: {} start",
        helper_in_shell(&scene)
    );
    let mut caller = StdCommand::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(caller.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pid = pid_after(line.trim_end(), "started ");
    assert!(caller.wait().unwrap().success());
    let kept = std::fs::read_link(format!("/proc/{pid}/fd/300"));
    assert!(
        kept.is_err(),
        "the daemon keeps the caller's pipe: {kept:?}"
    );
    // So the caller sees the end of its output.
    assert_eq!(
        std::io::Read::read_to_string(&mut stdout, &mut line).unwrap(),
        0
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert_nothing_left(&scene);
}

#[test]
fn status_signals_and_stop_under_a_low_open_file_limit_say_emfile_and_signal_nothing() {
    if !can_run(
        "status_signals_and_stop_under_a_low_open_file_limit",
        "prlimit",
        false,
    ) {
        return;
    }
    let scene = Scene::new("attack-nofile-stop");
    let daemon = scene.start(&[]);
    let mut sent = 0;
    'limits: for soft in [6, 5, 4] {
        for action in ["status", "user1", "stop"] {
            let (status, line) = limited(&scene, soft, &[], &[action]);
            assert_ne!(status.code(), Some(101), "limit {soft} {action}: {line}");
            // The outcome when it could look; otherwise it says why, and signals nothing.
            match line.as_str() {
                "stopped Graceful" => break 'limits,
                "sent" => {
                    sent += 1;
                    scene.wait_event("user1", sent);
                }
                line if line == format!("status Running {daemon}") => {}
                line => {
                    assert!(says_emfile(line), "limit {soft} {action}: {line}");
                    assert!(
                        !line.contains("run the controller as root"),
                        "limit {soft} {action}: the wrong fix: {line}"
                    );
                    assert!(is_alive(daemon));
                    let hooks = scene.events().iter().filter(|e| *e == "user1").count();
                    assert_eq!(hooks, sent, "limit {soft} {action}");
                }
            }
        }
    }
    // Stopped with no limit, if no limited controller could.
    let _ = scene.helper(&["stop"]);
    assert!(wait_gone(daemon, HANG));
    assert_nothing_left(&scene);
}

#[test]
fn command_calls_under_a_low_open_file_limit_work_or_say_emfile() {
    if !can_run(
        "command_calls_under_a_low_open_file_limit",
        "prlimit",
        false,
    ) {
        return;
    }
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let mut lowest_working = None;
    for soft in [16, 8, 7, 6, 5, 4] {
        // `run-as` the account this process runs as: a direct call, no sudo.
        let child = StdCommand::new("prlimit")
            .arg(format!("--nofile={soft}:"))
            .args([env!("CARGO_BIN_EXE_deluxe-probe"), "run-as", &me])
            .args(["/bin/echo", "hi"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(wait_gone(child.id() as i32, HANG), "limit {soft}: a hang");
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "limit {soft}: {stdout} {stderr}");
        if stdout.trim_end() == "ok hi" {
            lowest_working = Some(soft);
        } else {
            assert_eq!(stdout.trim_end(), "error Io", "limit {soft}: {stderr}");
            assert!(
                stderr.contains("Too many open files (os error 24)"),
                "limit {soft}: {stderr}"
            );
        }
    }
    assert_eq!(lowest_working, Some(8));
}

// SIGCHLD ignored by the controller.

#[test]
fn a_controller_ignoring_sigchld_starts_stops_and_reports_failures() {
    let scene = Scene::new("attack-sigchld");
    let ignore = "--ignore-sigchld";
    let daemon = scene.start(&[ignore]);
    // The daemon does not inherit the ignoring: its own children's statuses are kept.
    let ignored = std::fs::read_to_string(format!("/proc/{daemon}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(
        ignored & (1 << (libc::SIGCHLD - 1)),
        0,
        "SigIgn {ignored:x}"
    );
    assert_eq!(
        scene.helper_with(&[ignore], &["status"]).1,
        format!("status Running {daemon}")
    );
    assert_eq!(scene.helper_with(&[ignore], &["user1"]).1, "sent");
    scene.wait_event("user1", 1);
    let (ok, line) = scene.helper_with(&[ignore], &["restart"]);
    assert!(ok, "{line}");
    let restarted = pid_after(&line, "restarted ");
    assert_ne!(restarted, daemon);
    assert_eq!(
        scene.helper_with(&[ignore], &["stop"]).1,
        "stopped Graceful"
    );
    assert_nothing_left(&scene);

    // Failures come back as well: a step that fails, and a daemon that dies before ready.
    let (ok, line) = scene.helper_with(&[ignore, "--workdir", "/nonexistent"], &["start"]);
    assert!(!ok && line.starts_with("error WorkdirMissing:"), "{line}");
    assert_nothing_left(&scene);
    let controller = spawn(&scene, &[ignore, "--mode", "setup-gate"], &["start"]);
    sigkill(wait_setup(&scene));
    let (_, line) = finish(controller);
    assert!(line.starts_with("error DiedBeforeReady:"), "{line}");
    assert_nothing_left(&scene);
    assert_recovers(&scene);
}

// pid 1 as the controller's parent, and as the controller.

/// Runs `sh -c SCRIPT` as pid 1 of a new PID namespace; returns its stdout.
fn in_pid_namespace(args: &[&str]) -> String {
    let output = StdCommand::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_controller_api_with_pid_1_as_parent_forks_and_returns() {
    if !can_run("the_controller_api_with_pid_1_as_parent", "unshare", true) {
        return;
    }
    // `sh` is pid 1 of the namespace and the helper's parent (a container's entry shell).
    let scene = Scene::new("attack-parent-pid1");
    let helper = helper_in_shell(&scene);
    let script = format!("{helper} start; {helper} status; {helper} user1; {helper} stop");
    let stdout = in_pid_namespace(&["sh", "-c", &script]);
    let lines: Vec<&str> = stdout.lines().collect();
    let [started, status, user1, stopped] = lines.as_slice() else {
        panic!("{stdout}");
    };
    let pid = pid_after(started, "started ");
    assert_eq!(*status, format!("status Running {pid}"));
    assert_eq!(*user1, "sent");
    assert_eq!(*stopped, "stopped Graceful");
    assert!(scene.events().contains(&"user1".to_owned()));
    assert_nothing_left(&scene);
}

#[test]
fn the_controller_api_as_pid_1_returns_and_its_daemon_ends_with_the_namespace() {
    if !can_run("the_controller_api_as_pid_1", "unshare", true) {
        return;
    }
    // `Controller::start` forks and returns even at pid 1; when pid 1 then exits, the kernel
    // kills every process of its namespace, the daemon too (as the README says: use
    // `run_foreground` there, as the CLI does). What is left is a stale pidfile, handled.
    let scene = Scene::new("attack-pid1");
    let pidfile = scene.pidfile();
    let events = scene.events_path();
    let stdout = in_pid_namespace(&[
        HELPER,
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "start",
    ]);
    let pid = pid_after(stdout.trim_end(), "started ");
    assert_nothing_left_but(&scene, pid);
    assert_recovers(&scene);
}

/// No process of the scene is left; the pidfile, if any, names `pid` and is stale.
fn assert_nothing_left_but(scene: &Scene, pid: i32) {
    eventually("the namespace gone", || {
        let live = live_processes_mentioning(&scene.dir.to_string_lossy());
        if live.is_empty() { Ok(()) } else { Err(live) }
    });
    let status = scene.helper(&["status"]).1;
    assert!(
        status == format!("status Stale {pid}") || status == "status Stopped",
        "{status}"
    );
}
