//! What the areas share: the `Scene` fixture, scratch directories, `eventually`, the helper
//! programs, `/proc`, and the record of skipped tests.

use std::ffi::OsString;
use std::fmt::{Debug, Display};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// The account `.ci/run` creates for tests that run commands as another user: a real user
/// with `/bin/bash`.
pub const TEST_USER: &str = "deluxe-user";
/// A second account `.ci/run` creates, with a `nologin` shell.
pub const NOLOGIN_USER: &str = "deluxe-nologin";
/// A system account `.ci/run` creates (UID below `UID_MIN`) with `/bin/bash`.
pub const SYSTEM_USER: &str = "deluxe-sys";

/// The variable that turns every skip into a failure: `.ci/run` sets it, as it installs
/// everything the tests need.
pub const REQUIRE_ALL: &str = "DELUXE_REQUIRE_ALL";

/// The tests skipped in this run, with why: printed when the test binary exits.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Files to remove when the test binary exits (made once, used by many tests).
static REMOVE_AT_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Runs [`at_exit`] when the test binary exits (once registered).
fn register_at_exit() {
    static REGISTERED: Once = Once::new();
    // SAFETY: atexit registers a function with no arguments to run at exit.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(at_exit);
    });
}

/// At exit: removes the files registered with [`remove_at_exit`], and writes the list of
/// skipped tests to the real stderr (the test harness captures `eprintln!` of passing tests,
/// not writes to the descriptor), so that `cargo test` ends with it.
extern "C" fn at_exit() {
    use std::io::Write;
    let removed = std::mem::take(&mut *REMOVE_AT_EXIT.lock().unwrap_or_else(|p| p.into_inner()));
    for path in removed {
        let _ = std::fs::remove_file(path);
    }
    let mut skipped = std::mem::take(&mut *SKIPPED.lock().unwrap_or_else(|p| p.into_inner()));
    if skipped.is_empty() {
        return;
    }
    skipped.sort();
    let mut text = format!(
        "\n{} test(s) checked nothing on this machine (skipped):\n",
        skipped.len()
    );
    for line in &skipped {
        text.push_str(&format!("  skipped {line}\n"));
    }
    text.push_str(&format!(
        "`bash .ci/run` installs what they need; with {REQUIRE_ALL}=1 a skip fails its test\n"
    ));
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Writes `contents` to a new executable file at `path`, with `mode`, from a child process
/// (`sh -c 'cat > PATH'`), so that this process never holds the file open for writing: a
/// program another test forks meanwhile inherits every descriptor until it execs, and running
/// the file while such a copy of a writing descriptor is open fails with `ETXTBSY` ("Text file
/// busy"), as it did once under many test threads.
pub fn write_executable(path: &Path, contents: &[u8], mode: u32) {
    use std::io::Write;
    let mut writer = StdCommand::new("sh")
        .args(["-c", "cat > \"$1\" && chmod \"$2\" \"$1\"", "sh"])
        .arg(path)
        .arg(format!("{mode:o}"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writer.stdin.take().unwrap().write_all(contents).unwrap();
    let status = writer.wait().unwrap();
    assert!(
        status.success(),
        "cannot write {}: {status}",
        path.display()
    );
}

/// Copies the program `from` to `to` from a child process (`cp`), for the reason
/// [`write_executable`] gives.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = StdCommand::new("cp")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cannot copy {} to {}: {status}",
        from.display(),
        to.display()
    );
}

/// Removes `path` when the test binary exits.
pub fn remove_at_exit(path: PathBuf) {
    register_at_exit();
    REMOVE_AT_EXIT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path);
}

/// Records that `test` checks nothing here because `reason` (what it needs, and how to get
/// it): the test then returns, and the run ends with the list of skipped tests. With
/// `DELUXE_REQUIRE_ALL=1` (`.ci/run`, which installs everything) the test fails instead.
pub fn skip(test: &str, reason: &str) {
    assert!(
        std::env::var_os(REQUIRE_ALL).is_none_or(|value| value.is_empty() || value == "0"),
        "{test} cannot run: {reason}; {REQUIRE_ALL} is set, so this is a failure (see .ci/run)"
    );
    eprintln!("skipping {test}: {reason}");
    register_at_exit();
    SKIPPED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(format!("{test}: {reason}"));
}

