//! What another local user, a crash or an odd environment can do to a daemon, tried for real:
//! files planted at the log path, children started with `system()`, workers forked without
//! `exec`, `stop` called from inside the daemon, a parent that is pid 1, and a controller
//! that printed without a newline, a removed pidfile.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use crate::common::{
    self, HANG, NOLOGIN_USER, Scene, TEST_USER, has_sudo_setup, is_alive, read_pidfile, wait_gone,
};

/// Runs `command` as the test user and checks it worked.
fn as_test_user(command: &str) {
    let status = StdCommand::new("sudo")
        .args(["-n", "-u", TEST_USER, "sh", "-c", command])
        .status()
        .unwrap();
    assert!(status.success(), "as {TEST_USER}: {command}");
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

/// A scene whose directory the test user owns (so it can plant files there), mode 0755.
fn scene_for_test_user(name: &str) -> Scene {
    let scene = Scene::new(name);
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    nix::unistd::chown(&scene.dir, Some(user.uid), Some(user.gid)).unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    scene
}

fn start_with_log(scene: &Scene, log: &Path, options: &[&str]) -> (bool, String) {
    let mut all = vec!["--log", log.to_str().unwrap()];
    all.extend_from_slice(options);
    scene.helper_with(&all, &["start"])
}

#[test]
fn a_log_symlink_planted_by_another_user_is_refused_and_its_target_untouched() {
    if !has_sudo_setup("a_log_symlink_planted_by_another_user_is_refused") {
        return;
    }
    let scene = scene_for_test_user("log-symlink");
    let victim = Scene::new("log-symlink-victim");
    let target = victim.dir.join("root-only");
    std::fs::write(&target, "root's file\n").unwrap();
    let log = scene.dir.join("daemon.log");
    as_test_user(&format!("ln -s {} {}", target.display(), log.display()));
    for options in [&["--user", TEST_USER][..], &[]] {
        let (ok, line) = start_with_log(&scene, &log, options);
        assert!(!ok, "{line}");
        assert!(
            line.starts_with("error UnsafeLogFile: log file")
                && line.contains("is a symbolic link"),
            "{line}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's file\n");
        assert!(!scene.pidfile().exists());
    }
}

#[test]
fn a_fifo_at_the_log_path_fails_at_once_instead_of_blocking_start() {
    let scene = Scene::new("log-fifo");
    let log = scene.dir.join("daemon.log");
    nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    // The start timeout is 10 s by default: a blocking open would be a StartTimeout.
    let (ok, line) = start_with_log(&scene, &log, &[]);
    assert!(!ok);
    assert!(
        line.starts_with("error UnsafeLogFile:") && line.contains("is not a regular file"),
        "{line}"
    );
    assert!(!scene.pidfile().exists());
}

#[test]
fn a_hard_linked_log_and_a_log_of_another_user_are_refused() {
    if !has_sudo_setup("a_hard_linked_log_and_a_log_of_another_user_are_refused") {
        return;
    }
    let scene = Scene::new("log-links");
    let victim = scene.dir.join("victim");
    std::fs::write(&victim, "").unwrap();
    let log = scene.dir.join("daemon.log");
    std::fs::hard_link(&victim, &log).unwrap();
    let (ok, line) = start_with_log(&scene, &log, &[]);
    assert!(!ok && line.contains("has more than one link"), "{line}");
    std::fs::remove_file(&log).unwrap();

    // Owned by a third account: neither root nor the daemon's user.
    std::fs::write(&log, "").unwrap();
    nix::unistd::chown(
        &log,
        Some(nix::unistd::Uid::from_raw(uid_of(NOLOGIN_USER))),
        None,
    )
    .unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for options in [&["--user", TEST_USER][..], &[]] {
        let (ok, line) = start_with_log(&scene, &log, options);
        assert!(
            !ok && line.contains("belongs to a user other than root and the daemon's user"),
            "{line}"
        );
    }
    assert!(std::fs::read(&log).unwrap().is_empty());
}

#[test]
fn a_new_log_is_private_and_belongs_to_the_daemon_user() {
    if !has_sudo_setup("a_new_log_is_private_and_belongs_to_the_daemon_user") {
        return;
    }
    let scene = Scene::new("log-new");
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let log = scene.dir.join("daemon.log");
    let (ok, line) = start_with_log(&scene, &log, &["--user", TEST_USER]);
    assert!(ok, "{line}");
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), uid_of(TEST_USER));
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    // An existing log owned by the daemon's user is used as it is.
    let (ok, line) = start_with_log(&scene, &log, &["--user", TEST_USER]);
    assert!(ok, "{line}");
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

