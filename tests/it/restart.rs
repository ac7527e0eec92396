//! Restart without dropping a connection (`daemon::listener` and the hand-over): real TCP
//! clients against `deluxe-restart-helper` daemons, which answer each connection with their
//! version and pid. Every restart here runs from a new helper process, as a restart from a
//! newly installed binary's command line does: `--version v2` is the new code.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::{
    HANG, NotifySocket, Scene, eventually, has_sudo_setup, is_alive, live_processes_mentioning,
    read_pidfile, result_line, wait_gone,
};

const HELPER: &str = env!("CARGO_BIN_EXE_deluxe-restart-helper");

fn command(scene: &Scene, options: &[&str], action: &str) -> StdCommand {
    let mut command = StdCommand::new(HELPER);
    command
        .arg("--pidfile")
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .args(options)
        .arg(action)
        .stdin(Stdio::null());
    command
}

/// Runs the helper: whether it succeeded, and its line.
pub(crate) fn helper(scene: &Scene, options: &[&str], action: &str) -> (bool, String) {
    let output = command(scene, options, action).output().unwrap();
    (output.status.success(), result_line(&output.stdout))
}

/// Runs the helper as `user` (through `sudo`): whether it succeeded, and its line.
fn helper_as(user: &str, scene: &Scene, options: &[&str], action: &str) -> (bool, String) {
    let output = StdCommand::new("sudo")
        .args(["-n", "-u", user, HELPER, "--pidfile"])
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .args(options)
        .arg(action)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output.status.success(), result_line(&output.stdout))
}

/// Runs the helper under a descriptor limit of `limit` (`prlimit`), and waits for its output.
fn limited(scene: &Scene, limit: u32, options: &[&str], action: &str) -> std::process::Output {
    StdCommand::new("prlimit")
        .arg(format!("--nofile={limit}:{limit}"))
        .arg("--")
        .arg(HELPER)
        .args(command(scene, options, action).get_args())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn pid_after(line: &str, word: &str) -> i32 {
    line.strip_prefix(word)
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `{word}PID`, got {line:?}"))
}

pub(crate) fn start(scene: &Scene, options: &[&str]) -> i32 {
    let (ok, line) = helper(scene, options, "start");
    assert!(ok, "{line}");
    pid_after(&line, "started ")
}

/// The loopback port the daemon `pid` listens on (its `setup` event).
pub(crate) fn port_of(scene: &Scene, pid: i32) -> u16 {
    let prefix = format!("setup {pid} ");
    scene
        .events()
        .iter()
        .find_map(|line| line.strip_prefix(&prefix).map(|port| port.parse().unwrap()))
        .unwrap_or_else(|| panic!("no setup event of {pid}: {:?}", scene.events()))
}

/// One request: the answer's `VERSION PID`, or the connection's error.
fn ask(port: u16) -> std::io::Result<String> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    answer(stream)
}

fn answer(stream: TcpStream) -> std::io::Result<String> {
    stream.set_read_timeout(Some(HANG))?;
    (&stream).write_all(b"hello\n")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

fn status(scene: &Scene) -> String {
    helper(scene, &[], "status").1
}

/// The daemon `pid` is the one serving: the pidfile names it, its lock holder is it, and it
/// answers.
fn assert_serving(scene: &Scene, pid: i32, version: &str, port: u16) {
    assert_eq!(read_pidfile(&scene.pidfile()), Some(pid));
    assert_eq!(status(scene), format!("status Running {pid}"));
    assert_eq!(ask(port).unwrap(), format!("{version} {pid}"));
}

/// No process of the scene but `allowed` is left.
fn assert_only(scene: &Scene, allowed: &[i32]) {
    let needle = scene.dir.to_string_lossy().into_owned();
    eventually("no stray process", || {
        let mut live = live_processes_mentioning(&needle);
        live.retain(|pid| !allowed.contains(pid));
        if live.is_empty() { Ok(()) } else { Err(live) }
    });
}

/// Waits until `status` says the daemon `pid` runs.
fn wait_status_running(scene: &Scene, pid: i32) {
    eventually(format!("status naming {pid}"), || {
        let line = status(scene);
        if line == format!("status Running {pid}") {
            Ok(())
        } else {
            Err(line)
        }
    });
}

pub(crate) fn stop(scene: &Scene) {
    let (ok, line) = helper(scene, &[], "stop");
    assert!(ok, "{line}");
}

/// Clients opening a new connection about every millisecond until stopped; each result is
/// kept.
struct Clients {
    running: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<std::io::Result<String>>>,
}

impl Clients {
    fn start(port: u16) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let thread = std::thread::spawn({
            let running = Arc::clone(&running);
            move || {
                let mut results = Vec::new();
                while running.load(Ordering::Relaxed) {
                    results.push(ask(port));
                    std::thread::sleep(Duration::from_millis(1));
                }
                results
            }
        });
        Self { running, thread }
    }

    /// Stops the clients, checks that every connection was answered, and returns the answers.
    fn finish_none_refused(self) -> Vec<String> {
        self.running.store(false, Ordering::Relaxed);
        let results = self.thread.join().unwrap();
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} connections failed: {failed:?}",
            failed.len(),
            results.len()
        );
        results.into_iter().flatten().collect()
    }
}

