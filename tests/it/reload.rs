//! A reload reports its outcome: the controller's typed error carrying the hook's message, the
//! command line's exit code, concurrent reloads, the daemon's own user, the bound, and an
//! impostor on the reload socket (`tests/bin/services_helper.rs`'s `on_reload` re-reads a
//! `key = value` file).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};

use crate::common::{self, NOLOGIN_USER, Scene, TEST_USER, has_sudo_setup, is_alive};

const HELPER: &str = env!("CARGO_BIN_EXE_deluxe-services-helper");

/// The reload hook's error for a config file whose first line is `line`.
fn hook_error(config: &Path, line: &str) -> String {
    format!(
        "config {}: line 1: expected `key = value`, found {line:?}",
        config.display()
    )
}

/// The controller's error for a reload whose hook failed with `hook_error`.
fn reload_failed(pid: i32, hook_error: &str) -> String {
    format!(
        "the daemon (pid {pid}) failed to reload: {hook_error}; it runs on as before: fix the \
         problem and reload again"
    )
}

/// The services helper on this scene, as `user` (through `sudo -n -u`) or as root.
fn services(scene: &Scene, user: Option<&str>, args: &[&str]) -> StdCommand {
    let mut command = match user {
        Some(user) => {
            let mut command = StdCommand::new("sudo");
            command.args(["-n", "-u", user, HELPER]);
            command
        }
        None => StdCommand::new(HELPER),
    };
    command
        .arg("--pidfile")
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .arg("--config")
        .arg(config(scene))
        .args(args)
        .stdin(Stdio::null());
    command
}

fn config(scene: &Scene) -> PathBuf {
    scene.dir.join("service.conf")
}

fn run(scene: &Scene, user: Option<&str>, args: &[&str]) -> Output {
    services(scene, user, args).output().unwrap()
}

/// The helper's result line (see `common::result_line`).
fn line(scene: &Scene, user: Option<&str>, args: &[&str]) -> String {
    common::result_line(&run(scene, user, args).stdout)
}

fn start(scene: &Scene, user: Option<&str>, args: &[&str]) -> i32 {
    let mut args = args.to_vec();
    args.push("start");
    let line = line(scene, user, &args);
    line.strip_prefix("started ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not a start: {line}"))
}

/// `reload` on the command line (`deluxe::cli`): exit code, stdout, stderr.
fn cli_reload(scene: &Scene, user: Option<&str>) -> (Option<i32>, String, String) {
    let output = run(scene, user, &["cli-reload"]);
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A scene whose daemon runs (as root) on a good config; its pid.
fn running(name: &str) -> (Scene, i32) {
    let scene = Scene::new(name);
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let pid = start(&scene, None, &[]);
    (scene, pid)
}

/// The helper's line for a reload that failed on a config whose first line is `line`.
fn failed_line(scene: &Scene, pid: i32, line: &str) -> String {
    format!(
        "error ReloadFailed: {}",
        reload_failed(pid, &hook_error(&config(scene), line))
    )
}

fn stop(scene: &Scene, pid: i32) {
    assert_eq!(line(scene, None, &["stop"]), "stopped Graceful");
    assert!(common::wait_gone(pid, common::HANG));
}

#[test]
fn a_failed_reload_is_a_typed_error_with_the_hooks_message_and_the_cli_exits_1() {
    let scene = Scene::new("reload-outcome");
    std::fs::write(config(&scene), "workers = 2\n").unwrap();
    let pid = start(&scene, None, &[]);

    assert_eq!(
        cli_reload(&scene, None),
        (
            Some(0),
            "reloaded (log reopened, on_reload done)\n".to_owned(),
            String::new()
        )
    );
    scene.wait_event("reload 1", 1);

    // A broken config: the hook's error reaches the terminal and the exit code; the daemon
    // runs on.
    std::fs::write(config(&scene), "workers 3\n").unwrap();
    let hook_error = hook_error(&config(&scene), "workers 3");
    assert_eq!(
        cli_reload(&scene, None),
        (
            Some(1),
            String::new(),
            format!("error: {}\n", reload_failed(pid, &hook_error))
        )
    );
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!("error ReloadFailed: {}", reload_failed(pid, &hook_error))
    );
    assert!(is_alive(pid));
    scene.wait_event("reload 3", 1);

    std::fs::write(config(&scene), "workers = 3\n").unwrap();
    assert_eq!(line(&scene, None, &["reload"]), "reloaded");
    stop(&scene, pid);
    assert!(
        !socket(&scene).exists(),
        "the daemon removes its reload socket"
    );
}