/// A field of `/proc/PID/status`, such as `SigBlk`.
fn status_field(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| {
            Some(
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap()
}

/// The pid recorded as `WAY PID` in the scene's events.
fn recorded_pid(scene: &Scene, way: &str) -> i32 {
    scene
        .events()
        .iter()
        .find_map(|event| event.strip_prefix(&format!("{way} "))?.parse().ok())
        .unwrap_or_else(|| panic!("no `{way} PID` in {:?}", scene.events()))
}

/// The children the daemon helper started (`forked`, `spawned`, `system`: `sleep 600`) have an
/// empty mask and default dispositions, and die of `SIGTERM`; so does a `worker` forked
/// without `exec`, if one is named.
fn assert_clean_children(scene: &Scene, ways: &[&str]) {
    for way in ways {
        let child = recorded_pid(scene, way);
        if *way != "worker" {
            // Once it runs `sleep` (the fork has exec'd), its mask and handlers are the clean ones.
            common::eventually("the child running sleep", || {
                let comm = std::fs::read_to_string(format!("/proc/{child}/comm"));
                match comm {
                    Ok(comm) if comm == "sleep\n" => Ok(()),
                    other => Err(other.map_err(|error| error.to_string())),
                }
            });
        }
        // However it was started (fork, posix_spawn through std's Command, glibc's system(),
        // fork without exec), nothing is blocked: SIGUSR1 and SIGUSR2 neither, though the
        // daemon handles them.
        let blocked = u64::from_str_radix(&status_field(child, "SigBlk"), 16).unwrap();
        assert_eq!(blocked, 0, "{way}: {blocked:#x}");
        let caught = u64::from_str_radix(&status_field(child, "SigCgt"), 16).unwrap();
        if *way == "worker" {
            // A copy of the daemon: the C library's own handlers (glibc's SIGSETXID) stay;
            // none of the daemon's (HUP, INT, USR1, USR2, TERM: 0x4a03) does.
            assert_eq!(caught & 0x4a03, 0, "{way}: {caught:#x}");
        } else {
            assert_eq!(caught, 0, "{way}: {caught:#x}");
        }
        // SAFETY: signalling the child this test's daemon started.
        assert_eq!(unsafe { libc::kill(child, libc::SIGTERM) }, 0);
        assert!(
            wait_gone(child, HANG),
            "SIGTERM did not end the {way} child"
        );
    }
}

#[test]
fn a_program_the_daemon_starts_has_a_clean_signal_mask_and_dies_of_sigterm() {
    let scene = Scene::new("child-mask");
    let pid = scene.start(&["--mode", "fork-exec-child"]);
    scene.wait_event("child", 1);
    assert_clean_children(&scene, &["forked", "spawned", "system"]);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(!is_alive(pid));
}

#[test]
fn a_program_setup_starts_has_a_clean_signal_mask_and_dies_of_sigterm() {
    let scene = Scene::new("setup-child-mask");
    // Started before "ready": `start` has returned, so they are all recorded.
    let pid = scene.start(&["--setup-children"]);
    assert_clean_children(&scene, &["forked", "spawned", "system", "worker"]);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(!is_alive(pid));
}

/// The OOM killer takes the daemon `pid`; its `worker` (forked without `exec`) lives on, but
/// holds no copy of the pidfile's lock: the pidfile is stale, and a new daemon starts (and is
/// stopped).
fn assert_a_killed_daemon_leaves_its_worker_and_a_stale_pidfile(
    scene: &Scene,
    pid: i32,
    worker: i32,
) {
    assert!(is_alive(worker));
    // SAFETY: killing the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(wait_gone(pid, HANG));
    assert!(is_alive(worker));
    assert_eq!(scene.helper(&["status"]).1, format!("status Stale {pid}"));
    let (ok, line) = scene.helper(&["start"]);
    assert!(ok, "a start after the crash must start a daemon: {line}");
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

/// `setup` forked a worker without `exec` that never exits: `start` returned at "ready" all the
/// same (before, it waited for the worker to close its copy of the readiness pipe, the whole
/// start timeout), and the worker holds no copy of the pidfile's lock: once the daemon is
/// killed, its pidfile is stale and a new daemon starts.
#[test]
fn a_worker_forked_in_setup_neither_holds_start_nor_keeps_a_killed_daemon_alive() {
    let scene = Scene::new("setup-worker");
    let (ok, line) = scene.helper(&["--setup-children", "start"]);
    assert!(ok, "{line}");
    let pid = scene.pid();
    let worker = recorded_pid(&scene, "worker");
    assert_a_killed_daemon_leaves_its_worker_and_a_stale_pidfile(&scene, pid, worker);
    for way in ["forked", "spawned", "system", "worker"] {
        let child = recorded_pid(&scene, way);
        // SAFETY: killing the children this test's first daemon started.
        unsafe { libc::kill(child, libc::SIGKILL) };
        assert!(wait_gone(child, HANG), "{way}");
    }
}

/// A start that fails (`setup` fails, or it outlives the start timeout) leaves nothing of
/// itself running, `setup`'s processes included: when `start` returns they are gone, and the
/// port the worker held is free for the next start.
#[test]
fn a_failed_start_ends_what_setup_started() {
    for (mode, timeout, error) in [
        ("setup-fails", "20000", "error SetupFailed:"),
        ("setup-gate", "3000", "error StartTimeout:"),
    ] {
        let scene = Scene::new(&format!("setup-children-{mode}"));
        let (ok, line) = scene.helper(&[
            "--setup-children",
            "--mode",
            mode,
            "--start-timeout",
            timeout,
            "start",
        ]);
        assert!(!ok && line.starts_with(error), "{mode}: {line}");
        scene.wait_event("setup-children", 1);
        for way in ["forked", "spawned", "system", "worker"] {
            let child = recorded_pid(&scene, way);
            assert!(
                !is_alive(child),
                "{mode}: the {way} child outlived the start"
            );
        }
        let port: u16 = recorded_pid(&scene, "port").try_into().unwrap();
        std::net::TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|error| panic!("{mode}: port {port} still held: {error}"));
        // Removed by the daemon that failed; left stale by the one killed at the timeout (a
        // controller never removes a pidfile): never held.
        let status = scene.helper(&["status"]).1;
        assert!(
            status == "status Stopped" || status.starts_with("status Stale "),
            "{mode}: {status}"
        );
    }
}

#[test]
fn a_worker_forked_without_exec_does_not_keep_a_killed_daemon_alive() {
    let scene = Scene::new("fork-worker");
    let pid = scene.start(&["--mode", "fork-worker"]);
    let worker: i32 = common::eventually("the worker's pid", || {
        let events = scene.events();
        events
            .iter()
            .find_map(|event| event.strip_prefix("worker ")?.parse().ok())
            .ok_or(events)
    });
    assert_a_killed_daemon_leaves_its_worker_and_a_stale_pidfile(&scene, pid, worker);
    // SAFETY: killing the worker this test's daemon forked.
    unsafe { libc::kill(worker, libc::SIGKILL) };
    assert!(wait_gone(worker, HANG));
}

#[test]
fn stop_called_inside_the_daemon_asks_for_a_stop_and_returns() {
    let scene = Scene::new("stop-self");
    // The daemon may be gone before `start` is checked: take the pid from the start's line.
    let (ok, line) = scene.helper_with(&["--mode", "stop-self"], &["start"]);
    assert!(ok, "{line}");
    let pid: i32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    assert!(wait_gone(pid, HANG), "the daemon never stopped");
    let events = scene.events();
    let position = |event: &str| events.iter().position(|e| e == event);
    assert!(position("self-stop Requested").is_some(), "{events:?}");
    assert!(position("stop-seen") < position("atexit"), "{events:?}");
    assert_eq!(events.iter().filter(|e| *e == "atexit").count(), 1);
    assert!(!scene.pidfile().exists());
}

#[test]
fn what_the_controller_printed_before_start_stays_out_of_the_daemon_log() {
    let scene = Scene::new("flush");
    let log = scene.dir.join("daemon.log");
    let output = common::helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &["--log", log.to_str().unwrap(), "--print-before-start"],
        &["start"],
    )
    .output()
    .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("Starting... started "));
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("Starting..."), "{logged:?}");
}

