//! What real services need, through a service written with the macros
//! (`tests/bin/services_helper.rs`): setup before ready, as root, whose failure comes back
//! from `start`; descriptors the daemon value owns.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command as StdCommand, Output, Stdio};

use crate::common::{
    self, HANG, NotifySocket, Scene, TEST_USER, has_sudo_setup, is_alive, live_processes_mentioning,
};

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
    // Port 80 itself, unless something on this shared machine has it: then another port below
    // 1024, which only root may bind all the same.
    let port = (80..1024)
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free privileged port");
    let pid = start(&scene, &["--port", &port.to_string(), "--user", TEST_USER]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert!(scene.events().contains(&"setup uid 0".to_owned()));

    let mut answer = String::new();
    TcpStream::connect(("127.0.0.1", port))
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
fn a_failed_setup_in_the_foreground_tells_the_service_manager_why_and_never_ready() {
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
    // The process has exited: anything it sent is in the socket already. It sent why it
    // failed, as its status (what `systemctl status` shows), and nothing else: no READY=1.
    notify.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let len = crate::common::recv(&notify, &mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..len]),
        format!(
            "STATUS=the daemon's setup failed: config {}: No such file or directory (os error 2)\n",
            config.display()
        )
    );
    assert_eq!(
        crate::common::recv(&notify, &mut buf).unwrap_err().kind(),
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
    let len = crate::common::recv(&notify, &mut buf).unwrap();
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

fn log_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn sighup_reloads_around_reloading_and_ready_and_a_failed_reload_keeps_the_daemon() {
    let scene = Scene::new("reload");
    let notify = NotifySocket::bind(&scene.dir);
    let config = scene.dir.join("service.conf");
    let log = scene.dir.join("service.log");
    std::fs::write(&config, "workers = 2\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let output = services(
        &scene,
        &[
            "--config",
            config_arg,
            "--log",
            log.to_str().unwrap(),
            "start",
        ],
    )
    .env("NOTIFY_SOCKET", &notify.path)
    .output()
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let pid = common::read_pidfile(&scene.pidfile()).unwrap();
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );

    // `kill -HUP`, as logrotate's postrotate scripts do: a reload, not a stop.
    // SAFETY: signalling the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let reloading = notify.next();
    assert_eq!(reloading[0], "RELOADING=1");
    assert!(reloading[1].starts_with("MONOTONIC_USEC="), "{reloading:?}");
    assert_eq!(notify.next(), ["READY=1"]);
    scene.wait_event("reload 1", 1);
    assert!(is_alive(pid));

    // A broken configuration: the reload fails, the controller gets the hook's error, it is
    // logged once with the pid and is the manager's status text, and the daemon goes on.
    std::fs::write(&config, "workers 3\n").unwrap();
    let hook_error = format!(
        "config {}: line 1: expected `key = value`, found \"workers 3\"",
        config.display()
    );
    assert_eq!(
        helper(&scene, &["--config", config_arg, "reload"]).1,
        format!(
            "error ReloadFailed: the daemon (pid {pid}) failed to reload: {hook_error}; it runs \
             on as before: fix the problem and reload again"
        )
    );
    assert_eq!(notify.next()[0], "RELOADING=1");
    assert_eq!(
        notify.next(),
        [
            "READY=1".to_owned(),
            format!("STATUS=reload failed: {hook_error}")
        ]
    );
    scene.wait_event("reload 2", 1);
    assert!(is_alive(pid));
    // The log pump writes it a moment after the daemon said it.
    let expected = [format!(
        "deluxe[{pid}]: WARN: on_reload() failed: config {}: line 1: expected `key = value`, \
         found \"workers 3\"; still running",
        config.display()
    )];
    common::eventually("the failed reload in the log", || {
        let lines = log_lines(&log);
        if lines == expected {
            Ok(())
        } else {
            Err(lines)
        }
    });
    assert_eq!(
        helper(&scene, &["status"]).1,
        format!("status Running {pid}")
    );
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert_eq!(notify.next(), ["STOPPING=1"]);
}

