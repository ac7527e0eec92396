//! Containers: a daemon as pid 1 of its own PID namespace (`unshare --pid --fork --mount-proc`,
//! as root), the way Docker and Kubernetes start it. Each scenario runs three ways: with
//! deluxe's init (the default at pid 1), under `tini` (`tini -- program --foreground start`),
//! and with the daemon itself as pid 1 (`--no-init`), where that shows what the init is for.

#![cfg(target_os = "linux")]

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    HANG, TEST_USER, eventually, has_sudo_setup, is_alive, scratch_dir, ticker_binary,
};

/// What is pid 1 of the namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pid1 {
    /// The program, which leaves pid 1 to deluxe's init and runs the daemon as pid 2.
    Deluxe,
    /// `tini`, which runs the program (`--foreground`) as pid 2.
    Tini,
    /// The program with `--no-init`: the daemon itself is pid 1.
    Bare,
}

/// Whether this machine can run the containers: root, `unshare`, and `tini` for the `tini`
/// runs; where it has not, the test is skipped (`.ci/run` installs `tini`, and makes a skip
/// fail).
fn can_run(test: &str, pid1: Pid1) -> bool {
    let has = crate::common::has_program;
    let ready =
        nix::unistd::geteuid().is_root() && has("unshare") && (pid1 != Pid1::Tini || has("tini"));
    if !ready {
        crate::common::skip(
            test,
            "needs root, unshare and tini; run `bash .ci/run` as root",
        );
    }
    ready
}

/// A PID namespace running one program as its pid 1, and the files of the test.
struct Container {
    dir: PathBuf,
    pid1: Pid1,
    unshare: Child,
    /// Pid 1 of the namespace, as this test sees it.
    init: i32,
}