#[test]
fn start_from_a_program_whose_parent_is_pid_1_forks_and_returns() {
    if !has_sudo_setup("start_from_a_program_whose_parent_is_pid_1_forks_and_returns") {
        return;
    }
    // In a new pid namespace `sh` is pid 1 and the ticker's parent: the ticker must still
    // fork and return (as under a container's entry shell or `Type=forking`).
    let scene = Scene::new("parent-pid-1");
    let pidfile = scene.pidfile();
    let ticker = common::ticker_binary();
    let script = format!(
        "{t} --pidfile {p} start; echo start=$?; {t} --pidfile {p} status; echo status=$?; \
         {t} --pidfile {p} stop; echo stop=$?",
        t = ticker.display(),
        p = pidfile.display()
    );
    let output = StdCommand::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("start=0\n"), "{stdout}");
    assert!(stdout.contains("status=0\n"), "{stdout}");
    assert!(stdout.contains("stop=0\n"), "{stdout}");
    assert_eq!(read_pidfile(&pidfile), None);
}

#[test]
fn a_removed_or_renamed_pidfile_is_restored_at_once() {
    let scene = Scene::new("pidfile-restore");
    let log = scene.dir.join("daemon.log");
    let (ok, line) = start_with_log(&scene, &log, &[]);
    assert!(ok, "{line}");
    let pid: i32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    // When the daemon started, as `status` reports it (`since`): the pidfile's mtime.
    let started = std::fs::metadata(scene.pidfile())
        .unwrap()
        .modified()
        .unwrap();
    for (round, removal) in ["rm", "mv"].into_iter().enumerate() {
        let before = std::fs::metadata(scene.pidfile()).unwrap().ino();
        match removal {
            "rm" => std::fs::remove_file(scene.pidfile()).unwrap(),
            _ => std::fs::rename(scene.pidfile(), scene.dir.join("moved.pid")).unwrap(),
        }
        // A tmp cleaner removed it: the daemon puts a new one, locked, in its place.
        let restored = common::eventually("the pidfile back in place", || {
            let meta = std::fs::metadata(scene.pidfile()).map_err(|error| error.to_string())?;
            let holds = read_pidfile(&scene.pidfile());
            if meta.ino() != before && holds == Some(pid) {
                Ok(meta)
            } else {
                Err(format!("inode {}, pid {holds:?}", meta.ino()))
            }
        });
        assert_eq!(restored.mode() & 0o777, 0o644);
        assert_eq!(
            restored.modified().unwrap(),
            started,
            "the start time is kept"
        );
        assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
        if removal == "mv" {
            // The moved file is no longer the daemon's: released, stale.
            let moved = scene.dir.join("moved.pid");
            let line = common::helper_command(&moved, &scene.events_path(), &[], &["status"])
                .output()
                .map(|output| common::result_line(&output.stdout))
                .unwrap();
            assert_eq!(line, format!("status Stale {pid}"));
        }
        // A second start still finds it running: no second daemon.
        let (ok, line) = scene.helper(&["start"]);
        assert!(
            !ok && line.starts_with(&format!("error AlreadyRunning {pid}")),
            "{line}"
        );
        let logged = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            logged.matches("was removed; restored it").count(),
            round + 1,
            "{logged}"
        );
    }
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(
        !scene.pidfile().exists(),
        "the daemon removes its pidfile as it exits"
    );
}