#[test]
fn a_run_that_returns_an_error_is_one_log_line_and_exit_status_1() {
    let scene = Scene::new("run-error");
    let output = services(&scene, &["--run-error", "foreground"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let pid = scene
        .events()
        .iter()
        .find_map(|event| event.strip_prefix("run ").map(str::to_owned))
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "deluxe[{pid}]: ERROR: run() failed: the database at /var/lib/service is gone; \
             stopping\n"
        )
    );
    scene.wait_event("atexit", 1);
    assert!(!scene.pidfile().exists());
}

#[test]
fn a_process_name_names_the_daemon_forked_or_in_the_foreground() {
    let scene = Scene::new("process-name");
    let pid = start(&scene, &["--process-name", "svc-forked"]);
    let comm = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm(pid.try_into().unwrap()), "svc-forked\n");
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");

    // In the foreground the process that runs it takes the name, before it is ready.
    let mut child = services(
        &scene,
        &["--process-name", "a-name-cut-to-15-bytes", "foreground"],
    )
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    scene.wait_event(&format!("run {}", child.id()), 1);
    assert_eq!(comm(child.id()), "a-name-cut-to-1\n");
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(child.wait().unwrap().success());
}

/// A name whose 15th byte falls inside a character: the kernel name ends before that
/// character, so that it stays UTF-8 and the tools that match names find the daemon.
#[test]
fn a_process_name_cut_inside_a_character_is_what_ps_pgrep_and_start_stop_daemon_see() {
    let scene = Scene::new("process-name-utf8");
    // Cyrillic letters are 2 bytes each: 15 bytes end inside the `л`.
    let pid = start(&scene, &["--process-name", "шард-33-альфа"]);
    let name = "шард-33-а";
    let tool = |program: &str, args: &[&str]| {
        StdCommand::new(program)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap()
    };
    let comm = std::fs::read(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(String::from_utf8_lossy(&comm), format!("{name}\n"));
    let ps = tool("ps", &["-o", "comm=", "-p", &pid.to_string()]);
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim_end(), name);
    let pgrep = tool("pgrep", &["-x", name]);
    assert!(
        String::from_utf8_lossy(&pgrep.stdout)
            .lines()
            .any(|line| line == pid.to_string()),
        "pgrep -x {name}: {pgrep:?}"
    );
    let status = tool(
        "start-stop-daemon",
        &["--status", "--name", name, "--pid", &pid.to_string()],
    );
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
}