#[test]
fn a_reload_error_of_a_macro_hook_keeps_its_cause() {
    // The helper's `#[on_reload]` returns its own error type: "config PATH", with the read's
    // `io::Error` as its `source()`, not in its message.
    let (scene, pid) = running("reload-cause");
    std::fs::remove_file(config(&scene)).unwrap();
    let hook_error = format!(
        "config {}: No such file or directory (os error 2)",
        config(&scene).display()
    );
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!("error ReloadFailed: {}", reload_failed(pid, &hook_error))
    );
    assert!(is_alive(pid));
    stop(&scene, pid);
}

fn socket(scene: &Scene) -> PathBuf {
    PathBuf::from(format!("{}.reload", scene.pidfile().display()))
}

#[test]
fn a_pidfile_too_long_for_a_socket_address_still_gets_answers() {
    let scene = Scene::new("reload-long-path");
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let deep = scene.dir.join("d".repeat(120));
    std::fs::create_dir(&deep).unwrap();
    let pidfile = deep.join("daemon.pid");
    let with_pidfile = |action: &str| {
        common::result_line(
            &services(
                &scene,
                None,
                &["--pidfile", pidfile.to_str().unwrap(), action],
            )
            .output()
            .unwrap()
            .stdout,
        )
    };
    let started = with_pidfile("start");
    let pid: i32 = started.strip_prefix("started ").unwrap().parse().unwrap();
    assert_eq!(with_pidfile("reload"), "reloaded");
    std::fs::write(config(&scene), "workers\n").unwrap();
    assert_eq!(with_pidfile("reload"), failed_line(&scene, pid, "workers"));
    assert_eq!(with_pidfile("stop"), "stopped Graceful");
    assert!(!deep.join("daemon.pid.reload").exists());
}

#[test]
fn a_killed_daemons_reload_socket_is_replaced_by_the_next_daemons() {
    let (scene, pid) = running("reload-after-kill");
    // SAFETY: killing the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert!(common::wait_gone(pid, common::HANG));
    assert!(socket(&scene).exists(), "SIGKILL leaves the socket behind");
    let pid = start(&scene, None, &[]);
    assert_eq!(line(&scene, None, &["reload"]), "reloaded");
    scene.wait_event("reload 1", 1);
    stop(&scene, pid);
}

#[cfg(feature = "tokio")]
#[test]
fn the_async_reload_returns_the_same_outcome() {
    let (scene, pid) = running("reload-async");
    assert_eq!(line(&scene, None, &["reload-async"]), "reloaded");
    std::fs::write(config(&scene), "workers\n").unwrap();
    assert_eq!(
        line(&scene, None, &["reload-async"]),
        failed_line(&scene, pid, "workers")
    );
    stop(&scene, pid);
}

#[test]
fn a_reload_hook_that_panics_is_reloadpanicked_and_the_daemon_stops() {
    let (scene, pid) = running("reload-panic");
    std::fs::write(config(&scene), "panic = 1\n").unwrap();
    let line = line(&scene, None, &["reload"]);
    assert!(
        line.starts_with(&format!(
            "error ReloadPanicked: the daemon (pid {pid}) failed to reload: on_reload() \
             panicked: reload gave up on purpose"
        )),
        "{line}"
    );
    assert!(line.ends_with("; stopping; fix the hook (or the configuration it chokes on) and start the daemon again"), "{line}");
    assert!(common::wait_gone(pid, common::HANG));
    scene.wait_event("atexit", 1);
}

#[test]
fn reloading_a_daemon_that_is_not_running_is_not_running_and_exit_code_7() {
    let scene = Scene::new("reload-not-running");
    let pidfile = scene.pidfile();
    let (code, stdout, stderr) = cli_reload(&scene, None);
    assert_eq!((code, stdout.as_str()), (Some(7), ""), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: not running (no process holds pidfile {})\n",
            pidfile.display()
        )
    );
    assert!(line(&scene, None, &["reload"]).starts_with("error NotRunning: "));
}

