//! What a newcomer meets first, tried from the docs alone: the messages of the usual
//! mistakes say what went wrong and how to fix it, and what the command line prints is there
//! for a program's own output too. Driven through `deluxe-restart-helper` daemons.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};

use deluxe::daemon::{Config, Instance};

use crate::common::{Scene, has_sudo_setup, result_line};

const HELPER: &str = env!("CARGO_BIN_EXE_deluxe-restart-helper");

/// Runs the helper on `scene`'s pidfile, as `user` when given: whether it succeeded, and
/// its line.
fn helper(scene: &Scene, user: Option<&str>, options: &[&str], action: &str) -> (bool, String) {
    let mut command = match user {
        Some(user) => {
            let mut sudo = StdCommand::new("sudo");
            sudo.args(["-n", "-u", user, HELPER]);
            sudo
        }
        None => StdCommand::new(HELPER),
    };
    let output = command
        .arg("--pidfile")
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

/// Starts the helper's daemon on `scene`: its pid and the loopback port it listens on.
fn start(scene: &Scene) -> (i32, u16) {
    let (ok, line) = helper(scene, None, &[], "start");
    assert!(ok, "{line}");
    let pid: i32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    let prefix = format!("setup {pid} ");
    let port = scene
        .events()
        .iter()
        .find_map(|line| line.strip_prefix(&prefix).map(|port| port.parse().unwrap()))
        .unwrap_or_else(|| panic!("no setup event of {pid}: {:?}", scene.events()));
    (pid, port)
}

fn stop(scene: &Scene) {
    let (ok, line) = helper(scene, None, &[], "stop");
    assert!(ok, "{line}");
}

fn open_to_others(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_port_in_use_fails_start_with_the_reason() {
    let first = Scene::new("newuser-port-first");
    let (pid, port) = start(&first);
    let second = Scene::new("newuser-port-second");
    let (ok, line) = helper(&second, None, &["--port", &port.to_string()], "start");
    assert!(!ok, "{line}");
    // `setup` returned `daemon::listener`'s error with `?`: the OS's reason is in the
    // message `start` returns (it was only in `source()`, which a hook's error loses).
    assert!(line.starts_with("error SetupFailed: "), "{line}");
    assert!(
        line.contains("cannot bind listening socket \"http\": Address already in use"),
        "{line}"
    );
    assert_eq!(crate::common::read_pidfile(&first.pidfile()), Some(pid));
    stop(&first);
}

#[test]
fn stopping_another_users_daemon_says_who_may() {
    if !has_sudo_setup("stopping_another_users_daemon_says_who_may") {
        return;
    }
    let scene = Scene::new("newuser-other-user");
    let (pid, _) = start(&scene);
    open_to_others(&scene.dir);
    let (ok, line) = helper(&scene, Some(crate::common::TEST_USER), &[], "stop");
    assert!(!ok, "{line}");
    assert!(
        line.contains(&format!(
            "cannot send SIGTERM to the daemon (pid {pid}): Operation not permitted (os error \
             1); it runs as another user than this program: run this as root or as the \
             daemon's user"
        )),
        "{line}"
    );
    assert!(crate::common::is_alive(pid));
    stop(&scene);
}

#[test]
fn a_status_prints_as_the_command_line_prints_it() {
    let scene = Scene::new("newuser-status");
    let (pid, _) = start(&scene);
    // A program listing its own instances prints each one's status as `status` does.
    let instance = Instance::new(Config::new(scene.pidfile()));
    let shown = instance.status().unwrap().to_string();
    assert!(
        shown.starts_with(&format!("running (pid {pid}, since 20")),
        "{shown}"
    );
    assert!(shown.contains(" UTC, up "), "{shown}");
    stop(&scene);
    assert_eq!(instance.status().unwrap().to_string(), "not running");
}

#[test]
fn a_directory_given_as_pidfile_says_what_to_give() {
    let scene = Scene::new("newuser-pidfile-directory");
    let output = StdCommand::new(HELPER)
        .arg("--pidfile")
        .arg(&scene.dir)
        .args(["--events"])
        .arg(scene.events_path())
        .arg("start")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let line = result_line(&output.stdout);
    assert!(!output.status.success(), "{line}");
    assert!(
        line.ends_with(&format!(
            " is a directory (Is a directory (os error 21)); name a file in it, such as {}",
            scene.dir.join("NAME.pid").display()
        )),
        "{line}"
    );
}