#[test]
fn stop_tells_a_run_that_returned_from_a_grace_that_expired() {
    let scene = Scene::new("grace-expired");
    let pid = start(&scene, &["--stuck", "--grace", "100"]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert_eq!(helper(&scene, &["stop"]).1, "stopped GraceExpired");
    assert!(scene.events().contains(&"stop-ignored".to_owned()));
    scene.wait_event("atexit", 1);
    assert!(!scene.pidfile().exists());

    let pid = start(&scene, &[]);
    scene.wait_event(&format!("run {pid}"), 1);
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
}

/// Runs the real `logrotate` on `log` with `directives`, forcing a rotation.
fn logrotate(scene: &Scene, log: &std::path::Path, directives: &str) {
    let config = scene.dir.join("logrotate.conf");
    std::fs::write(
        &config,
        format!("{} {{\n    rotate 1\n{directives}}}\n", log.display()),
    )
    .unwrap();
    let output = StdCommand::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(scene.dir.join("logrotate.state"))
        .arg(&config)
        .output()
        .expect("logrotate is installed (.ci/run installs it)");
    assert!(output.status.success(), "logrotate: {output:?}");
}

/// `line N` printed by the daemon after `user1`, once it says it printed it.
fn print_line(scene: &Scene, count: usize) {
    assert_eq!(helper(scene, &["user1"]).1, "sent");
    scene.wait_event(&format!("printed {count}"), 1);
}

#[test]
fn the_log_file_survives_logrotate_create_as_the_daemon_user() {
    if !has_sudo_setup("the_log_file_survives_logrotate_create_as_the_daemon_user") {
        return;
    }
    let scene = Scene::new("logrotate-create");
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    std::fs::write(scene.events_path(), "").unwrap();
    for path in [&scene.dir, &scene.events_path()] {
        nix::unistd::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    }
    // logrotate refuses to work in a directory others can write unless told whose it is.
    let log = scene.dir.join("service.log");
    let pid = start(
        &scene,
        &["--user", TEST_USER, "--log", log.to_str().unwrap()],
    );
    scene.wait_event(&format!("run {pid}"), 1);
    // Created by the daemon as root, given to its user.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&log).unwrap());
    assert_eq!(owner, user.uid.as_raw());
    print_line(&scene, 1);

    let pidfile = scene.pidfile();
    logrotate(
        &scene,
        &log,
        &format!(
            "    su {TEST_USER} {TEST_USER}\n    create 0640 {TEST_USER} {TEST_USER}\n    \
             postrotate\n        kill -HUP $(cat {})\n    endscript\n",
            pidfile.display()
        ),
    );
    scene.wait_event("reload 1", 1);
    print_line(&scene, 2);
    assert!(is_alive(pid));
    // Stopped, the daemon has written everything it printed.
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    let rotated = scene.dir.join("service.log.1");
    assert_eq!(log_lines(&rotated), ["line 1"]);
    assert_eq!(log_lines(&log), ["line 2"]);
}

#[test]
fn the_log_file_survives_logrotate_copytruncate() {
    let scene = Scene::new("logrotate-copytruncate");
    let log = scene.dir.join("service.log");
    let pid = start(&scene, &["--log", log.to_str().unwrap()]);
    scene.wait_event(&format!("run {pid}"), 1);
    print_line(&scene, 1);
    // copytruncate copies what the file holds: wait for the log pump to have written it.
    common::eventually("line 1 in the log", || {
        let lines = log_lines(&log);
        if lines == ["line 1"] {
            Ok(())
        } else {
            Err(lines)
        }
    });
    logrotate(&scene, &log, "    copytruncate\n");
    print_line(&scene, 2);
    assert!(is_alive(pid));
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    // Appending, the daemon writes at the new end of the truncated file: no hole, no loss.
    assert_eq!(log_lines(&scene.dir.join("service.log.1")), ["line 1"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "line 2\n");
}

/// The pids the daemon recorded as `child PID`, once there are `count`.
fn children(scene: &Scene, count: usize) -> Vec<i32> {
    let start = std::time::Instant::now();
    loop {
        let pids: Vec<i32> = scene
            .events()
            .iter()
            .filter_map(|event| event.strip_prefix("child ")?.parse().ok())
            .collect();
        if pids.len() >= count {
            return pids;
        }
        assert!(start.elapsed() < HANG, "{:?}", scene.events());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn stop_ends_the_processes_the_daemon_started() {
    let scene = Scene::new("children");
    let pid = start(&scene, &["--children", "3"]);
    let sleeps = children(&scene, 3);
    for child in &sleeps {
        assert!(is_alive(*child));
        assert_eq!(
            common::stat(*child).unwrap().session,
            common::stat(pid).unwrap().session
        );
    }
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    for child in sleeps {
        assert!(
            common::wait_gone(child, HANG),
            "child {child} outlived the daemon"
        );
    }
    scene.wait_event("atexit", 1);
}

#[test]
fn children_that_ignore_sigterm_are_killed() {
    let scene = Scene::new("stubborn-children");
    // Grace 100 ms of a 1 s stop timeout: the children get 450 ms after SIGTERM.
    let pid = start(
        &scene,
        &[
            "--children",
            "2",
            "--stubborn-children",
            "--grace",
            "100",
            "--stop-timeout",
            "1000",
        ],
    );
    let sleeps = children(&scene, 2);
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(!is_alive(pid));
    for child in sleeps {
        assert!(
            common::wait_gone(child, HANG),
            "child {child} outlived the daemon"
        );
    }
    assert!(!scene.pidfile().exists());
}

#[test]
fn keep_children_lets_them_outlive_the_daemon() {
    let scene = Scene::new("keep-children");
    let pid = start(&scene, &["--children", "1", "--keep-children"]);
    let sleeps = children(&scene, 1);
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(common::wait_gone(pid, HANG));
    assert!(is_alive(sleeps[0]), "the child was meant to survive");
    // SAFETY: killing the process this test's daemon left behind on purpose.
    unsafe { libc::kill(sleeps[0], libc::SIGKILL) };
}

/// An example's binary, brought up to date (`cargo test --test it` alone does not build
/// examples), with the features this test binary has.
fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    let mut build = StdCommand::new(env!("CARGO"));
    build.args(["build", "--example", name]);
    if cfg!(feature = "tokio") {
        build.args(["--features", "tokio"]);
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --example {name} failed");
    binary
}

/// The `greeter` example, a tokio server.
#[cfg(feature = "tokio")]
pub(crate) fn greeter_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| example_binary("greeter")).clone()
}

#[cfg(feature = "tokio")]
pub(crate) fn wait_for_log(log: &std::path::Path, needle: &str) {
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            start.elapsed() < HANG,
            "no {needle:?} in {:?}",
            std::fs::read_to_string(log)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[cfg(feature = "tokio")]
#[test]
fn the_tokio_example_reloads_and_shuts_down_gracefully() {
    use std::io::{BufRead, Write};

    let tokio_greeter = crate::greeter::Greeter::new("greeter");
    let scene = &tokio_greeter.scene;
    let (config, log, port) = (
        tokio_greeter.config(),
        tokio_greeter.log(),
        tokio_greeter.address.port(),
    );
    let greeter = |action: &str| tokio_greeter.act(action);
    let connect = || crate::greeter::hold(tokio_greeter.address);

    // A configuration setup cannot use: start fails with its message, nothing is left.
    std::fs::write(
        &config,
        format!("listen = 127.0.0.1:{port}\ncolour = blue\n"),
    )
    .unwrap();
    let (code, _, stderr) = greeter("start");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "error: the daemon's setup failed: {}:2: unknown key `colour`",
            config.display()
        )
    );
    assert_nothing_left(scene);

    std::fs::write(
        &config,
        format!("listen = 127.0.0.1:{port}\ngreeting = hello\n"),
    )
    .unwrap();
    let (code, stdout, _) = greeter("start");
    assert_eq!(code, Some(0), "{stdout}");
    let (_, _, greeting) = connect();
    assert_eq!(greeting, "hello\n");

    // Reload: new connections get the new greeting.
    let (mut open, mut open_reader, _) = connect();
    std::fs::write(
        &config,
        format!("listen = 127.0.0.1:{port}\ngreeting = bonjour\n"),
    )
    .unwrap();
    assert_eq!(greeter("reload").0, Some(0));
    wait_for_log(&log, "greeting is now \"bonjour\"");
    assert_eq!(connect().2, "bonjour\n");

    // Stop: no new connections, but the open one is served until the client is done.
    std::thread::scope(|threads| {
        let stopping = threads.spawn(|| greeter("stop"));
        // The one held open, and maybe the one that asked for the greeting above: the client
        // closed it, but under load the greeter may not have seen its end yet.
        wait_for_log(&log, " connection(s) open");
        let text = std::fs::read_to_string(&log).unwrap();
        let open_count = text
            .lines()
            .find_map(|line| line.strip_prefix("stopping: "))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|count| count.parse::<usize>().ok());
        assert!(
            matches!(open_count, Some(1 | 2)),
            "{open_count:?} open: {text}"
        );
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        open.write_all(b"still served\n").unwrap();
        let mut echo = String::new();
        open_reader.read_line(&mut echo).unwrap();
        assert_eq!(echo, "still served\n");
        drop((open, open_reader));
        let (code, stdout, _) = stopping.join().unwrap();
        assert_eq!((code, stdout.as_str()), (Some(0), "stopped"));
    });
    assert!(!scene.pidfile().exists());
}