/// Starts `count` helpers running `args` at once; their result lines.
fn at_once(scene: &Scene, count: usize, args: &[&str]) -> Vec<String> {
    let children: Vec<Child> = (0..count)
        .map(|_| {
            services(scene, None, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| common::result_line(&child.wait_with_output().unwrap().stdout))
        .collect()
}

#[test]
fn concurrent_reloads_from_two_threads_and_two_processes_each_get_the_answer() {
    let scene = Scene::new("reload-concurrent");
    // Each reload takes a while: requests overlap a reload that runs.
    std::fs::write(config(&scene), "sleep = 200\n").unwrap();
    let pid = start(&scene, None, &[]);

    let output = run(&scene, None, &["reload-twice"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "reloaded\nreloaded\n"
    );
    assert_eq!(at_once(&scene, 2, &["reload"]), ["reloaded", "reloaded"]);

    std::fs::write(config(&scene), "broken\n").unwrap();
    let failed = failed_line(&scene, pid, "broken");
    assert_eq!(
        at_once(&scene, 2, &["reload"]),
        [failed.clone(), failed.clone()]
    );
    let output = run(&scene, None, &["reload-twice"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("{failed}\n{failed}\n")
    );
    stop(&scene, pid);
}

#[test]
fn a_reload_that_outlasts_the_reload_timeout_is_a_typed_timeout_and_goes_on() {
    let (scene, pid) = running("reload-timeout");
    std::fs::write(config(&scene), "sleep = 5000\n").unwrap();
    assert_eq!(
        line(&scene, None, &["--reload-timeout", "200", "reload"]),
        format!(
            "error ReloadTimeout: the daemon (pid {pid}) did not answer the reload within \
             200ms: its on_reload hook is still running or stuck; check its log, or allow more \
             time (the reload timeout)"
        )
    );
    // The reload itself goes on, and ends.
    scene.wait_event("reload 1", 1);
    stop(&scene, pid);
}

#[test]
fn a_daemon_without_a_reload_socket_is_sent_sighup_and_the_error_says_there_is_no_answer() {
    // What a daemon built with an older deluxe looks like: no `PIDFILE.reload`.
    let (scene, pid) = running("reload-no-socket");
    let socket = socket(&scene);
    std::fs::remove_file(&socket).unwrap();
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!(
            "error ReloadUnanswered: the daemon (pid {pid}) did not say whether it reloaded: it \
             has no reload socket (No such file or directory (os error 2)): it was sent SIGHUP \
             and reloads, but cannot say how that went (its log can); a daemon built with an \
             older deluxe answers once restarted with this one (reload socket {})",
            socket.display()
        )
    );
    scene.wait_event("reload 1", 1);
    stop(&scene, pid);
}

#[test]
fn a_reload_socket_with_a_full_queue_is_a_reload_timeout_not_a_hang() {
    // A daemon that takes no connection (stopped here; frozen, or out of descriptors, alike)
    // while its queue is full: on Linux a connection to a full queue waits until the listener
    // accepts one, by default for ever, whatever the reload timeout.
    let (scene, pid) = running("reload-full-queue");
    let socket = socket(&scene);
    let mut stopped = Stopped(pid, Vec::new());
    stopped.signal(nix::sys::signal::Signal::SIGSTOP);
    let mut flood = StdCommand::new(HELPER)
        .arg("flood-reload")
        .arg(&socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut full = String::new();
    BufReader::new(flood.stdout.take().unwrap())
        .read_line(&mut full)
        .unwrap();
    assert!(full.starts_with("full "), "{full:?}");
    stopped.1.push(flood);

    let reload = services(&scene, None, &["--reload-timeout", "500", "reload"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    stopped.1.push(reload);
    common::eventually("the reload to return (it hangs in connect)", || {
        stopped.1[1].try_wait().unwrap().ok_or(())
    });
    let output = stopped.1.pop().unwrap().wait_with_output().unwrap();
    assert_eq!(
        common::result_line(&output.stdout),
        format!(
            "error ReloadTimeout: the daemon (pid {pid}) did not answer the reload within \
             500ms: its on_reload hook is still running or stuck; check its log, or allow more \
             time (the reload timeout)"
        )
    );
    drop(stopped);
    stop(&scene, pid);
}

/// Sets `pid`'s soft `RLIMIT_NOFILE` (its hard limit stays), with util-linux's `prlimit`.
fn set_nofile(pid: i32, soft: &str) {
    let status = StdCommand::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .unwrap();
    assert!(status.success(), "prlimit: {status}");
}

#[test]
fn a_daemon_out_of_descriptors_for_a_moment_answers_reloads_again_once_it_has_some() {
    // Out of descriptors, the daemon cannot accept a request (`EMFILE`); it used to stop
    // listening for good, its socket still bound: every later reload waited out its timeout
    // and no reload ever ran again.
    let scene = Scene::new("reload-emfile");
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let pid = start(&scene, None, &["--log", scene.log().to_str().unwrap()]);
    let soft = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap()
        .lines()
        .find_map(|line| {
            line.strip_prefix("Max open files")
                .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap();
    // Every descriptor a new one could be (0, 1, 2) is open: nothing more opens.
    set_nofile(pid, "3");
    assert_eq!(
        line(&scene, None, &["--reload-timeout", "300", "reload"]),
        format!(
            "error ReloadTimeout: the daemon (pid {pid}) did not answer the reload within \
             300ms: its on_reload hook is still running or stuck; check its log, or allow more \
             time (the reload timeout)"
        )
    );
    scene.wait_log("the daemon's word that it cannot accept", |line| {
        line.contains("cannot accept reload requests (Too many open files (os error 24))")
    });
    set_nofile(pid, &soft);
    // The request left waiting is taken too, once the daemon can: one reload or two.
    assert_eq!(
        line(&scene, None, &["--reload-timeout", "30000", "reload"]),
        "reloaded"
    );
    assert!(scene.events().contains(&"reload 1".to_owned()));
    // Said once, not at every try.
    assert_eq!(
        scene
            .log_lines()
            .iter()
            .filter(|line| line.contains("cannot accept reload requests"))
            .count(),
        1
    );
    stop(&scene, pid);
}

/// A stopped daemon and the processes that wait on it: when the test ends, even by a failure,
/// the processes are killed and the daemon goes on (`SIGCONT`).
struct Stopped(i32, Vec<Child>);

impl Stopped {
    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.0), signal).unwrap();
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for child in &mut self.1 {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }
}

/// Makes the scene's directory the test user's, for a daemon that runs as that user.
fn give_to_test_user(scene: &Scene) {
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    nix::unistd::chown(&scene.dir, Some(user.uid), Some(user.gid)).unwrap();
}

#[test]
fn the_daemons_own_user_and_root_get_the_answer() {
    if !has_sudo_setup("the_daemons_own_user_and_root_get_the_answer") {
        return;
    }
    let scene = Scene::new("reload-as-user");
    give_to_test_user(&scene);
    let hook_error = hook_error(&config(&scene), "broken");

    // Started by the user itself.
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let pid = start(&scene, Some(TEST_USER), &[]);
    std::fs::write(config(&scene), "broken\n").unwrap();
    let (code, stdout, stderr) = cli_reload(&scene, Some(TEST_USER));
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        format!("error: {}\n", reload_failed(pid, &hook_error))
    );
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!("error ReloadFailed: {}", reload_failed(pid, &hook_error))
    );
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    assert_eq!(cli_reload(&scene, Some(TEST_USER)).0, Some(0));
    assert_eq!(line(&scene, None, &["reload"]), "reloaded");
    stop(&scene, pid);

    // Started by root, dropped to the user: root still gets the answer.
    let pid = start(&scene, None, &["--user", TEST_USER]);
    std::fs::write(config(&scene), "broken\n").unwrap();
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!("error ReloadFailed: {}", reload_failed(pid, &hook_error))
    );
    assert_eq!(cli_reload(&scene, None).0, Some(1));
    stop(&scene, pid);
}

#[test]
fn a_forged_answer_from_another_users_socket_is_not_believed() {
    if !has_sudo_setup("a_forged_answer_from_another_users_socket_is_not_believed") {
        return;
    }
    // A world-writable directory, as /tmp: another user binds the reload socket's path before
    // the daemon, which cannot replace it (the sticky bit) and runs without one.
    let (scene, forger) = forged("reload-forged");
    let socket = socket(&scene);
    let forger_uid = nix::unistd::User::from_name(NOLOGIN_USER)
        .unwrap()
        .unwrap()
        .uid;

    let pid = start(&scene, Some(TEST_USER), &[]);
    let impostor = || {
        format!(
            "error ReloadImpostor: reload socket {} is not the daemon's (pid {pid}): it belongs \
             to uid {forger_uid}; nothing was sent to it and the daemon was not \
             reloaded: remove it (or choose a pidfile in a directory only you can write) and \
             restart the daemon",
            socket.display()
        )
    };
    // Neither root nor the daemon's user connects to the forger's socket: its owner says
    // enough.
    assert_eq!(line(&scene, None, &["reload"]), impostor());
    assert_eq!(line(&scene, Some(TEST_USER), &["reload"]), impostor());
    let (code, _, stderr) = cli_reload(&scene, None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        !scene
            .events()
            .iter()
            .any(|event| event.starts_with("reload"))
    );

    drop(forger);
    stop(&scene, pid);
}

#[test]
fn a_symlink_planted_at_the_reload_socket_is_not_followed_to_another_socket() {
    if !has_sudo_setup("a_symlink_planted_at_the_reload_socket_is_not_followed_to_another_socket") {
        return;
    }
    // In a world-writable directory another user links the reload socket's path, before the
    // daemon starts, to a socket of root's: a connection alone is a request there (another
    // daemon's reload socket reloads it). The controller must not connect through the link.
    let scene = Scene::new("reload-symlink");
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let victim_path = scene.dir.join("root-only.sock");
    let victim = std::os::unix::net::UnixListener::bind(&victim_path).unwrap();
    victim.set_nonblocking(true).unwrap();
    let socket = socket(&scene);
    let linked = StdCommand::new("sudo")
        .args(["-n", "-u", NOLOGIN_USER, "ln", "-s"])
        .arg(&victim_path)
        .arg(&socket)
        .status()
        .unwrap();
    assert!(linked.success());
    let planter_uid = nix::unistd::User::from_name(NOLOGIN_USER)
        .unwrap()
        .unwrap()
        .uid;

    // The daemon cannot bind over the link, and runs without a reload socket.
    let pid = start(&scene, None, &[]);
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!(
            "error ReloadImpostor: reload socket {} is not the daemon's (pid {pid}): it belongs \
             to uid {planter_uid}; nothing was sent to it and the daemon was not reloaded: \
             remove it (or choose a pidfile in a directory only you can write) and restart the \
             daemon",
            socket.display()
        )
    );
    assert_eq!(
        victim.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the controller connected to the socket the link names"
    );

    // A socket of a user the daemon's could be (root, here this test) is connected to, and
    // its listener is not the daemon: still an impostor, named by its pid.
    std::fs::remove_file(&socket).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    assert_eq!(
        line(&scene, None, &["reload"]),
        format!(
            "error ReloadImpostor: reload socket {} is not the daemon's (pid {pid}): it belongs \
             to uid 0, process {}; nothing was sent to it and the daemon was not reloaded: \
             remove it (or choose a pidfile in a directory only you can write) and restart the \
             daemon",
            socket.display(),
            std::process::id()
        )
    );
    stop(&scene, pid);
}

#[test]
fn a_root_daemon_leaves_another_users_socket_at_its_reload_path_in_place() {
    if !has_sudo_setup("a_root_daemon_leaves_another_users_socket_at_its_reload_path_in_place") {
        return;
    }
    // Root may unlink anything in a sticky directory; its daemon must still touch no other
    // user's file: the socket stays, the daemon runs without one, and a reload says why.
    let (scene, forger) = forged("reload-forged-root");
    let socket = socket(&scene);
    let planted = std::fs::symlink_metadata(&socket).unwrap();

    let pid = start(&scene, None, &[]);
    let now = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(
        (now.dev(), now.ino(), now.uid()),
        (planted.dev(), planted.ino(), planted.uid()),
        "the daemon replaced another user's socket"
    );
    assert!(line(&scene, None, &["reload"]).starts_with("error ReloadImpostor: "));
    drop(forger);
    stop(&scene, pid);
}

/// A scene in a world-writable directory, as /tmp, where another user listens on the reload
/// socket's path before any daemon starts there: the scene, and that user's impostor.
fn forged(name: &str) -> (Scene, Forger) {
    let scene = Scene::new(name);
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(config(&scene), "workers = 1\n").unwrap();
    let mut forger = Forger(
        StdCommand::new("sudo")
            .args(["-n", "-u", NOLOGIN_USER, HELPER, "forge-reload"])
            .arg(socket(&scene))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut listening = String::new();
    BufReader::new(forger.0.stdout.take().unwrap())
        .read_line(&mut listening)
        .unwrap();
    assert_eq!(listening, "listening\n");
    (scene, forger)
}

/// The impostor, run through `sudo`: ended when the test ends, even when it fails.
struct Forger(Child);

impl Drop for Forger {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to the sudo this test started, which passes it on to the forger.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Under a real systemd (`crate::systemd`): what an operator sees of a failed reload.
mod under_systemd {
    use std::path::{Path, PathBuf};

    use crate::systemd::{Release, Systemd};

    use super::{HELPER, hook_error};

    /// The services helper on `dir`'s files, for `ExecStart=` and `ExecReload=`.
    fn command(dir: &Path, action: &str) -> String {
        format!(
            "{HELPER} --pidfile {} --events {} --config {} {action}",
            dir.join("daemon.pid").display(),
            dir.join("events").display(),
            dir.join("service.conf").display()
        )
    }

    fn reloads(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("events"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.starts_with("reload "))
            .count()
    }

    /// Installs and starts `reload.service`: the helper in the foreground on a good config,
    /// with `Type=` `kind` and these more `[Service]` lines; its config file and main pid.
    fn start_unit(systemd: &Systemd, kind: &str, more: &str) -> (PathBuf, i32) {
        let dir = &systemd.dir;
        let config = dir.join("service.conf");
        std::fs::write(&config, "workers = 1\n").unwrap();
        systemd.install(
            "reload.service",
            &format!(
                "[Service]\nType={kind}\nExecStart={}\n{more}",
                command(dir, "foreground")
            ),
        );
        systemd.ok(&["start", "reload.service"]);
        (config, systemd.main_pid("reload.service"))
    }

    /// After a reload on the broken config `workers 2`: the same daemon runs on, and the
    /// status text says why the reload failed.
    fn assert_runs_on_and_says_why(systemd: &Systemd, config: &Path, main: i32) {
        assert_eq!(systemd.main_pid("reload.service"), main);
        assert_eq!(systemd.show("reload.service", "ActiveState"), "active");
        assert_eq!(
            systemd.show("reload.service", "StatusText"),
            format!("reload failed: {}", hook_error(config, "workers 2"))
        );
    }

    /// `Type=notify` with `ExecReload=` the command line's `reload`: a failed `on_reload`
    /// fails the reload job, the daemon runs on, and the status text says why.
    fn a_failed_reload_fails_the_reload_job(test: &str, release: Release) {
        let Some(systemd) = Systemd::boot(test, release) else {
            return;
        };
        let dir = &systemd.dir;
        let reload = format!("ExecReload={}\n", command(dir, "cli-reload"));
        let (config, main) = start_unit(&systemd, "notify", &reload);
        systemd.ok(&["reload", "reload.service"]);
        assert_eq!(
            reloads(dir),
            1,
            "the reload job ends once on_reload has run"
        );

        std::fs::write(&config, "workers 2\n").unwrap();
        let output = systemd.systemctl(["reload", "reload.service"]);
        assert!(!output.status.success(), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("failed"),
            "{output:?}"
        );
        assert_eq!(reloads(dir), 2);
        assert_runs_on_and_says_why(&systemd, &config, main);

        // The next good reload clears it.
        std::fs::write(&config, "workers = 2\n").unwrap();
        systemd.ok(&["reload", "reload.service"]);
        assert_eq!(systemd.show("reload.service", "StatusText"), "");
        systemd.ok(&["stop", "reload.service"]);
    }

    #[test]
    fn a_failed_reload_fails_the_reload_job_on_the_installed_systemd() {
        a_failed_reload_fails_the_reload_job(
            "a_failed_reload_fails_the_reload_job_on_the_installed_systemd",
            Release::Installed,
        );
    }

    #[test]
    fn a_failed_reload_fails_the_reload_job_on_254() {
        a_failed_reload_fails_the_reload_job(
            "a_failed_reload_fails_the_reload_job_on_254",
            Release::Backports,
        );
    }

    /// `Type=notify-reload` (254): systemd sends `SIGHUP` and takes `READY=1` for "done";
    /// the protocol has no failed reload, so the job succeeds and the status text says it
    /// failed.
    #[test]
    fn under_notify_reload_a_failed_reload_is_the_status_text() {
        let test = "under_notify_reload_a_failed_reload_is_the_status_text";
        let Some(systemd) = Systemd::boot(test, Release::Backports) else {
            return;
        };
        let (config, main) = start_unit(&systemd, "notify-reload", "");
        std::fs::write(&config, "workers 2\n").unwrap();
        systemd.ok(&["reload", "reload.service"]);
        assert_eq!(reloads(&systemd.dir), 1);
        assert_runs_on_and_says_why(&systemd, &config, main);
        systemd.ok(&["stop", "reload.service"]);
    }
}