/// A helper process that is killed if the test fails before it exits.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a process writes to `stderr`, read on a thread as they come.
fn lines_of(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// The next line; fails the test after [`HANG`] without one (a hang, not slowness).
fn next_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(HANG)
        .unwrap_or_else(|error| panic!("no line {what} from the helper: {error}"))
}

#[test]
fn start_while_another_thread_is_blocked_writing_to_stdout_is_output_busy() {
    let scene = Scene::new("stdout-blocked");
    // A pipe the test does not read until told below: the helper's printer fills it and
    // blocks inside `write`, holding std's stdout lock.
    let mut helper = Running(
        common::helper_command(
            &scene.pidfile(),
            &scene.events_path(),
            &["--start-timeout", "3000"],
            &["start-while-stdout-blocked"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut stdout = helper.0.stdout.take().unwrap();
    let lines = lines_of(helper.0.stderr.take().unwrap());
    assert_eq!(next_line(&lines, "saying stdout is full"), "stdout-full");
    let first = next_line(&lines, "with the first start's outcome");
    assert!(first.starts_with("first error OutputBusy: "), "{first}");
    // Nothing was started: no daemon, no pidfile, no process but the helper.
    assert!(!scene.pidfile().exists());
    assert_eq!(scene.helper(&["status"]).1, "status Stopped");
    assert_eq!(
        common::live_processes_mentioning(scene.dir.to_str().unwrap()),
        vec![helper.0.id() as i32]
    );
    // Read the pipe: the printer goes on, the thread the first start left waiting gets the
    // locks and ends without forking, and a new start works (the printer printing on).
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    assert_eq!(next_line(&lines, "after the pipe is read"), "threads back");
    let second = next_line(&lines, "with the second start's outcome");
    let pid: i32 = second
        .strip_prefix("second started ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{second}"));
    assert_eq!(next_line(&lines, "with the stop"), "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    assert!(helper.0.wait().unwrap().success());
    assert!(!scene.pidfile().exists());
}

#[test]
fn a_thread_printing_without_pause_does_not_keep_start_waiting() {
    let scene = Scene::new("stdout-busy");
    let mut helper = Running(
        common::helper_command(
            &scene.pidfile(),
            &scene.events_path(),
            &[],
            &["start-while-printing"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let mut stdout = helper.0.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let lines = lines_of(helper.0.stderr.take().unwrap());
    let started = next_line(&lines, "with the start's outcome");
    assert!(started.starts_with("started "), "{started}");
    assert_eq!(next_line(&lines, "with the stop"), "stopped Graceful");
    assert!(helper.0.wait().unwrap().success());
}

#[test]
fn start_while_the_calling_thread_holds_stdout_lock() {
    // Alone in its process, the calling thread forks itself: the locks are reentrant, the
    // start works. With another thread, a new thread takes the locks and forks: it cannot
    // have them while the caller keeps one, and `start` says so instead of waiting for ever.
    for (options, expected) in [
        (&[][..], "started "),
        (&["--idle-thread"][..], "error OutputBusy: "),
    ] {
        let scene = Scene::new("stdout-held");
        let output = common::helper_command(
            &scene.pidfile(),
            &scene.events_path(),
            &[&["--start-timeout", "500"], options].concat(),
            &["start-holding-stdout"],
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.starts_with(expected), "{options:?}: {said}");
        if expected == "started " {
            assert!(output.status.success());
            assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
        } else {
            assert!(!output.status.success());
            assert!(!scene.pidfile().exists());
        }
    }
}

#[test]
fn the_daemon_runs_on_a_thread_named_as_the_caller_with_a_main_thread_stack() {
    // A stack limit unlike the usual 8 MiB, which the daemon's thread must get.
    const LIMIT: u64 = 24 << 20;
    // Alone in its process, the calling thread forks; with another thread, a new one does.
    for options in [&[][..], &["--idle-thread"][..]] {
        let scene = Scene::new("identity");
        let mut command = common::helper_command(
            &scene.pidfile(),
            &scene.events_path(),
            &[&["--mode", "identity"], options].concat(),
            &["start"],
        );
        // SAFETY: setrlimit is async-signal-safe and only changes the child's own limit.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                let limit = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_STACK, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        };
        let output = command.output().unwrap();
        let line = common::result_line(&output.stdout);
        assert!(output.status.success(), "{options:?}: {line}");
        let identity = common::eventually("the identity line", || {
            scene
                .events()
                .into_iter()
                .find(|line| line.starts_with("identity "))
                .ok_or_else(|| scene.events())
        });
        let fields: Vec<&str> = identity.split(' ').collect();
        // `start` was called from the helper's main thread: the daemon's thread is "main"
        // too, and the kernel knows it (so `ps` shows the daemon) by the program's name.
        assert_eq!(
            &fields[..6],
            [
                "identity",
                "thread",
                "main",
                "comm",
                "deluxe-daemon-h",
                "stack"
            ],
            "{options:?}"
        );
        let stack: u64 = fields[6].parse().unwrap();
        assert!(stack >= LIMIT - (64 << 10), "{options:?}: {identity}");
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    }
}

/// A caller with signal handlers of its own, as an application has: a `SIGCHLD` handler
/// without `SA_RESTART` (a blocking system call it interrupts fails with `EINTR`) and a thread
/// starting children all the time. Every controller call (`start`, `status`, `signal_user1`,
/// `signal_user2`, `reload`, `restart`, `stop`), the readiness wait of `start` and `restart`,
/// and `Command::call`, 50 rounds: not one error.
#[test]
fn a_caller_with_its_own_sigchld_handler_gets_no_interrupted_call() {
    let scene = Scene::new("caller-handlers");
    let (ok, line) = scene.helper(&["handlers", "50"]);
    assert!(ok, "{line}");
    assert_eq!(line, "handlers rounds 50 errors 0 sigchld 1");
}