#[cfg(feature = "tokio")]
#[test]
fn a_tokio_run_that_fails_ends_the_daemon_while_stopped_is_pending() {
    let scene = Scene::new("tokio-fail");
    let log = scene.dir.join("service.log");
    let pid = start(&scene, &["--tokio-fail", "--log", log.to_str().unwrap()]);
    // No stop is asked for: the failure alone ends the daemon, although a task still waits
    // on `daemon::stopped()` (no blocking thread keeps the runtime from shutting down).
    assert!(common::wait_gone(pid, HANG));
    scene.wait_event("atexit", 1);
    assert!(scene.events().contains(&"tokio waiting".to_owned()));
    assert_eq!(
        log_lines(&log),
        [format!(
            "deluxe[{pid}]: ERROR: run() failed: the upstream went away; stopping"
        )]
    );
}

/// The helper started the way systemd starts a socket-activated service: `socket` on
/// descriptor 3, `LISTEN_FDS=1`, `LISTEN_FDNAMES=web`, and `LISTEN_PID` naming the process
/// (a shell that sets it to its own pid, then execs the helper in its place).
fn socket_activated(scene: &Scene, socket: &TcpListener, args: &[&str]) -> StdCommand {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let mut command = StdCommand::new("sh");
    command
        .arg("-c")
        .arg(r#"export LISTEN_PID=$$; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_deluxe-services-helper"))
        .arg("--pidfile")
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .args(args)
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "web")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    let fd = socket.as_raw_fd();
    // SAFETY: dup2 and fcntl are async-signal-safe; the closure touches nothing else.
    unsafe {
        command.pre_exec(move || {
            if fd == 3 {
                // Already there: only close-on-exec must go.
                if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    command
}

fn ask(address: std::net::SocketAddr) -> String {
    let mut answer = String::new();
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_socket_passed_as_systemd_does_is_served_in_the_foreground() {
    let scene = Scene::new("listen-fds-foreground");
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let mut child = socket_activated(&scene, &socket, &["--listen-fds", "foreground"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    scene.wait_event(&format!("run {}", child.id()), 1);
    assert!(scene.events().contains(&"listen web".to_owned()));
    // The test's own copy closed: only the daemon's copy accepts.
    drop(socket);
    assert_eq!(
        ask(address),
        format!("uid {0} euid {0}\n", nix::unistd::getuid())
    );
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_socket_passed_to_the_controller_is_served_by_the_forked_daemon() {
    let scene = Scene::new("listen-fds-forked");
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let output = socket_activated(&scene, &socket, &["--listen-fds", "start"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", line(&output));
    let pid: i32 = line(&output)
        .strip_prefix("started ")
        .unwrap()
        .parse()
        .unwrap();
    scene.wait_event(&format!("run {pid}"), 1);
    assert!(scene.events().contains(&"listen web".to_owned()));
    drop(socket);
    // The controller is gone; the daemon kept the socket (not /dev/null) and serves it.
    let fds = common::open_fds(pid);
    assert!(
        fds.iter()
            .any(|(fd, target)| *fd == 3 && target.to_string_lossy().starts_with("socket:[")),
        "{fds:?}"
    );
    assert_eq!(
        ask(address),
        format!("uid {0} euid {0}\n", nix::unistd::getuid())
    );
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
}

#[test]
fn without_a_passed_socket_listen_fds_is_empty_and_setup_says_so() {
    let scene = Scene::new("listen-fds-none");
    let (ok, line) = helper(&scene, &["--listen-fds", "start"]);
    assert!(!ok);
    assert_eq!(
        line,
        "error SetupFailed: the daemon's setup failed: no socket was passed"
    );
    assert_nothing_left(&scene);
}

#[test]
fn the_watchdog_is_pinged_and_status_and_timeout_extensions_reach_the_manager() {
    let scene = Scene::new("watchdog");
    let notify = NotifySocket::bind(&scene.dir);
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    drop(socket);
    let mut child = services(&scene, &["--port", &port, "--announce", "foreground"])
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    assert_eq!(notify.next(), ["EXTEND_TIMEOUT_USEC=30000000"]);
    assert_eq!(notify.next(), ["STATUS=loading"]);
    assert_eq!(
        notify.next(),
        ["READY=1".to_owned(), format!("MAINPID={pid}")]
    );
    assert_eq!(notify.next(), ["STATUS=serving"]);
    // Pings keep coming while it serves (at half the interval).
    for _ in 0..3 {
        assert_eq!(notify.next(), ["WATCHDOG=1"]);
    }
    assert!(scene.events().contains(&"watchdog 200000".to_owned()));
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(child.wait().unwrap().success());

    // A watchdog addressed to another process is not this daemon's.
    let mut child = services(&scene, &["--port", &port, "--announce", "foreground"])
        .env("WATCHDOG_USEC", "200000")
        .env("WATCHDOG_PID", "1")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    scene.wait_event("watchdog none", 1);
    assert_eq!(helper(&scene, &["stop"]).1, "stopped Graceful");
    assert!(child.wait().unwrap().success());
}

/// One command line through `cli::main` (the `ticker` example) and through deluxe's arguments
/// flattened into clap (the `shards` example): options that contradict each other, or a
/// setting given twice, are wrong arguments in both (exit 2, nothing on stdout), and nothing
/// starts.
#[test]
fn contradicting_or_repeated_options_exit_2_through_cli_main_and_through_clap() {
    let scene = Scene::new("cli-conflicts");
    let shards = example_binary("shards");
    let cases: [&[&str]; 3] = [
        &["--foreground", "--background", "start"],
        &["start", "--background", "--foreground"],
        &["--stop-timeout", "1", "start", "--stop-timeout=2"],
    ];
    for args in cases {
        let (code, stdout, stderr) = scene.ticker(args);
        assert_eq!(
            (code, stdout.as_str()),
            (2, ""),
            "ticker {args:?}: {stderr}"
        );
        assert!(stderr.starts_with("ticker: "), "{stderr}");
        let output = StdCommand::new(&shards)
            .arg("--dir")
            .arg(&scene.dir)
            .args(["daemon", "1"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "shards {args:?}: {output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
    }
    let pidfiles = std::fs::read_dir(&scene.dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "pid"))
        .count();
    assert_eq!(pidfiles, 0, "a daemon started");
    assert!(!scene.pidfile().exists());
}

#[test]
fn several_instances_from_one_program_through_a_clap_command_line() {
    let scene = Scene::new("shards");
    let binary = example_binary("shards");
    let shards = |args: &[&str]| {
        let output = StdCommand::new(&binary)
            .arg("--dir")
            .arg(&scene.dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let started = |id: &str| -> i32 {
        let (code, stdout) = shards(&["daemon", id, "start"]);
        assert_eq!(code, Some(0), "{stdout}");
        stdout
            .trim()
            .strip_prefix("started (pid ")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap()
            .parse()
            .unwrap()
    };
    let one = started("1");
    let two = started("2");
    assert_ne!(one, two);
    // Each instance carries its own kernel name, as `ps` and `top` show it.
    for (pid, name) in [(one, "shard-1"), (two, "shard-2")] {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm, format!("{name}\n"));
        let ps = StdCommand::new("ps")
            .args(["-o", "comm=", "-p", &pid.to_string()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), name);
    }
    assert_eq!(
        shards(&["list"]),
        (
            Some(0),
            format!("shard-1: running (pid {one})\nshard-2: running (pid {two})\n")
        )
    );
    // Each instance has its own log, chosen at run time.
    assert_eq!(shards(&["daemon", "1", "reload"]).0, Some(0));
    let log = scene.dir.join("shard-1.log");
    crate::common::eventually("shard 1 reloaded", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text == "shard 1 serving\nshard 1 reloaded\n" {
            Ok(())
        } else {
            Err(text)
        }
    });
    // A shard declares no `on_user1` hook: the line does not claim one ran.
    assert_eq!(
        shards(&["daemon", "1", "user1"]),
        (Some(0), "sent SIGUSR1\n".into())
    );
    // deluxe's options, flattened into the subcommand, reach the action.
    assert_eq!(
        shards(&["daemon", "1", "stop", "--stop-timeout", "30"]),
        (Some(0), "stopped\n".into())
    );
    // Not running: an action that needs it running exits 7, as `reload` does.
    assert_eq!(shards(&["daemon", "1", "user2"]), (Some(7), String::new()));
    // deluxe's exit codes come out of the larger program: 3, not running.
    assert_eq!(
        shards(&["daemon", "1", "status"]),
        (Some(3), "not running\n".into())
    );
    assert_eq!(shards(&["daemon", "2", "status"]).0, Some(0));
    assert_eq!(
        shards(&["list"]),
        (Some(0), format!("shard-2: running (pid {two})\n"))
    );
    // clap's own usage errors keep clap's code, deluxe's options' too.
    assert_eq!(shards(&["daemon", "2", "strat"]).0, Some(2));
    assert_eq!(
        shards(&["daemon", "2", "stop", "--stop-timeout", "soon"]).0,
        Some(2)
    );
    assert_eq!(shards(&["daemon", "2", "stop"]).0, Some(0));
    assert!(!is_alive(two));
}

/// The command line on the services helper's daemon, through its controller (`cli`) or its
/// instance (`cli-instance`): exit code and stdout.
fn cli(scene: &Scene, mode: &str, action: &str) -> (Option<i32>, String) {
    let output = services(scene, &[mode, action]).output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn the_command_line_acts_on_an_instance_and_names_only_the_hooks_the_daemon_declares() {
    let scene = Scene::new("cli-instance");
    let pid = start(&scene, &[]);
    let (code, status) = cli(&scene, "cli-instance", "status");
    assert_eq!(code, Some(0));
    assert!(
        status.starts_with(&format!("running (pid {pid}, since ")),
        "{status}"
    );
    // The service declares `#[on_user1]`, not `#[on_user2]`: the controller's lines say so;
    // an instance, without the daemon value, names no hook.
    for (mode, action, line, event) in [
        ("cli", "user1", "sent SIGUSR1 (on_user1)", Some("printed 1")),
        ("cli", "user2", "sent SIGUSR2", None),
        ("cli-instance", "user1", "sent SIGUSR1", Some("printed 2")),
        (
            "cli-instance",
            "reload",
            "reloaded (log reopened, on_reload done)",
            Some("reload 1"),
        ),
    ] {
        assert_eq!(
            cli(&scene, mode, action),
            (Some(0), format!("{line}\n")),
            "{mode} {action}"
        );
        if let Some(event) = event {
            scene.wait_event(event, 1);
        }
    }
    // Starting needs the daemon value: a usage error, and the daemon is left alone.
    assert_eq!(
        cli(&scene, "cli-instance", "start"),
        (Some(2), String::new())
    );
    assert_eq!(
        cli(&scene, "cli-instance", "restart"),
        (Some(2), String::new())
    );
    assert!(is_alive(pid));
    assert_eq!(
        cli(&scene, "cli-instance", "stop"),
        (Some(0), "stopped\n".into())
    );
    assert!(common::wait_gone(pid, HANG));
    assert_eq!(
        cli(&scene, "cli-instance", "status"),
        (Some(3), "not running\n".into())
    );
    // Not running: every action that needs it running exits 7, by either path.
    for mode in ["cli", "cli-instance"] {
        for action in ["reload", "user1", "user2"] {
            assert_eq!(
                cli(&scene, mode, action),
                (Some(7), String::new()),
                "{mode} {action}"
            );
        }
    }
}

#[test]
fn a_passed_number_that_holds_no_socket_is_never_handed_out() {
    // LISTEN_FDS=1, but descriptor 3 closed: the helper's own journal (opened first, before
    // anything asked) or the runtime's /dev/null or pidfile then takes number 3, and must not
    // be handed out as the passed socket: it would have two owners.
    for action in ["start", "foreground"] {
        let scene = Scene::new(&format!("listen-fds-missing-{action}"));
        let output = StdCommand::new("sh")
            .arg("-c")
            .arg(r#"export LISTEN_PID=$$; exec 3<&-; exec "$0" "$@""#)
            .arg(env!("CARGO_BIN_EXE_deluxe-services-helper"))
            .arg("--pidfile")
            .arg(scene.pidfile())
            .arg("--events")
            .arg(scene.events_path())
            .args(["--listen-fds", action])
            .env("LISTEN_FDS", "1")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(
            line(&output),
            "error SetupFailed: the daemon's setup failed: descriptor 3, counted in LISTEN_FDS, \
             is neither a socket nor a FIFO (a file the program opened before asking?); \
             refusing to take it",
            "{action}"
        );
        assert_nothing_left(&scene);
    }
}