#[test]
fn restart_refuses_no_connection_and_the_old_daemon_drains_its_own() {
    let scene = Scene::new("restart-zero-refused");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    assert_serving(&scene, old, "v1", port);
    // Accepted by the old daemon before the restart; its request comes during the drain.
    let early = TcpStream::connect(("127.0.0.1", port)).unwrap();
    scene.wait_events("the early connection accepted", |events| {
        events
            .iter()
            .filter(|line| **line == format!("accepted {old}"))
            .count()
            >= 2
    });
    let clients = Clients::start(port);
    // Some connections before the restart.
    wait_served(&scene, old, 5);
    let mut restart = command(&scene, &["--version", "v2"], "restart")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The old daemon stops only once the new one is ready; then the early connection asks.
    scene.wait_event(&format!("stopping {old}"), 1);
    assert_eq!(answer(early).unwrap(), format!("v1 {old}"));
    let restarted = wait_line(&mut restart);
    let new = pid_after(&restarted, "restarted ");
    assert_ne!(new, old);
    // Some connections after it.
    wait_served(&scene, new, 5);
    let answers = clients.finish_none_refused();
    assert!(
        answers.iter().any(|a| *a == format!("v1 {old}")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| *a == format!("v2 {new}")),
        "{answers:?}"
    );
    // Nobody else answered (both daemons accept for a moment: either may answer then).
    assert!(
        answers
            .iter()
            .all(|a| *a == format!("v1 {old}") || *a == format!("v2 {new}")),
        "{answers:?}"
    );
    assert!(wait_gone(old, HANG));
    assert!(scene.events().contains(&format!("exit {old}")));
    assert_serving(&scene, new, "v2", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

/// The helper's line once it exits.
fn wait_line(child: &mut Child) -> String {
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    child.wait().unwrap();
    result_line(out.as_bytes())
}

#[test]
fn a_new_daemon_whose_setup_fails_leaves_the_old_one_serving() {
    let scene = Scene::new("restart-setup-fails");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let pidfile_before = std::fs::metadata(scene.pidfile()).unwrap();
    let (ok, line) = helper(&scene, &["--version", "v2", "--setup-fails"], "restart");
    assert!(!ok);
    assert!(line.starts_with("error SetupFailed: "), "{line}");
    assert!(line.contains("the new configuration is broken"), "{line}");
    // Untouched: same process, same pidfile, still accepting.
    let pidfile_after = std::fs::metadata(scene.pidfile()).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(pidfile_before.ino(), pidfile_after.ino());
    assert_serving(&scene, old, "v1", port);
    assert!(!scene.events().contains(&format!("stopping {old}")));
    assert_only(&scene, &[old]);
    // And a later restart still hands over.
    let (ok, line) = helper(&scene, &["--version", "v3"], "restart");
    assert!(ok, "{line}");
    let new = pid_after(&line, "restarted ");
    assert_serving(&scene, new, "v3", port);
    stop(&scene);
}

#[test]
fn a_second_restart_while_one_hands_over_is_refused() {
    let scene = Scene::new("restart-second");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let (mut first, new, gate) = gated_restart(&scene, old, "v2", "gate");
    let (ok, line) = helper(&scene, &["--version", "v3"], "restart");
    assert!(!ok);
    assert!(line.starts_with("error RestartInProgress: "), "{line}");
    // Meanwhile the old daemon serves.
    assert_eq!(ask(port).unwrap(), format!("v1 {old}"));
    std::fs::write(&gate, "").unwrap();
    assert_eq!(wait_line(&mut first), format!("restarted {new}"));
    assert!(wait_gone(old, HANG));
    assert_serving(&scene, new, "v2", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

/// Runs `restart` with the new code `version`, whose new daemon waits in `setup` until the
/// file `gate` (in the scene) exists; returns the helper running it, the new daemon's pid once
/// it waits, and the gate's path.
fn gated_restart(scene: &Scene, old: i32, version: &str, gate: &str) -> (Child, i32, PathBuf) {
    let gate = scene.dir.join(gate);
    let seen = scene.events();
    let restart = command(
        scene,
        &["--version", version, "--gate", gate.to_str().unwrap()],
        "restart",
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let new = waiting_setup(scene, old, &seen);
    (restart, new, gate)
}

/// Waits until the daemon `pid` has served `count` connections.
fn wait_served(scene: &Scene, pid: i32, count: usize) {
    scene.wait_event(&format!("served {pid}"), count);
}

/// Waits until a new daemon (not `old`, nor one in the events `before`) waits in its `setup`;
/// returns its pid.
fn waiting_setup(scene: &Scene, old: i32, before: &[String]) -> i32 {
    eventually("the new daemon waiting in setup", || {
        let events = scene.events();
        events
            .iter()
            .filter_map(|line| line.strip_prefix("setup-waiting "))
            .map(|pid| pid.parse::<i32>().unwrap())
            .find(|pid| *pid != old && !before.contains(&format!("setup-waiting {pid}")))
            .ok_or(events)
    })
}

#[test]
fn a_daemon_without_sockets_is_stopped_then_started() {
    let scene = Scene::new("restart-no-sockets");
    let old = start(&scene, &["--no-sockets"]);
    let port = port_of(&scene, old);
    assert!(!directory(&scene).exists());
    let port_arg = port.to_string();
    let (ok, line) = helper(
        &scene,
        &["--no-sockets", "--port", &port_arg, "--version", "v2"],
        "restart",
    );
    assert!(ok, "{line}");
    let new = pid_after(&line, "restarted ");
    assert_ne!(new, old);
    // The old one was gone before the new one set up.
    let events = scene.events();
    let exit = events
        .iter()
        .position(|e| *e == format!("exit {old}"))
        .unwrap();
    let setup = events
        .iter()
        .position(|e| e.starts_with(&format!("setup {new} ")))
        .unwrap();
    assert!(exit < setup, "{events:?}");
    assert_serving(&scene, new, "v2", port);
    stop(&scene);
}

fn directory(scene: &Scene) -> PathBuf {
    scene.dir.join(".daemon.pid.handover")
}

#[test]
fn sigkill_at_each_step_of_a_restart_leaves_one_daemon_serving() {
    // The new daemon killed in its setup (the sockets sent, not ready): the old one serves.
    let scene = Scene::new("restart-kill-new");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let (mut restart, new, _) = gated_restart(&scene, old, "v2", "gate1");
    kill(new);
    let line = wait_line(&mut restart);
    assert!(line.starts_with("error "), "{line}");
    assert_serving(&scene, old, "v1", port);
    assert_only(&scene, &[old]);

    // The controller killed while the new daemon sets up: the new daemon, once ready, takes
    // over by itself (it says COMMIT), and the old one stops.
    let (mut restart, new, gate) = gated_restart(&scene, old, "v2", "gate2");
    kill(restart.id() as i32);
    restart.wait().unwrap();
    std::fs::write(&gate, "").unwrap();
    assert!(wait_gone(old, HANG));
    wait_status_running(&scene, new);
    assert_serving(&scene, new, "v2", port);
    assert_only(&scene, &[new]);

    // The old daemon killed while the new one sets up: the new one serves alone.
    let old = new;
    let (mut restart, new, gate) = gated_restart(&scene, old, "v3", "gate3");
    kill(old);
    std::fs::write(&gate, "").unwrap();
    assert_eq!(wait_line(&mut restart), format!("restarted {new}"));
    assert_serving(&scene, new, "v3", port);
    assert_only(&scene, &[new]);

    // The controller killed during the old daemon's drain: the old one finishes its drain
    // and exits all the same.
    let old = new;
    let (early, mut restart) = restart_while_draining(&scene, old, port, "v4");
    kill(restart.id() as i32);
    restart.wait().unwrap();
    assert_eq!(answer(early).unwrap(), format!("v3 {old}"));
    assert!(wait_gone(old, HANG));
    let new = read_pidfile(&scene.pidfile()).unwrap();
    assert_serving(&scene, new, "v4", port);
    assert_only(&scene, &[new]);

    // The old daemon killed during its drain: the new one serves on.
    let old = new;
    let (early, mut restart) = restart_while_draining(&scene, old, port, "v5");
    kill(old);
    drop(early);
    let new = pid_after(&wait_line(&mut restart), "restarted ");
    assert_serving(&scene, new, "v5", port);

    // The daemon killed before anything was sent: the restart is a start, over the stale
    // pidfile.
    kill(new);
    let port_arg = port.to_string();
    let (ok, line) = helper(&scene, &["--version", "v6", "--port", &port_arg], "restart");
    assert!(ok, "{line}");
    let started = pid_after(&line, "restarted ");
    assert_serving(&scene, started, "v6", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

/// Opens a connection the daemon `old` accepts, then runs `restart` (new code `version`) until
/// the old daemon drains: returns the connection (its request not sent yet) and the helper.
fn restart_while_draining(scene: &Scene, old: i32, port: u16, version: &str) -> (TcpStream, Child) {
    let accepted = scene
        .events()
        .iter()
        .filter(|line| **line == format!("accepted {old}"))
        .count();
    let early = TcpStream::connect(("127.0.0.1", port)).unwrap();
    scene.wait_event(&format!("accepted {old}"), accepted + 1);
    let restart = command(scene, &["--version", version], "restart")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    scene.wait_event(&format!("stopping {old}"), 1);
    (early, restart)
}

fn kill(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_gone(pid, HANG));
}

#[test]
fn another_user_gets_no_socket_from_the_control_socket() {
    if !has_sudo_setup("another_user_gets_no_socket_from_the_control_socket") {
        return;
    }
    let scene = Scene::new("restart-hostile-peer");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let socket = directory(&scene).join(format!("{old}.sock"));
    // Opened up on purpose, so that the daemon's own check is what answers.
    use std::os::unix::fs::PermissionsExt;
    for path in [&scene.dir, &directory(&scene)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = StdCommand::new("sudo")
        .args([
            "-n",
            "-u",
            crate::common::TEST_USER,
            HELPER,
            "probe-control",
        ])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(result_line(&output.stdout), "reply REFUSED fds 0");
    // Root is answered (and the connection closing without COMMIT leaves the daemon as it was).
    let output = StdCommand::new(HELPER)
        .arg("probe-control")
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(result_line(&output.stdout), "reply OK http fds 1");
    // A restart refuses the directory now open to others, and stops nothing.
    let (ok, line) = helper(&scene, &[], "restart");
    assert!(!ok);
    assert!(line.starts_with("error HandoverRefused: "), "{line}");
    assert_serving(&scene, old, "v1", port);
    stop(&scene);
}

#[test]
fn a_planted_handover_directory_is_refused_not_stopped_through() {
    if !has_sudo_setup("a_planted_handover_directory_is_refused_not_stopped_through") {
        return;
    }
    let user = nix::unistd::User::from_name(crate::common::TEST_USER)
        .unwrap()
        .unwrap();
    for planted in ["symlink", "directory"] {
        let scene = Scene::new(&format!("restart-planted-{planted}"));
        let directory = directory(&scene);
        let elsewhere = scene.dir.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        match planted {
            "symlink" => std::os::unix::fs::symlink(&elsewhere, &directory).unwrap(),
            _ => {
                std::fs::create_dir(&directory).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&directory, std::fs::Permissions::from_mode(0o700))
                    .unwrap();
                nix::unistd::chown(&directory, Some(user.uid), Some(user.gid)).unwrap();
            }
        }
        let old = start(&scene, &[]);
        let port = port_of(&scene, old);
        // Nothing was made through the planted path.
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        let (ok, line) = helper(&scene, &[], "restart");
        assert!(!ok);
        assert!(
            line.starts_with("error HandoverRefused: "),
            "{planted}: {line}"
        );
        assert_serving(&scene, old, "v1", port);
        assert!(is_alive(old));
        stop(&scene);
        let _ = std::fs::remove_file(&directory);
        let _ = std::fs::remove_dir(&directory);
    }
}

#[test]
fn a_handover_directory_closed_to_the_daemon_by_another_user_does_not_keep_it_from_starting() {
    // A daemon that runs as a user (not root) in a shared sticky directory, as /tmp is:
    // another user plants `.NAME.handover` as a directory closed to it (mode 0700), so that it
    // cannot even open it (EACCES). That is a directory not the daemon's, as a symbolic link
    // is: a warning, and a restart refused; never a daemon kept from starting.
    use crate::common::{NOLOGIN_USER, TEST_USER};
    use std::os::unix::fs::PermissionsExt;
    if !has_sudo_setup(
        "a_handover_directory_closed_to_the_daemon_by_another_user_does_not_keep_it_from_starting",
    ) {
        return;
    }
    let scene = Scene::new("restart-closed-handover");
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    let other = nix::unistd::User::from_name(NOLOGIN_USER).unwrap().unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(scene.events_path(), "").unwrap();
    nix::unistd::chown(&scene.events_path(), Some(user.uid), Some(user.gid)).unwrap();
    let planted = directory(&scene);
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o700)).unwrap();
    nix::unistd::chown(&planted, Some(other.uid), Some(other.gid)).unwrap();
    let as_user = |options: &[&str], action: &str| helper_as(TEST_USER, &scene, options, action);
    let (ok, line) = as_user(&[], "start");
    assert!(ok, "{line}");
    let old = pid_after(&line, "started ");
    let port = port_of(&scene, old);
    assert_eq!(uids_of(old), [user.uid.as_raw(); 4]);
    assert_serving(&scene, old, "v1", port);
    let (ok, line) = as_user(&["--version", "v2"], "restart");
    assert!(!ok);
    assert!(line.starts_with("error HandoverRefused: "), "{line}");
    assert_serving(&scene, old, "v1", port);
    // Nothing was made in the other user's directory.
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);
    let (ok, line) = as_user(&[], "stop");
    assert!(ok, "{line}");
    assert!(wait_gone(old, HANG));
    assert_only(&scene, &[]);
}

#[test]
fn a_long_lived_controller_keeps_no_descriptor_of_its_restarts() {
    let scene = Scene::new("restart-fd-leak");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    // Three restarts from one process, in-process, and one whose new daemon fails: its
    // descriptors before the first and after the last.
    let (ok, line) = helper(&scene, &["--count", "3"], "restarts");
    assert!(ok, "{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..2], ["restarts", "fds"], "{line}");
    assert_eq!(words[2], words[3], "descriptors before and after: {line}");
    let new = read_pidfile(&scene.pidfile()).unwrap();
    assert_ne!(new, old);
    assert_serving(&scene, new, "v1", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn an_in_process_restart_of_a_keep_open_listener_refuses_no_connection() {
    let scene = Scene::new("restart-keep-open");
    let mut both = command(&scene, &["--keep-open"], "start-then-restart")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(both.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let old = pid_after(line.trim(), "started ");
    let port = port_of(&scene, old);
    let clients = Clients::start(port);
    wait_served(&scene, old, 5);
    both.stdin.take().unwrap().write_all(b"restart\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    both.wait().unwrap();
    let new = pid_after(&result_line(rest.as_bytes()), "restarted ");
    assert_ne!(new, old);
    // Started first: the old daemon stopped after the new one set up.
    let events = scene.events();
    let setup = events
        .iter()
        .position(|e| e.starts_with(&format!("setup {new} ")))
        .unwrap();
    let stopping = events
        .iter()
        .position(|e| *e == format!("stopping {old}"))
        .unwrap();
    assert!(setup < stopping, "{events:?}");
    wait_served(&scene, new, 5);
    clients.finish_none_refused();
    assert!(wait_gone(old, HANG));
    assert_serving(&scene, new, "v1", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn a_socket_declared_with_another_type_or_twice_fails_the_new_daemon_only() {
    let scene = Scene::new("restart-typed");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    for (declare, message) in [
        (
            "unix",
            "listening socket \"http\" is a TCP listener, not a UnixListener",
        ),
        ("twice", "listening socket \"http\" is declared twice"),
    ] {
        let (ok, line) = helper(&scene, &["--declare-as", declare], "restart");
        assert!(!ok);
        assert!(line.starts_with("error SetupFailed: "), "{line}");
        assert!(line.contains(message), "{line}");
        assert_serving(&scene, old, "v1", port);
    }
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn the_old_daemon_tells_the_service_manager_the_new_main_pid() {
    let scene = Scene::new("restart-mainpid");
    let notify = NotifySocket::bind(&scene.dir);
    let with_manager = |action: &str, version: &str| {
        let output = command(&scene, &["--version", version], action)
            .env("NOTIFY_SOCKET", &notify.path)
            .output()
            .unwrap();
        result_line(&output.stdout)
    };
    let old = pid_after(&with_manager("start", "v1"), "started ");
    let new = pid_after(&with_manager("restart", "v2"), "restarted ");
    // Under `NotifyAccess=main` only the main process (the old daemon) may move MAINPID.
    eventually("MAINPID of the new daemon, sent by the old one", || {
        let (sender, lines) = notify.next_with_sender();
        if sender == old && lines.contains(&format!("MAINPID={new}")) {
            Ok(())
        } else {
            Err((sender, lines))
        }
    });
    stop(&scene);
    assert_only(&scene, &[]);
}

/// Whether the machine has `program`; where it does not, the test is skipped (`.ci/run`
/// installs it, and makes a skip fail).
fn can_run(test: &str, program: &str) -> bool {
    let has = crate::common::has_program(program);
    if !has {
        crate::common::skip(test, &format!("needs {program}; run `bash .ci/run`"));
    }
    has
}

#[test]
fn a_new_daemon_killed_after_taking_the_pidfile_leaves_the_old_one_named_by_it() {
    if !can_run("a_new_daemon_killed_after_taking_the_pidfile", "strace") {
        return;
    }
    // The new daemon is killed after its pidfile's rename over the path, before it says
    // COMMIT: the old daemon serves on, and must be the one the pidfile names again (not a
    // stale file naming the dead one, which `status` would call not running and over which a
    // `start` would start a second daemon).
    let scene = Scene::new("restart-kill-after-rename");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let (mut restart, new, gate) = gated_restart(&scene, old, "v2", "gate");
    // Once its pidfile is at the path, its first system call of its own is the pidfile
    // watch's `inotify_init1` (a signal injected at `rename` itself comes before the rename).
    let mut strace = StdCommand::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null"])
        .arg("-etrace=inotify_init1")
        .arg("-einject=inotify_init1:signal=SIGKILL:when=1")
        .arg("-p")
        .arg(new.to_string())
        .spawn()
        .unwrap();
    eventually("strace attached to the new daemon", || {
        let status = std::fs::read_to_string(format!("/proc/{new}/status")).unwrap_or_default();
        let tracer = status
            .lines()
            .find_map(|line| line.strip_prefix("TracerPid:"))
            .map(str::trim)
            .unwrap_or("0")
            .to_owned();
        if tracer == "0" { Err(tracer) } else { Ok(()) }
    });
    std::fs::write(&gate, "").unwrap();
    assert!(wait_gone(new, HANG));
    strace.wait().unwrap();
    let line = wait_line(&mut restart);
    assert!(line.starts_with("error "), "{line}");
    wait_status_running(&scene, old);
    assert_serving(&scene, old, "v1", port);
    assert!(!scene.events().contains(&format!("stopping {old}")));
    assert_only(&scene, &[old]);
    // A start finds it running; a restart hands over.
    let (ok, line) = helper(&scene, &[], "start");
    assert!(!ok && line.starts_with("error AlreadyRunning: "), "{line}");
    let (ok, line) = helper(&scene, &["--version", "v3"], "restart");
    assert!(ok, "{line}");
    let new = pid_after(&line, "restarted ");
    assert_serving(&scene, new, "v3", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn a_controller_without_descriptors_left_says_so_and_the_old_daemon_serves_on() {
    if !can_run("a_controller_without_descriptors_left_says_so", "prlimit") {
        return;
    }
    // The controller's descriptor limit low enough, at one limit or another, for the received
    // sockets not to fit: the error says so (not `ENOBUFS`, "no buffer space"), and nothing
    // changes for the daemon. The new daemon inherits the limit: one that cannot make its
    // control socket fails (it would be restarted as stop then start, refusing connections,
    // and its port-0 socket would move); one that starts can be restarted in turn.
    let scene = Scene::new("restart-nofile");
    let mut old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let mut restarted = 0;
    for limit in 4..=24 {
        let output = limited(&scene, limit, &["--version", "v2"], "restart");
        let limit = format!("--nofile={limit}:{limit}");
        let line = result_line(&output.stdout);
        if output.status.success() {
            old = pid_after(&line, "restarted ");
            restarted += 1;
            assert!(
                directory(&scene).join(format!("{old}.sock")).exists(),
                "{limit}: {old} has no control socket"
            );
        } else {
            assert!(!line.contains("No buffer space"), "{limit}: {line}");
            if line.starts_with("error Handover: ") {
                assert!(line.contains("Too many open files"), "{limit}: {line}");
            }
        }
        wait_status_running(&scene, old);
        assert_only(&scene, &[old]);
    }
    assert!(restarted >= 2, "{restarted} restarts succeeded");
    // Every daemon served the one socket: none was started after a stop, binding anew.
    let prefix = format!("setup {old} ");
    let setups: Vec<String> = scene
        .events()
        .into_iter()
        .filter(|event| event.starts_with("setup "))
        .collect();
    assert!(setups.iter().any(|event| event.starts_with(&prefix)));
    for event in &setups {
        assert!(
            event.ends_with(&format!(" {port}")),
            "{event}: not port {port}"
        );
    }
    assert_eq!(
        ask(port).unwrap().split(' ').nth(1),
        Some(old.to_string().as_str())
    );
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn a_keep_open_daemon_without_its_control_socket_does_not_start() {
    if !can_run("a_keep_open_daemon_without_its_control_socket", "prlimit") {
        return;
    }
    // A daemon whose listening socket is its value's (`keep_open`) and that cannot make its
    // control socket (a low descriptor limit) fails to start, as one whose `setup` declares
    // its socket does: it would be restarted as stop then start. Every daemon that starts has
    // its control socket.
    let scene = Scene::new("restart-keep-open-nofile");
    let mut refused = 0;
    for limit in 8..=16 {
        let output = limited(&scene, limit, &["--keep-open"], "start");
        let line = result_line(&output.stdout);
        if output.status.success() {
            let pid = pid_after(&line, "started ");
            assert!(
                directory(&scene).join(format!("{pid}.sock")).exists(),
                "{limit}: {pid} has no control socket"
            );
            stop(&scene);
        } else {
            assert!(line.contains("Too many open files"), "{limit}: {line}");
            refused += usize::from(line.contains("cannot make the control socket"));
        }
        assert_only(&scene, &[]);
    }
    assert!(refused >= 1, "no limit refused the control socket");
}

#[test]
fn a_new_daemon_hung_in_setup_after_its_controller_died_ends_at_the_start_timeout() {
    // The controller killed while the new daemon hangs in `setup` (its gate never opens):
    // nobody is left to kill it at the start timeout, so it ends itself then. The old daemon,
    // which waited for it (answering other restarts `RestartInProgress`), serves on and takes
    // the next restart.
    let scene = Scene::new("restart-orphan-hang");
    let old = start(&scene, &[]);
    let port = port_of(&scene, old);
    let gate = scene.dir.join("gate");
    let seen = scene.events();
    let options = [
        "--version",
        "v2",
        "--gate",
        gate.to_str().unwrap(),
        "--start-timeout",
        "3000",
    ];
    let mut restart = command(&scene, &options, "restart")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let new = waiting_setup(&scene, old, &seen);
    kill(restart.id() as i32);
    let _ = restart.wait();
    assert!(wait_gone(new, HANG), "the new daemon {new} still hangs");
    assert!(!gate.exists());
    wait_status_running(&scene, old);
    assert_serving(&scene, old, "v1", port);
    assert_only(&scene, &[old]);
    // The old daemon learns of the new one's end from its control connection, at once or
    // nearly: until then a restart is refused as in progress.
    let line = eventually("a restart once the hung daemon ended", || {
        let (ok, line) = helper(&scene, &["--version", "v3"], "restart");
        if ok {
            Ok(line)
        } else {
            assert!(line.starts_with("error RestartInProgress: "), "{line}");
            Err(line)
        }
    });
    let newer = pid_after(&line, "restarted ");
    assert!(wait_gone(old, HANG));
    assert_serving(&scene, newer, "v3", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn a_controller_stopped_past_the_start_timeout_still_says_start_timeout() {
    // The controller stopped (SIGSTOP: as late as a starved one can be) while its daemon hangs
    // in `setup`: the daemon ends its start itself one second past the timeout. The
    // controller, continued, says `StartTimeout`, not `DiedBeforeReady`, and nothing is left.
    let scene = Scene::new("restart-late-controller");
    let gate = scene.dir.join("gate");
    let options = ["--gate", gate.to_str().unwrap(), "--start-timeout", "2000"];
    let starting = command(&scene, &options, "start")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let controller = nix::unistd::Pid::from_raw(starting.id() as i32);
    let daemon = waiting_setup(&scene, 0, &[]);
    nix::sys::signal::kill(controller, nix::sys::signal::Signal::SIGSTOP).unwrap();
    assert!(
        wait_gone(daemon, HANG),
        "the hung daemon {daemon} still runs"
    );
    nix::sys::signal::kill(controller, nix::sys::signal::Signal::SIGCONT).unwrap();
    let output = starting.wait_with_output().unwrap();
    let line = result_line(&output.stdout);
    assert!(!output.status.success());
    assert!(line.starts_with("error StartTimeout: "), "{line}");
    assert!(!gate.exists());
    // Killed holding its pidfile, as by the controller: stale, for the next start to replace.
    assert_eq!(status(&scene), "status Stale");
    assert_only(&scene, &[]);
    start(&scene, &[]);
    stop(&scene);
    assert_only(&scene, &[]);
}

#[test]
fn a_hand_over_cut_short_by_the_descriptor_limit_leaves_no_descriptor_in_the_controller() {
    if !can_run("a_hand_over_cut_short_by_the_descriptor_limit", "prlimit") {
        return;
    }
    // 253 sockets in one message, to a controller with room for some of them only: the
    // kernel installs what fits and cuts the message short. The controller says so, closes
    // those it got, and the daemon serves on.
    let scene = Scene::new("restart-cut-short");
    let many = ["--declare-as", "many", "--extra", "252"];
    let old = start(&scene, &many);
    let port = port_of(&scene, old);
    for limit in [32, 64, 128, 200] {
        let output = limited(&scene, limit, &many, "restart-fds");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut lines = stdout.lines();
        let counts: Vec<usize> = lines
            .next()
            .and_then(|line| line.strip_prefix("restart-fds "))
            .unwrap_or_else(|| panic!("{limit}: {stdout}"))
            .split(' ')
            .map(|count| count.parse().unwrap())
            .collect();
        let line = lines.next().unwrap_or_default();
        assert!(!output.status.success(), "{limit}: {line}");
        assert!(
            line.starts_with("error Handover: ") && line.contains("Too many open files"),
            "{limit}: {line}"
        );
        assert_eq!(
            counts[0], counts[1],
            "{limit}: descriptors before and after"
        );
        wait_status_running(&scene, old);
        assert_only(&scene, &[old]);
    }
    assert_serving(&scene, old, "v1", port);
    stop(&scene);
    assert_only(&scene, &[]);
}

/// The real, effective, saved and filesystem uids of `pid` (`/proc/PID/status`).
fn uids_of(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .map(|uid| uid.parse().unwrap())
        .collect()
}

#[test]
fn the_service_account_restarts_a_daemon_that_dropped_to_it_and_so_does_root() {
    use crate::common::TEST_USER;
    use std::os::unix::fs::PermissionsExt;
    if !has_sudo_setup("the_service_account_restarts_a_daemon_that_dropped_to_it_and_so_does_root")
    {
        return;
    }
    let scene = Scene::new("restart-service-account");
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    let (uid, gid) = (user.uid.as_raw(), user.gid.as_raw());
    // The user's directory, and an events file every daemon of the scene appends to.
    std::os::unix::fs::chown(&scene.dir, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(scene.events_path(), "").unwrap();
    std::os::unix::fs::chown(scene.events_path(), Some(uid), Some(gid)).unwrap();
    let as_user = ["--user", TEST_USER];
    // Started by root: `setup` declares the socket as root, then the daemon drops to the user.
    let old = start(&scene, &as_user);
    let port = port_of(&scene, old);
    assert_eq!(uids_of(old), [uid; 4]);
    assert_serving(&scene, old, "v1", port);
    // The service's own account restarts it, with the same settings (`user` is itself).
    let clients = Clients::start(port);
    wait_served(&scene, old, 3);
    let (ok, line) = helper_as(
        TEST_USER,
        &scene,
        &[&as_user[..], &["--version", "v2"]].concat(),
        "restart",
    );
    assert!(ok, "{line}");
    let new = pid_after(&line, "restarted ");
    assert_ne!(new, old);
    assert!(wait_gone(old, HANG));
    wait_served(&scene, new, 3);
    clients.finish_none_refused();
    assert_serving(&scene, new, "v2", port);
    assert_eq!(uids_of(new), [uid; 4]);
    // And root restarts the daemon the service account started.
    let (ok, line) = helper(&scene, &["--user", TEST_USER, "--version", "v3"], "restart");
    assert!(ok, "{line}");
    let newer = pid_after(&line, "restarted ");
    assert!(wait_gone(new, HANG));
    assert_serving(&scene, newer, "v3", port);
    assert_eq!(uids_of(newer), [uid; 4]);
    stop(&scene);
    assert!(wait_gone(newer, HANG));
    assert_only(&scene, &[]);
}

#[test]
fn a_254th_socket_is_refused_with_the_limit_and_253_are_handed_over() {
    let scene = Scene::new("restart-too-many");
    let (ok, line) = helper(&scene, &["--declare-as", "many"], "start");
    assert!(!ok, "{line}");
    assert!(line.starts_with("error SetupFailed: "), "{line}");
    assert!(
        line.contains("listening socket \"http\" is one too many: a daemon declares at most 253"),
        "{line}"
    );
    assert_eq!(read_pidfile(&scene.pidfile()), None);
    assert_only(&scene, &[]);
    // 253 are handed over in one message.
    let many = ["--declare-as", "many", "--extra", "252"];
    let old = start(&scene, &many);
    let port = port_of(&scene, old);
    let (ok, line) = helper(
        &scene,
        &[&many[..], &["--version", "v2"]].concat(),
        "restart",
    );
    assert!(ok, "{line}");
    let new = pid_after(&line, "restarted ");
    assert!(wait_gone(old, HANG));
    assert_serving(&scene, new, "v2", port);
    stop(&scene);
    assert_only(&scene, &[]);
}