impl Container {
    /// Starts `program args` as pid 1 of a new PID namespace (under `tini` for `Pid1::Tini`,
    /// adding `--no-init` for `Pid1::Bare`), with `env` added to its environment; the test's
    /// files are in `dir`.
    fn start(
        dir: PathBuf,
        pid1: Pid1,
        program: &Path,
        args: &[OsString],
        env: &[(&str, OsString)],
    ) -> Self {
        let mut argv: Vec<OsString> = Vec::new();
        if pid1 == Pid1::Tini {
            argv.extend(["tini".into(), "--".into()]);
        }
        argv.push(program.into());
        argv.extend(args.iter().cloned());
        if pid1 == Pid1::Bare {
            argv.push("--no-init".into());
        }
        // No core file from a daemon a test kills with SIGQUIT.
        let unshare = StdCommand::new("sh")
            .args(["-c", "ulimit -c 0 && exec \"$@\"", "sh"])
            .args(["unshare", "--pid", "--fork", "--mount-proc", "--"])
            .args(&argv)
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let expected = if pid1 == Pid1::Tini {
            std::fs::canonicalize(which("tini")).unwrap()
        } else {
            std::fs::canonicalize(program).unwrap()
        };
        let unshare_pid = unshare.id() as i32;
        let init = wait_for("pid 1 of the namespace", || {
            children(unshare_pid).into_iter().find(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(expected.clone())
            })
        });
        Self {
            dir,
            pid1,
            unshare,
            init,
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The daemon, as this test sees it: pid 2 of the namespace, or pid 1 itself without an
    /// init.
    fn daemon(&self) -> i32 {
        if self.pid1 == Pid1::Bare {
            return self.init;
        }
        wait_for("the daemon, pid 2 of the namespace", || {
            children(self.init)
                .into_iter()
                .find(|pid| namespace_pid(*pid) == Some(2))
        })
    }

    /// The daemon's pid inside the namespace.
    fn daemon_in_namespace(&self) -> i32 {
        if self.pid1 == Pid1::Bare { 1 } else { 2 }
    }

    fn signal_pid1(&self, signal: libc::c_int) {
        // SAFETY: signalling pid 1 of the namespace this test made.
        assert_eq!(unsafe { libc::kill(self.init, signal) }, 0);
    }

    /// Waits for pid 1 to exit; returns its exit code (as `unshare` passes it on).
    fn exit_code(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(status) = self.unshare.try_wait().unwrap() {
                return status.code().unwrap_or_else(|| {
                    panic!("unshare killed: {status}; stderr: {}", self.stderr())
                });
            }
            assert!(
                start.elapsed() < HANG,
                "pid 1 still runs; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Runs `program args` inside the namespace, as `docker exec` does; returns how it ended
    /// and its stdout.
    fn exec(&self, program: &Path, args: &[OsString]) -> (ExitStatus, String) {
        let output = StdCommand::new("nsenter")
            .arg("--target")
            .arg(self.init.to_string())
            .args(["--pid", "--mount", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // A failed assertion leaves the namespace running: ending its pid 1 ends all of it.
        if self.unshare.try_wait().ok().flatten().is_none() {
            // SAFETY: killing pid 1 of the namespace this test made.
            unsafe { libc::kill(self.init, libc::SIGKILL) };
            let _ = self.unshare.wait();
        }
        crate::common::clean_up(&self.dir);
    }
}

/// A new, empty directory for a test's files.
fn fresh_dir(name: &str, pid1: Pid1) -> PathBuf {
    scratch_dir(&format!("container-{name}-{pid1:?}")).into_path()
}

/// Waits until `find` finds something (bounded by [`HANG`]).
fn wait_for<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    eventually(what, || find().ok_or("not yet"))
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|child| child.parse().ok())
        .collect()
}

/// The pid a process has in its own PID namespace (the last `NSpid` field).
fn namespace_pid(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until the file holds a line for which `matches` holds; returns it.
fn wait_line(path: &Path, matches: impl Fn(&str) -> bool) -> String {
    eventually(format!("a line in {}", path.display()), || {
        let lines = lines(path);
        lines
            .iter()
            .find(|line| matches(line))
            .cloned()
            .ok_or(lines)
    })
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// The ticker example as the container's program: `ticker --pidfile P --log L start`, and
/// under `tini` `tini -- ticker --pidfile P --log L start --foreground`.
fn ticker(name: &str, pid1: Pid1) -> Container {
    let dir = fresh_dir(name, pid1);
    let mut args = vec![
        "--pidfile".into(),
        dir.join("ticker.pid").into(),
        "--log".into(),
        dir.join("ticker.log").into(),
        "start".into(),
    ];
    if pid1 == Pid1::Tini {
        args.push("--foreground".into());
    }
    let container = Container::start(dir, pid1, ticker_binary(), &args, &[]);
    let pid = container.daemon_in_namespace();
    wait_line(&container.path("ticker.log"), |line| {
        line == format!("started (pid {pid})")
    });
    container
}

/// The test helper as the container's program, in `mode`: `helper --pidfile P --events E
/// --mode MODE OPTIONS foreground`, its files in `dir`.
fn helper_in(
    dir: PathBuf,
    pid1: Pid1,
    mode: &str,
    options: &[&str],
    env: &[(&str, OsString)],
) -> Container {
    let mut args = vec![
        "--pidfile".into(),
        dir.join("daemon.pid").into(),
        "--events".into(),
        dir.join("events").into(),
        "--mode".into(),
        mode.into(),
    ];
    args.extend(os(options));
    args.push("foreground".into());
    Container::start(
        dir,
        pid1,
        Path::new(env!("CARGO_BIN_EXE_deluxe-daemon-helper")),
        &args,
        env,
    )
}

/// The test helper as the container's program, its files in a new directory.
fn helper(name: &str, pid1: Pid1, mode: &str, options: &[&str]) -> Container {
    helper_in(fresh_dir(name, pid1), pid1, mode, options, &[])
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

// SIGTERM to pid 1, as `docker stop` and a pod deletion send it.

fn sigterm_to_pid1_runs_atexit_and_exits_0(pid1: Pid1) {
    if !can_run("sigterm_to_pid1", pid1) {
        return;
    }
    let mut container = ticker("sigterm", pid1);
    let pidfile = container.path("ticker.pid");
    let in_namespace = container.daemon_in_namespace();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{in_namespace}\n")
    );
    let daemon = container.daemon();
    let log = container.path("ticker.log");
    container.signal_pid1(libc::SIGTERM);
    assert_eq!(container.exit_code(), 0);
    assert_eq!(count(&lines(&log), "atexit"), 1, "{:?}", lines(&log));
    assert!(!pidfile.exists(), "the daemon removes its pidfile");
    assert!(!is_alive(daemon));
}

#[test]
fn sigterm_to_pid1_runs_atexit_and_exits_0_with_the_init() {
    sigterm_to_pid1_runs_atexit_and_exits_0(Pid1::Deluxe);
}

#[test]
fn sigterm_to_pid1_runs_atexit_and_exits_0_under_tini() {
    sigterm_to_pid1_runs_atexit_and_exits_0(Pid1::Tini);
}

#[test]
fn sigterm_to_pid1_runs_atexit_and_exits_0_without_the_init() {
    sigterm_to_pid1_runs_atexit_and_exits_0(Pid1::Bare);
}

#[test]
fn the_init_is_pid_1_holding_only_stdio_and_the_daemon_is_pid_2() {
    if !can_run("the_init_is_pid_1", Pid1::Deluxe) {
        return;
    }
    let mut container = ticker("shape", Pid1::Deluxe);
    let daemon = container.daemon();
    assert_eq!(namespace_pid(container.init), Some(1));
    assert_eq!(namespace_pid(daemon), Some(2));
    // The same program: the init is a fork of it, not another binary.
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/exe", container.init)).unwrap(),
        std::fs::read_link(format!("/proc/{daemon}/exe")).unwrap()
    );
    // The init closes every other descriptor right after forking the daemon.
    wait_for("the init holding only stdio", || {
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", container.init))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        (fds == ["0", "1", "2"]).then_some(())
    });
    // The init has one thread, waiting for signals (to forward, and SIGCHLD).
    let status = std::fs::read_to_string(format!("/proc/{}/status", container.init)).unwrap();
    assert!(status.contains("Threads:\t1\n"), "{status}");

    // `docker exec` of the program's own command line reaches the daemon through its pidfile.
    let pidfile = container.path("ticker.pid");
    let exec = |action: &str| {
        container.exec(
            ticker_binary(),
            &["--pidfile".into(), pidfile.clone().into(), action.into()],
        )
    };
    let (status, line) = exec("status");
    assert_eq!(status.code(), Some(0));
    assert!(line.starts_with("running (pid 2, since "), "{line}");
    let (status, line) = exec("user1");
    assert_eq!(
        (status.code(), line.as_str()),
        (Some(0), "sent SIGUSR1 (on_user1)")
    );
    wait_line(&container.path("ticker.log"), |line| line == "user1");
    // `stop` returns once the daemon has exited, unless the kernel ends it first: when pid 1
    // exits, every process left in the namespace is killed, the exec'd one too.
    let (status, line) = exec("stop");
    assert!(
        (status.code() == Some(0) && line == "stopped") || status.signal() == Some(libc::SIGKILL),
        "{status}: {line}"
    );
    let log = container.path("ticker.log");
    assert_eq!(
        container.exit_code(),
        0,
        "the container ends with its daemon"
    );
    assert_eq!(count(&lines(&log), "atexit"), 1);
}

// Orphans: 100 helpers that each leave one behind.

fn orphans_leave_zombies(pid1: Pid1) -> String {
    let mut container = helper("orphans", pid1, "orphans", &["--count", "100"]);
    let events = container.path("events");
    let zombies = wait_line(&events, |line| line.starts_with("zombies "));
    container.signal_pid1(libc::SIGTERM);
    assert_eq!(container.exit_code(), 0);
    assert_eq!(count(&lines(&events), "atexit"), 1);
    zombies
}

#[test]
fn orphans_of_100_helpers_leave_no_zombie_with_the_init() {
    if can_run("orphans", Pid1::Deluxe) {
        assert_eq!(orphans_leave_zombies(Pid1::Deluxe), "zombies 0");
    }
}

#[test]
fn orphans_of_100_helpers_leave_no_zombie_under_tini() {
    if can_run("orphans", Pid1::Tini) {
        assert_eq!(orphans_leave_zombies(Pid1::Tini), "zombies 0");
    }
}

#[test]
fn orphans_of_100_helpers_stay_zombies_without_the_init() {
    if can_run("orphans", Pid1::Bare) {
        assert_eq!(orphans_leave_zombies(Pid1::Bare), "zombies 100");
    }
}

// Exit codes while orphans are reaped: the init never takes a status someone waits for.

fn exit_codes_are_right_1000_times(pid1: Pid1) {
    let mut container = helper("exit-codes", pid1, "exit-codes", &["--count", "1000"]);
    let events = container.path("events");
    assert_eq!(
        wait_line(&events, |line| line.starts_with("exit-codes ")),
        "exit-codes ok 1000"
    );
    container.signal_pid1(libc::SIGTERM);
    assert_eq!(container.exit_code(), 0);
}

#[test]
fn exit_codes_are_right_1000_times_while_the_init_reaps_orphans() {
    if can_run("exit_codes", Pid1::Deluxe) {
        exit_codes_are_right_1000_times(Pid1::Deluxe);
    }
}

#[test]
fn exit_codes_are_right_1000_times_while_tini_reaps_orphans() {
    if can_run("exit_codes", Pid1::Tini) {
        exit_codes_are_right_1000_times(Pid1::Tini);
    }
}

// SIGUSR1, SIGUSR2 and SIGHUP sent to pid 1.

fn signals_to_pid1_reach_the_hooks(pid1: Pid1) {
    if !can_run("signals_to_pid1", pid1) {
        return;
    }
    let mut container = ticker("signals", pid1);
    let log = container.path("ticker.log");
    container.signal_pid1(libc::SIGUSR1);
    wait_line(&log, |line| line == "user1");
    container.signal_pid1(libc::SIGUSR2);
    wait_line(&log, |line| line.starts_with("ticks="));
    // SIGHUP reaches the daemon too: a reload (its log reopened, on_reload), not a stop.
    container.signal_pid1(libc::SIGHUP);
    wait_line(&log, |line| line == "reloaded");
    container.signal_pid1(libc::SIGTERM);
    assert_eq!(container.exit_code(), 0);
    let lines = lines(&log);
    assert_eq!(count(&lines, "user1"), 1, "{lines:?}");
    assert_eq!(count(&lines, "atexit"), 1, "{lines:?}");
}

#[test]
fn user_signals_and_sighup_to_pid1_reach_the_daemon_with_the_init() {
    signals_to_pid1_reach_the_hooks(Pid1::Deluxe);
}

#[test]
fn user_signals_and_sighup_to_pid1_reach_the_daemon_under_tini() {
    signals_to_pid1_reach_the_hooks(Pid1::Tini);
}

#[test]
fn user_signals_and_sighup_to_pid1_reach_the_daemon_without_the_init() {
    signals_to_pid1_reach_the_hooks(Pid1::Bare);
}

// Exit statuses: the daemon's becomes the container's.

fn a_panicking_run_exits_1(pid1: Pid1) {
    if !can_run("a_panicking_run", pid1) {
        return;
    }
    let mut container = helper("panic", pid1, "panic-run", &[]);
    let events = container.path("events");
    let pidfile = container.path("daemon.pid");
    assert_eq!(container.exit_code(), 1);
    assert_eq!(count(&lines(&events), "atexit"), 1, "{:?}", lines(&events));
    assert!(!pidfile.exists());
}

#[test]
fn a_panicking_run_makes_pid1_exit_1_with_the_init() {
    a_panicking_run_exits_1(Pid1::Deluxe);
}

#[test]
fn a_panicking_run_makes_pid1_exit_1_under_tini() {
    a_panicking_run_exits_1(Pid1::Tini);
}

#[test]
fn a_panicking_run_makes_pid1_exit_1_without_the_init() {
    a_panicking_run_exits_1(Pid1::Bare);
}

fn killed_by_a_signal_exits_128_plus_n(pid1: Pid1) {
    if !can_run("killed_by_a_signal", pid1) {
        return;
    }
    // The daemon killed (by the OOM killer, say).
    let mut container = helper("sigkill", pid1, "normal", &[]);
    let daemon = container.daemon();
    wait_line(&container.path("events"), |line| line == "run 2");
    // SAFETY: killing the daemon of the namespace this test made.
    assert_eq!(unsafe { libc::kill(daemon, libc::SIGKILL) }, 0);
    assert_eq!(container.exit_code(), 128 + libc::SIGKILL);

    // SIGQUIT sent to pid 1 reaches the daemon, whose default action ends it.
    let mut container = helper("sigquit", pid1, "normal", &[]);
    wait_line(&container.path("events"), |line| line == "run 2");
    container.signal_pid1(libc::SIGQUIT);
    assert_eq!(container.exit_code(), 128 + libc::SIGQUIT);
}

#[test]
fn a_daemon_killed_by_signal_n_makes_pid1_exit_128_plus_n_with_the_init() {
    killed_by_a_signal_exits_128_plus_n(Pid1::Deluxe);
}

#[test]
fn a_daemon_killed_by_signal_n_makes_pid1_exit_128_plus_n_under_tini() {
    killed_by_a_signal_exits_128_plus_n(Pid1::Tini);
}

// The rest of the daemon's contract holds at pid 1 as anywhere.

#[test]
fn readiness_pidfile_and_privilege_drop_at_pid1_are_as_in_the_foreground() {
    if !can_run("readiness_at_pid1", Pid1::Deluxe)
        || !has_sudo_setup("readiness_pidfile_and_privilege_drop_at_pid1")
    {
        return;
    }
    let dir = fresh_dir("privileges", Pid1::Deluxe);
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    let socket_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    // The daemon tells it once it runs as the user.
    std::fs::set_permissions(
        &socket_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    notify.set_read_timeout(Some(HANG)).unwrap();
    let next = || {
        let mut buf = [0u8; 4096];
        let len = crate::common::recv(&notify, &mut buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut container = helper_in(
        dir.clone(),
        Pid1::Deluxe,
        "normal",
        &["--user", TEST_USER, "--user1-reloads"],
        &[
            ("NOTIFY_SOCKET", socket_path.clone().into()),
            ("LISTEN_PID", "1".into()),
        ],
    );
    // Ready once the pidfile is locked and the hooks are in place, from the daemon.
    assert_eq!(next(), ["READY=1", "MAINPID=2"]);
    let events = container.path("events");
    wait_line(&events, |line| line == "run 2");
    // Sockets handed to pid 1 (`LISTEN_PID=1`) are the daemon's.
    wait_line(&events, |line| line == "listen-pid 2");
    wait_line(&events, |line| line == "setuid0 EPERM");
    let pidfile = container.path("daemon.pid");
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), "2\n");
    let daemon = container.daemon();
    let uid_line = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(|id| id.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(uid_line(daemon), [user.uid.as_raw(); 4]);
    assert_eq!(uid_line(container.init), [0; 4], "the init stays root");

    // The reload hook, announced around it, through pid 1.
    container.signal_pid1(libc::SIGUSR1);
    assert_eq!(next()[0], "RELOADING=1");
    assert_eq!(next(), ["READY=1"]);
    wait_line(&events, |line| line == "user1");

    container.signal_pid1(libc::SIGTERM);
    assert_eq!(next(), ["STOPPING=1"]);
    assert_eq!(container.exit_code(), 0);
    assert_eq!(count(&lines(&events), "atexit"), 1);
    assert!(
        !pidfile.exists(),
        "the dropped daemon removes its own pidfile"
    );
}

#[test]
fn a_pid1_with_other_threads_runs_the_daemon_itself_as_pid1() {
    if !can_run("a_pid1_with_other_threads", Pid1::Deluxe) {
        return;
    }
    // Forking a process with other threads could leave the daemon on a lock it can never
    // take: the daemon runs as pid 1 instead (and says so in a warning). Its signal handler
    // still takes the signals, whichever thread they land on.
    let mut container = helper("threads", Pid1::Deluxe, "normal", &["--idle-thread"]);
    let events = container.path("events");
    wait_line(&events, |line| line == "run 1");
    assert!(children(container.init).is_empty());
    container.signal_pid1(libc::SIGTERM);
    assert_eq!(container.exit_code(), 0);
    assert_eq!(count(&lines(&events), "atexit"), 1);
}
