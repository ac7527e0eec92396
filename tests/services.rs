//! What real services need, through a service written with the macros
//! (`tests/bin/services_helper.rs`): setup before ready, as root, whose failure comes back
//! from `start`; descriptors the daemon value owns.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command as StdCommand, Output, Stdio};

use common::{HANG, Scene, TEST_USER, has_sudo_setup, is_alive, live_processes_mentioning};

fn services(scene: &Scene, args: &[&str]) -> StdCommand {
    let mut command = StdCommand::new(env!("CARGO_BIN_EXE_deluxe-services-helper"));
    command
        .arg("--pidfile")
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs the helper; returns whether it succeeded and its result line.
fn helper(scene: &Scene, args: &[&str]) -> (bool, String) {
    let output = services(scene, args).output().unwrap();
    (output.status.success(), line(&output))
}

fn line(output: &Output) -> String {
    common::result_line(&output.stdout)
}

fn start(scene: &Scene, args: &[&str]) -> i32 {
    let mut args = args.to_vec();
    args.push("start");
    let (ok, line) = helper(scene, &args);
    assert!(ok, "start failed: {line}");
    line.strip_prefix("started ").unwrap().parse().unwrap()
}

/// After a failed start: no process of the scene, no pidfile, and `run` never ran.
fn assert_nothing_left(scene: &Scene) {
    assert!(!scene.pidfile().exists(), "the pidfile was left behind");
    assert_eq!(
        live_processes_mentioning(&scene.dir.to_string_lossy()),
        Vec::<i32>::new()
    );
    assert!(
        !scene.events().iter().any(|event| event.starts_with("run ")),
        "{:?}",
        scene.events()
    );
}

#[test]
fn setup_binds_port_80_as_root_and_the_daemon_serves_it_as_the_user() {
    if !has_sudo_setup("setup_binds_port_80_as_root_and_the_daemon_serves_it_as_the_user") {
        return;
    }
    let scene = Scene::new("setup-port-80");
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    // The daemon's user removes its pidfile and writes events after the drop.
    std::fs::write(scene.events_path(), "").unwrap();
    for path in [&scene.dir, &scene.events_path()] {
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    }
    let pid = start(&scene, &["--port", "80", "--user", TEST_USER]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert!(scene.events().contains(&"setup uid 0".to_owned()));

    let mut answer = String::new();
    TcpStream::connect("127.0.0.1:80")
        .unwrap()
        .read_to_string(&mut answer)
        .unwrap();
    assert_eq!(answer, format!("uid {0} euid {0}\n", user.uid));

    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    scene.wait_event("atexit", 1);
    assert!(!is_alive(pid));
    assert!(!scene.pidfile().exists());
}

#[test]
fn a_port_in_use_makes_start_fail_with_the_bind_error() {
    let scene = Scene::new("setup-port-in-use");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (ok, line) = helper(&scene, &["--port", &port, "start"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!(
            "error SetupFailed: the daemon's setup failed: cannot listen on 127.0.0.1:{port}: \
             Address already in use (os error {})",
            libc::EADDRINUSE
        )
    );
    assert_nothing_left(&scene);
}

#[test]
fn an_invalid_config_file_makes_start_fail_with_the_parse_error() {
    let scene = Scene::new("setup-bad-config");
    let config = scene.dir.join("service.conf");
    std::fs::write(&config, "# the service\nworkers = 4\nport 80\n").unwrap();
    let (ok, line) = helper(&scene, &["--config", config.to_str().unwrap(), "start"]);
    assert!(!ok);
    assert_eq!(
        line,
        format!(
            "error SetupFailed: the daemon's setup failed: config {}: line 3: expected \
             `key = value`, found \"port 80\"",
            config.display()
        )
    );
    assert_nothing_left(&scene);

    // Fixed, the same start works, and setup's work is there for `run`.
    std::fs::write(&config, "# the service\nworkers = 4\nport = 80\n").unwrap();
    let pid = start(&scene, &["--config", config.to_str().unwrap()]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert!(scene.events().contains(&"config 2".to_owned()));
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
}

#[test]
fn a_failed_setup_in_the_foreground_says_nothing_to_the_service_manager() {
    let scene = Scene::new("setup-foreground");
    let notify_path = scene.dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let config = scene.dir.join("missing.conf");
    let output = services(
        &scene,
        &["--config", config.to_str().unwrap(), "foreground"],
    )
    .env("NOTIFY_SOCKET", &notify_path)
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert!(
        line(&output).starts_with(&format!(
            "error SetupFailed: the daemon's setup failed: config {}: No such file",
            config.display()
        )),
        "{}",
        line(&output)
    );
    assert_nothing_left(&scene);
    // The process has exited: anything it sent is in the socket already. It sent nothing.
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 256];
    assert_eq!(
        notify.recv(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );

    // With a good configuration, READY=1 comes once setup is done.
    std::fs::write(&config, "workers = 1\n").unwrap();
    notify.set_nonblocking(false).unwrap();
    notify.set_read_timeout(Some(HANG)).unwrap();
    let mut child = services(
        &scene,
        &["--config", config.to_str().unwrap(), "foreground"],
    )
    .env("NOTIFY_SOCKET", &notify_path)
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let len = notify.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..len]).starts_with("READY=1"));
    assert!(scene.events().contains(&"config 1".to_owned()));
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(child.wait().unwrap().success());
}

#[test]
fn declared_descriptors_stay_open_and_undeclared_ones_never_alias_a_later_file() {
    let scene = Scene::new("owned-fds");
    let journal = scene.dir.join("journal");
    let stray = scene.dir.join("stray");
    let pid = start(
        &scene,
        &[
            "--journal",
            journal.to_str().unwrap(),
            "--stray",
            stray.to_str().unwrap(),
        ],
    );
    scene.wait_event(&format!("run {pid}"), 1);
    let stray_fd = loop {
        if let Some(fd) = scene
            .events()
            .iter()
            .find_map(|event| event.strip_prefix("stray fd ").map(str::to_owned))
        {
            break fd;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    // The declared file got the daemon's line; the undeclared one went to /dev/null, not into
    // the pidfile, which holds the pid and nothing else.
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        format!("journal {pid}\n")
    );
    assert_eq!(std::fs::read_to_string(&stray).unwrap(), "");
    assert_eq!(
        std::fs::read_to_string(scene.pidfile()).unwrap(),
        format!("{pid}\n")
    );
    let fds = common::open_fds(pid);
    assert!(fds.iter().any(|(_, target)| *target == journal), "{fds:?}");
    assert!(
        !fds.iter().any(|(fd, _)| fd.to_string() == stray_fd),
        "the dropped stray descriptor is closed: {fds:?}"
    );
    // Dropping it released nothing of the daemon's: the pidfile is still locked.
    assert_eq!(
        helper(&scene, &["status"]).1,
        format!("status Running {pid}")
    );
    let (ok, line) = helper(&scene, &["start"]);
    assert!(
        !ok && line.starts_with(&format!("error AlreadyRunning: already running (pid {pid}")),
        "{line}"
    );
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert_eq!(std::fs::read_to_string(&stray).unwrap(), "");
}