/// Whether the machine has what a test needs (`sudo`, the test accounts, root). Where it does
/// not, the test is skipped ([`skip`]) with a message saying how to set it up.
pub fn has_sudo_setup(test: &str) -> bool {
    let ready = nix::unistd::geteuid().is_root()
        && StdCommand::new("sudo")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
        && [TEST_USER, NOLOGIN_USER, SYSTEM_USER]
            .iter()
            .all(|user| nix::unistd::User::from_name(user).is_ok_and(|u| u.is_some()));
    if !ready {
        skip(
            test,
            "needs root, sudo and the test accounts; run `bash .ci/run`",
        );
    }
    ready
}

/// Whether `program --version` runs and succeeds: the program is installed.
pub fn has_program(program: &str) -> bool {
    StdCommand::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The sudoers rules of the tests' account (`.ci/run` installs them too).
pub const TEST_SUDOERS: &str = include_str!("../../.ci/deluxe-tests.sudoers");

/// Makes sure `/etc/sudoers.d/deluxe-tests` holds [`TEST_SUDOERS`] (checked with `visudo`),
/// then says whether the sudo setup is there (see [`has_sudo_setup`]).
pub fn has_test_sudoers(test: &str) -> bool {
    if !has_sudo_setup(test) {
        return false;
    }
    let installed = Path::new("/etc/sudoers.d/deluxe-tests");
    // Tests of this process install it one at a time (their staged file has one name per
    // process); other processes stage under their own name and rename over it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if std::fs::read_to_string(installed).is_ok_and(|text| text == TEST_SUDOERS) {
        return true;
    }
    let staged = installed.with_file_name(format!(".deluxe-tests-{}", std::process::id()));
    std::fs::write(&staged, TEST_SUDOERS).unwrap();
    let checked = StdCommand::new("visudo")
        .arg("-cf")
        .arg(&staged)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o440)).unwrap();
    std::fs::rename(&staged, installed).unwrap();
    true
}

/// Waits until process `pid` has exited, and says whether it did within `bound` (a hang
/// guard, not a timing check). "Exited" is what the kernel reports through a pidfd: the process
/// may still be a zombie, waiting for its parent (or a slow init) to reap it.
pub fn wait_gone(pid: i32, bound: Duration) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    // SAFETY: the descriptor was just returned by pidfd_open and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = nix::poll::PollTimeout::try_from(bound).unwrap_or(nix::poll::PollTimeout::MAX);
    loop {
        match nix::poll::poll(&mut fds, timeout) {
            Ok(ready) => return ready > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => panic!("poll on pidfd: {errno}"),
        }
    }
}

/// A bound on waits that should take milliseconds: reaching it means a hang, not slowness.
pub const HANG: Duration = Duration::from_secs(60);

