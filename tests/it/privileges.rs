//! Running a daemon as another user: real, effective and saved ids all dropped, the groups
//! expected, root not regainable, files created with the umask, the pidfile still removable;
//! and the typed errors when it cannot be done. Needs root and the test accounts (`.ci/run`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command as StdCommand;

use crate::common::{
    HANG, Scene, TEST_USER, has_sudo_setup, helper_as_test_user, is_alive, wait_gone,
};

/// The `Uid:`, `Gid:` or `Groups:` line of `/proc/PID/status`, as numbers.
fn ids(pid: i32, field: &str) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .unwrap()
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

fn id_of(args: &[&str]) -> Vec<u32> {
    let output = StdCommand::new("id").args(args).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// A scene whose directory the test user owns, so that its daemon can remove its pidfile.
fn scene_owned_by_test_user(name: &str) -> Scene {
    let scene = Scene::new(name);
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    std::os::unix::fs::chown(&scene.dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The test (root) writes the events file; the daemon appends to it as the user.
    std::fs::write(scene.events_path(), "").unwrap();
    std::os::unix::fs::chown(scene.events_path(), Some(user.uid.as_raw()), None).unwrap();
    scene
}

#[test]
fn the_daemon_runs_as_the_configured_user_for_good() {
    if !has_sudo_setup("the_daemon_runs_as_the_configured_user_for_good") {
        return;
    }
    let scene = scene_owned_by_test_user("drop");
    let uid = id_of(&["-u", TEST_USER])[0];
    let gid = id_of(&["-g", TEST_USER])[0];
    let mut groups = id_of(&["-G", TEST_USER]);
    groups.sort_unstable();

    let pid = scene.start(&["--user", TEST_USER, "--umask", "027"]);
    scene.wait_event(&format!("run {pid}"), 1);
    // Real, effective, saved and filesystem ids: all the user's.
    assert_eq!(ids(pid, "Uid:"), [uid; 4]);
    assert_eq!(ids(pid, "Gid:"), [gid; 4]);
    let mut daemon_groups = ids(pid, "Groups:");
    daemon_groups.sort_unstable();
    assert_eq!(
        daemon_groups, groups,
        "supplementary groups are the user's, not root's"
    );
    scene.wait_event("setuid0 EPERM", 1);

    // What it creates is the user's, with the umask applied; its pidfile is the user's too.
    // (`run` makes its probe file after recording the events above: wait for it.)
    let probe_path = scene.events_path().with_extension("umask-probe");
    let probe = crate::common::eventually("the daemon's umask probe file", || {
        std::fs::metadata(&probe_path)
    });
    assert_eq!((probe.uid(), probe.mode() & 0o777), (uid, 0o640));
    let pidfile = std::fs::metadata(scene.pidfile()).unwrap();
    assert_eq!((pidfile.uid(), pidfile.mode() & 0o777), (uid, 0o644));

    // Root's controller still stops it, and the daemon removes its own pidfile as it exits.
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("user1", 1);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    assert!(
        !scene.pidfile().exists(),
        "the daemon, as the user, removed its pidfile"
    );
    assert_eq!(scene.events().last().unwrap(), "atexit");
}

#[test]
fn a_group_alone_changes_only_the_groups() {
    if !has_sudo_setup("a_group_alone_changes_only_the_groups") {
        return;
    }
    let scene = Scene::new("group-only");
    let gid = nix::unistd::Group::from_name(TEST_USER)
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let pid = scene.start(&["--group", TEST_USER]);
    assert_eq!(ids(pid, "Uid:"), [0; 4]);
    assert_eq!(ids(pid, "Gid:"), [gid; 4]);
    assert_eq!(ids(pid, "Groups:"), [gid]);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

#[test]
fn unknown_accounts_are_typed_errors_before_anything_starts() {
    let scene = Scene::new("unknown-account");
    let (ok, line) = scene.helper_with(&["--user", "no-such-user-here"], &["start"]);
    assert!(!ok);
    assert_eq!(
        line,
        "error UnknownUser: no user account named `no-such-user-here` exists; check the name \
         (`getent passwd` lists the accounts)"
    );
    let (ok, line) = scene.helper_with(&["--group", "no-such-group-here"], &["start"]);
    assert!(!ok);
    assert_eq!(
        line,
        "error UnknownGroup: no group named `no-such-group-here` exists"
    );
    assert!(!scene.pidfile().exists());
    assert!(scene.events().is_empty());
}

#[test]
fn a_pidfile_the_user_could_not_remove_is_refused() {
    if !has_sudo_setup("a_pidfile_the_user_could_not_remove_is_refused") {
        return;
    }
    let scene = Scene::new("unremovable");
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, line) = scene.helper_with(&["--user", TEST_USER], &["start"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!(
            "error PidfileDirectoryForUser: user `{TEST_USER}` could not remove its pidfile \
             from {}; put the pidfile in a directory it owns (e.g. `install -d -o {TEST_USER} \
             /run/NAME`, or systemd's `RuntimeDirectory=`)",
            scene.dir.display()
        )
    );
    assert!(!scene.pidfile().exists());
}

#[test]
fn only_root_may_start_a_daemon_as_another_user() {
    if !has_sudo_setup("only_root_may_start_a_daemon_as_another_user") {
        return;
    }
    let scene = scene_owned_by_test_user("not-root");
    let (code, line) = helper_as_test_user(&scene.pidfile(), &["--user", "nobody", "start"]);
    assert_eq!(code, Some(1));
    assert!(
        line.starts_with("error NotRoot: only root can start a daemon as another user or group"),
        "{line}"
    );
    assert!(!scene.pidfile().exists());
    // The same user as a non-root controller starts it normally.
    let (_, line) = helper_as_test_user(&scene.pidfile(), &["start"]);
    let pid: i32 = line
        .strip_prefix("started ")
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert_eq!(ids(pid, "Uid:")[0], id_of(&["-u", TEST_USER])[0]);
    assert!(is_alive(pid));
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}