/// Waits until `poll` returns `Ok`, and returns its value. `poll` returns `Err` with what it
/// saw while the condition does not hold yet; if it still does not after [`HANG`], the test
/// fails with `what` it waited for and that last state. It polls every few milliseconds: for
/// conditions no descriptor can signal (a line in a file another process appends to).
pub fn eventually<T, S: Debug>(what: impl Display, mut poll: impl FnMut() -> Result<T, S>) -> T {
    let start = Instant::now();
    loop {
        match poll() {
            Ok(value) => return value,
            Err(state) => assert!(
                start.elapsed() < HANG,
                "waited {HANG:?} for {what}; last seen: {state:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A new empty directory for one test, unique in this run: `deluxe-NAME-PID-N` in the
/// temporary directory. Dropped when the test passes, it is removed; dropped while the test
/// fails (panics), it is kept for inspection and its path printed.
pub fn scratch_dir(name: &str) -> Scratch {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("deluxe-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch { path: dir }
}

/// A test's scratch directory (see [`scratch_dir`]): a path, removed with its content when
/// dropped, unless the test is failing.
#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// The directory, no longer removed when dropped: for a fixture that removes it itself
    /// with [`clean_up`].
    pub fn into_path(self) -> PathBuf {
        let this = std::mem::ManuallyDrop::new(self);
        this.path.clone()
    }
}

/// What becomes of a test's directory at its end: removed if the test passed, kept (and its
/// path printed) if it is failing.
pub fn clean_up(dir: &Path) {
    if std::thread::panicking() {
        eprintln!("kept the failed test's directory: {}", dir.display());
    } else if std::fs::remove_dir_all(dir).is_err() {
        // A process of the test may still be writing into it as it dies: once more then.
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        clean_up(&self.path);
    }
}

/// The fixture of a test that runs a daemon: its own directory, holding the pidfile, the
/// events file the daemon helper appends to, and a log file. The daemon is the helper program
/// (`helper`, `start`) or the `ticker` example (`ticker`). Dropping it kills any daemon its
/// pidfile still names (and whose command line names the directory), so that a failed
/// assertion leaves no process behind, then removes the directory if the test passed (see
/// [`scratch_dir`]).
pub struct Scene {
    pub dir: PathBuf,
}

impl Scene {
    pub fn new(name: &str) -> Self {
        Self {
            dir: scratch_dir(name).into_path(),
        }
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("daemon.pid")
    }

    pub fn events_path(&self) -> PathBuf {
        self.dir.join("events")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    /// The pid the pidfile holds; fails the test if it holds none.
    pub fn pid(&self) -> i32 {
        read_pidfile(&self.pidfile())
            .unwrap_or_else(|| panic!("no pid in {}", self.pidfile().display()))
    }

    /// Runs the helper with this scene's pidfile and events file, then `args`; returns whether
    /// it succeeded and the line it printed.
    pub fn helper(&self, args: &[&str]) -> (bool, String) {
        self.helper_with(&[], args)
    }

    pub fn helper_with(&self, options: &[&str], args: &[&str]) -> (bool, String) {
        let output = helper_command(&self.pidfile(), &self.events_path(), options, args)
            .output()
            .unwrap();
        (output.status.success(), result_line(&output.stdout))
    }

    /// Starts the daemon with `options`, checks that its pidfile names it, and returns its pid.
    pub fn start(&self, options: &[&str]) -> i32 {
        let pid = self.start_brief(options);
        assert_eq!(read_pidfile(&self.pidfile()), Some(pid));
        pid
    }

    /// Starts a daemon that may be gone, pidfile and all, by the time `start` returns (its
    /// `run` returns or panics at once), and returns its pid.
    pub fn start_brief(&self, options: &[&str]) -> i32 {
        let (ok, line) = self.helper_with(options, &["start"]);
        assert!(ok, "start failed: {line}");
        line.strip_prefix("started ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("not a start: {line}"))
    }

    /// The lines of the events file (none before the daemon writes one).
    pub fn events(&self) -> Vec<String> {
        lines_of(&self.events_path())
    }

    /// Runs `start-stop-daemon ARGS --pidfile PIDFILE` on this scene's pidfile; its exit code.
    pub fn start_stop_daemon(&self, args: &[&str]) -> Option<i32> {
        StdCommand::new("start-stop-daemon")
            .args(args)
            .arg("--pidfile")
            .arg(self.pidfile())
            .status()
            .unwrap()
            .code()
    }

    /// Waits until the events file holds `count` lines equal to `event`.
    pub fn wait_event(&self, event: &str, count: usize) {
        self.wait_events(format!("{event:?} x{count} in the events"), |events| {
            events.iter().filter(|line| *line == event).count() >= count
        });
    }

    /// Waits until the events, as a whole, satisfy `condition`.
    pub fn wait_events(&self, what: impl Display, condition: impl Fn(&[String]) -> bool) {
        eventually(what, || {
            let events = self.events();
            if condition(&events) {
                Ok(())
            } else {
                Err(events)
            }
        });
    }

    /// The `ticker` example's options for this scene's pidfile and log file.
    pub fn ticker_options(&self) -> Vec<OsString> {
        vec![
            "--pidfile".into(),
            self.pidfile().into(),
            "--log".into(),
            self.log().into(),
        ]
    }

    /// `ticker --pidfile P --log L ARGS`, ready to run.
    pub fn ticker_command(&self, args: &[&str]) -> StdCommand {
        let mut command = StdCommand::new(ticker_binary());
        command.args(self.ticker_options()).args(args);
        command
    }

    /// Runs `ticker --pidfile P --log L ARGS`; returns the exit code, stdout and stderr.
    pub fn ticker(&self, args: &[&str]) -> (i32, String, String) {
        let output = self
            .ticker_command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }

    /// The lines of the log file (none before the daemon writes one).
    pub fn log_lines(&self) -> Vec<String> {
        lines_of(&self.log())
    }

    /// Waits until a line of the log file satisfies `condition`.
    pub fn wait_log(&self, what: &str, condition: impl Fn(&str) -> bool) {
        eventually(format!("{what} in the log"), || {
            let lines = self.log_lines();
            if lines.iter().any(|line| condition(line)) {
                Ok(())
            } else {
                Err(lines)
            }
        });
    }
}

/// The lines of the file at `path` (none if it does not exist yet).
pub fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(pid) = read_pidfile(&self.pidfile())
            && is_alive(pid)
            && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| cmdline.contains(&*self.dir.to_string_lossy()))
        {
            // SAFETY: killing the daemon this test started (its command line names our dir).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_gone(pid, HANG);
        }
        clean_up(&self.dir);
    }
}

pub fn helper_command(
    pidfile: &Path,
    events: &Path,
    options: &[&str],
    args: &[&str],
) -> StdCommand {
    wrapped_helper_command(&[], pidfile, events, options, args)
}

/// [`helper_command`] run through `wrapper` (`["prlimit", "--nofile=8:"]`, `strace ...`):
/// the wrapper's words, then the helper and its arguments.
pub fn wrapped_helper_command(
    wrapper: &[OsString],
    pidfile: &Path,
    events: &Path,
    options: &[&str],
    args: &[&str],
) -> StdCommand {
    let helper = env!("CARGO_BIN_EXE_deluxe-daemon-helper");
    let mut command = match wrapper.split_first() {
        Some((program, words)) => {
            let mut command = StdCommand::new(program);
            command.args(words).arg(helper);
            command
        }
        None => StdCommand::new(helper),
    };
    command
        .arg("--pidfile")
        .arg(pidfile)
        .arg("--events")
        .arg(events)
        .args(options)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The helper's result line: the last line that is not noise from busy threads.
pub fn result_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default()
        .to_owned()
}

pub fn read_pidfile(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Fields of `/proc/PID/stat`.
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    pub tty: i32,
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    Some(Stat {
        state: fields[0].chars().next()?,
        ppid: fields[1].parse().ok()?,
        pgrp: fields[2].parse().ok()?,
        session: fields[3].parse().ok()?,
        tty: fields[4].parse().ok()?,
    })
}

/// Alive means running or sleeping: a zombie (exited, not yet reaped by a slow init) is gone.
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|stat| stat.state != 'Z' && stat.state != 'X')
}

/// Live processes whose command line mentions `needle` (a test's unique directory).
pub fn live_processes_mentioning(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32 && is_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
        .collect()
}

pub fn open_fds(pid: i32) -> Vec<(i32, PathBuf)> {
    let mut fds: Vec<(i32, PathBuf)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|entry| {
            (
                entry.file_name().to_str().unwrap().parse().unwrap(),
                std::fs::read_link(entry.path()).unwrap(),
            )
        })
        .collect();
    fds.sort();
    fds
}

/// The `ticker` example's binary: built by `cargo test` next to the test binaries' directory,
/// or built now when the test runs alone.
pub fn ticker_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| example_binary("ticker"))
}

/// The binary of example `name`: `cargo test` builds the examples; a run of this test binary
/// alone builds it if it is missing.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let binary = profile_dir.join("examples").join(name);
    if !binary.exists() {
        let status = StdCommand::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
    }
    binary
}

/// Starts `racers` helpers at once on the scene's pidfile (they wait for a file to appear, then
/// all call `start`); checks that exactly one started a daemon, that every other one got
/// `AlreadyRunning` with the winner's pid, and that the winner is the only live process of
/// the scene. Returns the winner's pid; the daemon is left running.
pub fn race_to_start(scene: &Scene, racers: usize, round: &str) -> i32 {
    let go = scene.dir.join(format!("go-{round}"));
    let go_arg = go.to_str().unwrap();
    let racers: Vec<_> = (0..racers)
        .map(|_| {
            helper_command(
                &scene.pidfile(),
                &scene.events_path(),
                &["--wait-for", go_arg],
                &["start"],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    std::fs::write(&go, "").unwrap();
    let lines: Vec<(bool, String)> = racers
        .into_iter()
        .map(|racer| {
            let output = racer.wait_with_output().unwrap();
            (output.status.success(), result_line(&output.stdout))
        })
        .collect();
    let winners: Vec<&String> = lines.iter().filter(|(ok, _)| *ok).map(|(_, l)| l).collect();
    assert_eq!(winners.len(), 1, "round {round}: {lines:?}");
    let pid: i32 = winners[0]
        .strip_prefix("started ")
        .unwrap()
        .parse()
        .unwrap();
    for (ok, line) in &lines {
        if !ok {
            assert!(
                line.starts_with(&format!("error AlreadyRunning {pid}:")),
                "round {round}: {line}"
            );
        }
    }
    assert_eq!(
        live_processes_mentioning(&scene.dir.to_string_lossy()),
        [pid],
        "round {round}"
    );
    assert_eq!(read_pidfile(&scene.pidfile()), Some(pid));
    pid
}

/// Runs the daemon helper as the test user (`sudo -n -u deluxe-user`) with this pidfile and
/// `args`; returns its exit code and its result line.
pub fn helper_as_test_user(pidfile: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = StdCommand::new("sudo")
        .args([
            "-n",
            "-u",
            TEST_USER,
            env!("CARGO_BIN_EXE_deluxe-daemon-helper"),
            "--pidfile",
        ])
        .arg(pidfile)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (output.status.code(), result_line(&output.stdout))
}

/// A service manager's notification socket, bound by the test.
pub struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    /// Where it is bound: the value of `NOTIFY_SOCKET`.
    pub path: PathBuf,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir`, with `SO_PASSCRED`.
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(HANG)).unwrap();
        // Each datagram carries its sender's pid (`next_with_sender`), as systemd's does.
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::PassCred, &true).unwrap();
        Self { socket, path }
    }

    /// The next notification, as its `KEY=VALUE` lines, with the pid that sent it (as
    /// systemd checks it for `NotifyAccess=main`: the kernel's `SCM_CREDENTIALS`).
    pub fn next_with_sender(&self) -> (i32, Vec<String>) {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
        let (len, sender) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match nix::sys::socket::recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => panic!("a notification arrives: {errno}"),
                Ok(message) => {
                    let sender = message.cmsgs().unwrap().find_map(|cmsg| match cmsg {
                        nix::sys::socket::ControlMessageOwned::ScmCredentials(credentials) => {
                            Some(credentials.pid())
                        }
                        _ => None,
                    });
                    break (message.bytes, sender.expect("the sender's credentials"));
                }
            }
        };
        let lines = String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_owned)
            .collect();
        (sender, lines)
    }

    /// The next notification, as its `KEY=VALUE` lines.
    pub fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let len = recv(&self.socket, &mut buf).expect("a notification arrives");
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// `socket.recv`, retried when a signal interrupts it: with a read timeout, `recv` fails with
/// `EINTR` even for a handler installed with `SA_RESTART` (tokio's `SIGCHLD` handler in this
/// test process, for one).
pub fn recv(socket: &std::os::unix::net::UnixDatagram, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match socket.recv(buf) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}
