//! deluxe's daemons under a real systemd (root only): readiness, status text, reload, the
//! watchdog, socket activation, `Type=forking`, stop, the shipped unit, and (with `--features
//! tokio`, through the `greeter` example) restarts that refuse no connection: the hand-over as
//! `ExecReload=`, and a plain `systemctl restart` where a `.socket` unit holds the socket.
//!
//! Each test boots its own systemd ([`Systemd`]) as pid 1 of new PID, mount, cgroup, UTS and
//! IPC namespaces, so that no test sees another's units or leftovers and a failing one leaves
//! nothing for the next (a boot costs a fraction of a second). What keeps the machine out of
//! it:
//! - `SYSTEMD_UNIT_PATH` names only the test's own unit directory, which holds the few targets
//!   and the slice every unit's default dependencies name, all empty: none of the machine's
//!   units (`systemd-tmpfiles-setup`, which empties `/tmp`; `systemd-sysctl`; journald) exists
//!   there, so none can be started.
//! - `/proc/sys` is mounted read-only and `/run` is a private tmpfs; `container=` tells systemd
//!   it is in a container; `/dev/console` is the test's `console` file (systemd's log).
//! - cgroup v2 is mounted inside, rooted at a cgroup made for the test (this host mounts cgroup
//!   v1 at `/sys/fs/cgroup`, v2 at `/sys/fs/cgroup/unified`).
//!
//! `nsenter -t PID -m -p systemctl ...` drives it. Tear-down: `SIGKILL` to that pid 1 (after
//! checking it is still the same process) ends everything in the namespace; then the cgroup
//! is removed.
//!
//! A newer systemd (254, Debian's bookworm-backports, fetched by `.ci/run` with
//! `apt-get download` into `target/systemd-254`, or `DELUXE_SYSTEMD_254` naming its `usr`
//! directory) is overlaid on `/usr` inside the mount namespace only: the checks run on both
//! the installed systemd and 254, and `Type=notify-reload` (new in 253) on 254.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};

use crate::common::{
    HANG, clean_up, eventually, has_program, lines_of, read_pidfile, scratch_dir, skip,
    ticker_binary, wait_gone,
};

/// Which systemd a test boots.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Release {
    /// The machine's own (Debian 12: 252).
    Installed,
    /// 254 from bookworm-backports, overlaid on `/usr` in the namespace.
    Backports,
}

/// The empty units that default dependencies name (`sysinit.target`, `basic.target`, ...):
/// present, so that starting a unit pulls in nothing of the machine's.
const BASE_UNITS: &[&str] = &[
    "deluxe-tests.target",
    "sysinit.target",
    "basic.target",
    "shutdown.target",
    "sockets.target",
    "timers.target",
    "paths.target",
    "network.target",
    "multi-user.target",
    "system.slice",
];

/// Where `.ci/run` puts systemd 254's `usr` tree; `DELUXE_SYSTEMD_254` overrides it.
fn backports_usr() -> PathBuf {
    std::env::var_os("DELUXE_SYSTEMD_254").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/systemd-254/usr"),
        PathBuf::from,
    )
}

/// The cgroup v2 hierarchy as this process sees it: where it is mounted, and this process's
/// cgroup in it.
fn cgroup2_home() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split_whitespace().next()? == "cgroup2")
            .then(|| before.split_whitespace().nth(4).map(PathBuf::from))?
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    Some(mount.join(own.trim_start_matches('/')))
}

/// Removes what a test binary killed before its tear-down left behind: the cgroups
/// `deluxe-systemd-NAME-PID-N` whose test binary, `PID`, is gone, with any process still in
/// them (`cgroup.kill`). Its systemds died with it (see [`Systemd::boot`]); this is the
/// backstop.
fn sweep_cgroups(home: &Path) {
    let Ok(entries) = std::fs::read_dir(home) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let binary = name
            .strip_prefix("deluxe-systemd-")
            .and_then(|rest| rest.rsplit('-').nth(1))
            .and_then(|pid| pid.parse::<i32>().ok());
        if let Some(pid) = binary
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::write(entry.path().join("cgroup.kill"), "1");
            remove_cgroups(&entry.path());
        }
    }
}

/// Removes the cgroup at `top` and those below it, deepest first, waiting (bounded by
/// [`HANG`]) while one is busy with processes that are still exiting.
fn remove_cgroups(top: &Path) {
    let mut cgroups = Vec::new();
    let mut pending = vec![top.to_path_buf()];
    while let Some(cgroup) = pending.pop() {
        if let Ok(entries) = std::fs::read_dir(&cgroup) {
            pending.extend(
                entries
                    .flatten()
                    .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                    .map(|entry| entry.path()),
            );
        }
        cgroups.push(cgroup);
    }
    for cgroup in cgroups.iter().rev() {
        let removed = std::time::Instant::now();
        while std::fs::remove_dir(cgroup).is_err_and(|error| {
            error.raw_os_error() == Some(libc::EBUSY) && removed.elapsed() < HANG
        }) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The field of `/proc/PID/stat` that tells one process from a later one with the same pid:
/// its start time.
fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// What the inner shell does, as pid 1 of the new namespaces, before it becomes systemd:
/// `$1` the unit directory, `$2` the console file, `$3` the `usr` tree to overlay (or empty).
const INNER: &str = r#"set -e
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$2" /dev/console
if [ -n "$3" ]; then mount -t overlay overlay -o "lowerdir=$3:/usr" /usr; fi
exec env -i container=deluxe-tests SYSTEMD_UNIT_PATH="$1" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  /lib/systemd/systemd --unit=deluxe-tests.target --log-target=console
"#;

/// A systemd of a test's own (see the module doc), with the test's directory.
pub struct Systemd {
    /// The test's directory: `units/`, `console` (systemd's log), and the daemons' files.
    pub dir: PathBuf,
    unshare: Child,
    /// The namespace's pid 1, as this process sees it.
    pid: i32,
    started: u64,
    cgroup: PathBuf,
    /// `systemctl --version`'s number (252, 254).
    pub version: u32,
}

impl Systemd {
    /// Boots a systemd for `test`, or says why it cannot here ([`skip`]) and returns `None`.
    pub fn boot(test: &str, release: Release) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() || !has_program("unshare") || !has_program("nsenter") {
            skip(
                test,
                "needs root, unshare and nsenter; run `bash .ci/run` as root",
            );
            return None;
        }
        if !Path::new("/lib/systemd/systemd").exists() {
            skip(
                test,
                "needs systemd (Debian's systemd package); run `bash .ci/run`",
            );
            return None;
        }
        let Some(home) = cgroup2_home() else {
            skip(test, "needs a cgroup v2 hierarchy mounted somewhere");
            return None;
        };
        let overlay = match release {
            Release::Installed => None,
            Release::Backports => {
                let usr = backports_usr();
                if !usr.join("lib/systemd/systemd").exists() {
                    skip(
                        test,
                        &format!(
                            "needs systemd 254 in {} (`bash .ci/run` fetches it, or set \
                             DELUXE_SYSTEMD_254)",
                            usr.display()
                        ),
                    );
                    return None;
                }
                Some(usr)
            }
        };
        let dir = scratch_dir(&format!("systemd-{test}")).into_path();
        let units = dir.join("units");
        std::fs::create_dir(&units).unwrap();
        for unit in BASE_UNITS {
            std::fs::write(units.join(unit), "[Unit]\nDefaultDependencies=no\n").unwrap();
        }
        let console = dir.join("console");
        std::fs::write(&console, "").unwrap();
        sweep_cgroups(&home);
        let cgroup = home.join(dir.file_name().unwrap());
        std::fs::create_dir(&cgroup).unwrap();
        // The outer shell moves itself into the test's cgroup, then becomes `unshare`, whose
        // child, pid 1 of the namespaces, runs INNER. If this test binary dies before the
        // tear-down, `unshare` gets SIGKILL, and so does the namespace's pid 1 (`--kill-child`).
        let mut unshare = StdCommand::new("sh");
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut unshare, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut unshare = unshare
            .arg("-c")
            .arg(
                "echo $$ > \"$1/cgroup.procs\" && shift && exec unshare --pid --fork \
                 --kill-child=SIGKILL --mount --cgroup --uts --ipc --mount-proc \
                 --propagation private sh -c \"$0\" systemd-ns \"$@\"",
            )
            .arg(INNER)
            .arg(&cgroup)
            .arg(&units)
            .arg(&console)
            .arg(overlay.as_deref().unwrap_or(Path::new("")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("unshare.err")).unwrap())
            .spawn()
            .unwrap();
        let unshare_pid = unshare.id();
        let pid = eventually("the namespace's pid 1 to become systemd", || {
            if let Ok(Some(status)) = unshare.try_wait() {
                panic!(
                    "unshare exited ({status}): {}",
                    std::fs::read_to_string(dir.join("unshare.err")).unwrap_or_default()
                );
            }
            let children =
                std::fs::read_to_string(format!("/proc/{unshare_pid}/task/{unshare_pid}/children"))
                    .unwrap_or_default();
            let pid: Option<i32> = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok());
            match pid {
                Some(pid)
                    if std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "systemd") =>
                {
                    Ok(pid)
                }
                _ => Err(std::fs::read_to_string(dir.join("unshare.err")).unwrap_or_default()),
            }
        });
        let mut systemd = Self {
            started: start_time(pid).unwrap(),
            dir,
            unshare,
            pid,
            cgroup,
            version: 0,
        };
        eventually("systemd to be running", || {
            let state = systemd.systemctl(["is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" {
                Ok(())
            } else {
                Err(state)
            }
        });
        let version = systemd.systemctl(["--version"]);
        systemd.version = String::from_utf8_lossy(&version.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|number| number.parse().ok())
            .unwrap();
        assert!(
            release == Release::Installed || systemd.version >= 254,
            "the overlay runs systemd {}",
            systemd.version
        );
        Some(systemd)
    }

    /// Runs `systemctl ARGS` in the namespace; its output.
    pub fn systemctl<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Output {
        StdCommand::new("nsenter")
            .arg("-t")
            .arg(self.pid.to_string())
            .args(["-m", "-p", "systemctl", "--no-pager", "--no-ask-password"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `systemctl ARGS` and checks that it succeeded; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.systemctl(args);
        assert!(
            output.status.success(),
            "systemctl {args:?} failed: {}{}\nconsole: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.console()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `systemctl show -p PROPERTY --value UNIT`.
    pub fn show(&self, unit: &str, property: &str) -> String {
        self.ok(&["show", "-p", property, "--value", unit])
            .trim_end_matches('\n')
            .to_owned()
    }

    /// The unit's main pid, in the namespace (0: none).
    pub fn main_pid(&self, unit: &str) -> i32 {
        self.show(unit, "MainPID").parse().unwrap()
    }

    /// Writes `unit` (file name, text) into the unit directory and reloads systemd.
    pub fn install(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join("units").join(name), text).unwrap();
        self.ok(&["daemon-reload"]);
    }

    /// The processes in the unit's cgroup, as this process sees them (none once it is gone).
    pub fn unit_processes(&self, unit: &str) -> Vec<i32> {
        std::fs::read_to_string(
            self.cgroup
                .join("system.slice")
                .join(unit)
                .join("cgroup.procs"),
        )
        .unwrap_or_default()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect()
    }

    /// A path inside the namespace's private `/run`, as this process can read it.
    pub fn run_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/run", self.pid)).join(path.trim_start_matches('/'))
    }

    /// What systemd logged (its console).
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console")).unwrap_or_default()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        let alive = start_time(self.pid) == Some(self.started);
        if alive && std::thread::panicking() {
            // What the failed test left: every unit's state, kept beside its files.
            let status = self.systemctl(["status", "--all", "--full"]);
            std::fs::write(self.dir.join("status"), &status.stdout).unwrap_or_default();
            eprintln!(
                "systemctl status --all:\n{}",
                String::from_utf8_lossy(&status.stdout)
            );
        }
        // Only the namespace's pid 1 that this test started: its start time tells it from a
        // later process that got the same pid.
        if alive {
            // SAFETY: killing pid 1 of the namespace this test made ends the namespace.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            wait_gone(self.pid, HANG);
        }
        let _ = self.unshare.wait();
        // The cgroups systemd made; each empties as the killed processes go.
        remove_cgroups(&self.cgroup);
        if std::thread::panicking() {
            eprintln!("systemd's console:\n{}", self.console());
        }
        clean_up(&self.dir);
    }
}

/// Two tests from one check: on the installed systemd (252) and on 254.
macro_rules! on_both {
    ($($check:ident),* $(,)?) => {
        $(
            mod $check {
                use super::{Release, Systemd};

                #[test]
                fn on_installed() {
                    let test = concat!(stringify!($check), "_on_installed");
                    if let Some(systemd) = Systemd::boot(test, Release::Installed) {
                        super::$check(&systemd);
                    }
                }

                #[test]
                fn on_254() {
                    let test = concat!(stringify!($check), "_on_254");
                    if let Some(systemd) = Systemd::boot(test, Release::Backports) {
                        super::$check(&systemd);
                    }
                }
            }
        )*
    };
}

on_both!(
    notify_start_returns_once_ready_with_the_daemon_as_main_pid_and_its_status,
    a_failing_setup_fails_the_start_and_its_message_is_the_status_text,
    reload_through_the_cli_runs_on_reload_in_the_same_main_pid,
    watchdog_pings_keep_it_alive_and_systemd_kills_it_when_they_stop,
    socket_activation_hands_over_a_named_socket_the_daemon_serves,
    forking_follows_the_daemons_pid_through_its_pidfile_and_stop_runs_atexit,
    stop_runs_atexit_succeeds_and_leaves_nothing_in_the_cgroup,
    the_shipped_ticker_unit_runs,
);

const SERVICES: &str = env!("CARGO_BIN_EXE_deluxe-services-helper");

/// `deluxe-services-helper --pidfile DIR/daemon.pid --events DIR/events ARGS`, for `ExecStart=`.
fn services_command(dir: &Path, args: &str) -> String {
    format!(
        "{SERVICES} --pidfile {} --events {} {args}",
        dir.join("daemon.pid").display(),
        dir.join("events").display()
    )
}

/// A `Type=notify` service running `exec_start`.
fn notify_unit(exec_start: &str) -> String {
    format!("[Service]\nType=notify\nExecStart={exec_start}\n")
}

/// A `Type=notify-reload` service (systemd 253 and later) running the services helper.
fn notify_reload_unit(dir: &Path) -> String {
    format!(
        "[Service]\nType=notify-reload\nExecStart={}\n",
        services_command(dir, "foreground")
    )
}

/// `ticker --pidfile DIR/ticker.pid --log DIR/ticker.log ACTION`, for `ExecStart=`.
fn ticker_command(dir: &Path, action: &str) -> String {
    format!(
        "{} --pidfile {} --log {} {action}",
        ticker_binary().display(),
        dir.join("ticker.pid").display(),
        dir.join("ticker.log").display()
    )
}

/// Waits until the file at `path` has a line `line`.
fn wait_line(path: &Path, line: &str) {
    eventually(format!("{line:?} in {}", path.display()), || {
        let lines = lines_of(path);
        if lines.iter().any(|l| l == line) {
            Ok(())
        } else {
            Err(lines)
        }
    });
}

fn notify_start_returns_once_ready_with_the_daemon_as_main_pid_and_its_status(systemd: &Systemd) {
    let dir = &systemd.dir;
    // `--announce`: setup says STATUS=loading, run says STATUS=serving; `--port 0`: it serves.
    systemd.install(
        "notify.service",
        &notify_unit(&services_command(dir, "--announce --port 0 foreground")),
    );
    systemd.ok(&["start", "notify.service"]);
    // `start` returned: the daemon was ready, its setup done, its pidfile written.
    assert!(lines_of(&dir.join("events")).contains(&"setup uid 0".to_owned()));
    assert_eq!(systemd.show("notify.service", "ActiveState"), "active");
    let main = systemd.main_pid("notify.service");
    assert_eq!(read_pidfile(&dir.join("daemon.pid")), Some(main));
    // The daemon is the unit's one process: no fork.
    assert_eq!(systemd.unit_processes("notify.service").len(), 1);
    eventually("StatusText=serving", || {
        let status = systemd.show("notify.service", "StatusText");
        if status == "serving" {
            Ok(())
        } else {
            Err(status)
        }
    });
    systemd.ok(&["stop", "notify.service"]);
    wait_line(&dir.join("events"), "atexit");
}

fn a_failing_setup_fails_the_start_and_its_message_is_the_status_text(systemd: &Systemd) {
    let dir = &systemd.dir;
    let config = dir.join("missing.conf");
    systemd.install(
        "setup.service",
        &notify_unit(&services_command(
            dir,
            &format!("--config {} foreground", config.display()),
        )),
    );
    let output = systemd.systemctl(["start", "setup.service"]);
    assert!(!output.status.success(), "the start failed");
    assert_eq!(systemd.show("setup.service", "ActiveState"), "failed");
    assert_eq!(systemd.show("setup.service", "Result"), "exit-code");
    // No journal runs here: the status text is what the operator reads.
    let status = systemd.show("setup.service", "StatusText");
    assert_eq!(
        status,
        format!(
            "the daemon's setup failed: config {}: No such file or directory (os error 2)",
            config.display()
        )
    );
    assert!(!dir.join("daemon.pid").exists());
}

fn reload_through_the_cli_runs_on_reload_in_the_same_main_pid(systemd: &Systemd) {
    let dir = &systemd.dir;
    systemd.install(
        "ticker.service",
        &format!(
            "[Service]\nType=notify\nExecStart={}\nExecReload={}\n",
            ticker_command(dir, "start"),
            ticker_command(dir, "reload")
        ),
    );
    systemd.ok(&["start", "ticker.service"]);
    let main = systemd.main_pid("ticker.service");
    assert_eq!(read_pidfile(&dir.join("ticker.pid")), Some(main));
    systemd.ok(&["reload", "ticker.service"]);
    wait_line(&dir.join("ticker.log"), "reloaded");
    assert_eq!(systemd.main_pid("ticker.service"), main);
    assert_eq!(systemd.show("ticker.service", "ActiveState"), "active");
    assert_eq!(systemd.show("ticker.service", "NRestarts"), "0");
    systemd.ok(&["stop", "ticker.service"]);
    wait_line(&dir.join("ticker.log"), "atexit");
}

#[test]
fn notify_reload_on_254_waits_for_reloading_and_ready() {
    let test = "notify_reload_on_254_waits_for_reloading_and_ready";
    let Some(systemd) = Systemd::boot(test, Release::Backports) else {
        return;
    };
    let dir = &systemd.dir;
    systemd.install("reload.service", &notify_reload_unit(dir));
    systemd.ok(&["start", "reload.service"]);
    assert_eq!(systemd.show("reload.service", "Type"), "notify-reload");
    let main = systemd.main_pid("reload.service");
    // systemd sends SIGHUP, then waits for RELOADING=1 (with MONOTONIC_USEC, or it would not
    // take it for this reload) and READY=1, which the daemon sends after `on_reload`: when
    // `systemctl reload` returns, the hook has run.
    systemd.ok(&["reload", "reload.service"]);
    assert!(
        lines_of(&dir.join("events")).contains(&"reload 1".to_owned()),
        "{:?}",
        lines_of(&dir.join("events"))
    );
    assert_eq!(systemd.main_pid("reload.service"), main);
    assert_eq!(systemd.show("reload.service", "ActiveState"), "active");
    systemd.ok(&["reload", "reload.service"]);
    assert!(lines_of(&dir.join("events")).contains(&"reload 2".to_owned()));
    systemd.ok(&["stop", "reload.service"]);
    wait_line(&dir.join("events"), "atexit");
}

#[test]
fn notify_reload_on_252_is_unknown_and_the_unit_runs_as_simple() {
    // What the README warns of: systemd 252 does not know `Type=notify-reload` (253 does); it
    // ignores the line and runs the unit as `Type=simple`, so the unit must say
    // `Type=notify` and `ExecReload=... reload` there.
    let test = "notify_reload_on_252_is_unknown_and_the_unit_runs_as_simple";
    let Some(systemd) = Systemd::boot(test, Release::Installed) else {
        return;
    };
    if systemd.version >= 253 {
        skip(test, "the installed systemd knows Type=notify-reload");
        return;
    }
    let dir = &systemd.dir;
    systemd.install("reload.service", &notify_reload_unit(dir));
    assert_eq!(systemd.show("reload.service", "Type"), "simple");
    systemd.ok(&["start", "reload.service"]);
    let output = systemd.systemctl(["reload", "reload.service"]);
    assert!(!output.status.success(), "no reload without ExecReload=");
    systemd.ok(&["stop", "reload.service"]);
}

fn watchdog_pings_keep_it_alive_and_systemd_kills_it_when_they_stop(systemd: &Systemd) {
    let dir = &systemd.dir;
    // The helper pings every half interval while it serves (3 s: a ping late by a loaded
    // machine's second still counts). Stopped (SIGSTOP), it cannot:
    // systemd sends the watchdog signal (SIGABRT, which waits while the process is stopped),
    // then SIGKILL after TimeoutAbortSec.
    systemd.install(
        "watchdog.service",
        &format!(
            "[Service]\nType=notify\nWatchdogSec=3\nTimeoutAbortSec=1\nExecStart={}\n",
            services_command(dir, "--announce --port 0 foreground")
        ),
    );
    systemd.ok(&["start", "watchdog.service"]);
    wait_line(&dir.join("events"), "watchdog 3000000");
    let main = systemd.main_pid("watchdog.service");
    // Each ping moves the watchdog's timestamp: several of them, spanning more than one
    // interval, while the unit stays active with the same main pid.
    let mut seen = vec![systemd.show("watchdog.service", "WatchdogTimestampMonotonic")];
    while seen.len() < 4 {
        let now = eventually("a new watchdog ping", || {
            let now = systemd.show("watchdog.service", "WatchdogTimestampMonotonic");
            if seen.contains(&now) {
                Err(now)
            } else {
                Ok(now)
            }
        });
        seen.push(now);
    }
    let first: u64 = seen[0].parse().unwrap();
    let last: u64 = seen[3].parse().unwrap();
    assert!(
        last - first > 3_000_000,
        "pings span more than WatchdogSec: {seen:?}"
    );
    assert_eq!(systemd.show("watchdog.service", "ActiveState"), "active");
    assert_eq!(systemd.main_pid("watchdog.service"), main);
    let daemon = systemd.unit_processes("watchdog.service");
    assert_eq!(daemon.len(), 1);
    // SAFETY: stopping the daemon this test's systemd runs.
    unsafe { libc::kill(daemon[0], libc::SIGSTOP) };
    eventually("systemd to kill the silent daemon", || {
        let result = systemd.show("watchdog.service", "Result");
        if result == "watchdog" {
            Ok(())
        } else {
            Err(result)
        }
    });
    assert!(wait_gone(daemon[0], HANG));
    assert_eq!(systemd.show("watchdog.service", "ActiveState"), "failed");
    assert!(!lines_of(&dir.join("events")).contains(&"atexit".to_owned()));
}

fn socket_activation_hands_over_a_named_socket_the_daemon_serves(systemd: &Systemd) {
    let dir = &systemd.dir;
    // A free port, given to systemd (same network namespace as this test).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    systemd.install(
        "web.socket",
        &format!("[Socket]\nListenStream=127.0.0.1:{port}\nFileDescriptorName=web\n"),
    );
    systemd.install(
        "web.service",
        &notify_unit(&services_command(dir, "--listen-fds foreground")),
    );
    systemd.ok(&["start", "web.socket"]);
    assert_eq!(systemd.show("web.service", "ActiveState"), "inactive");
    // The first connection starts the service, which takes the socket systemd passed and
    // answers with its uids.
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection.set_read_timeout(Some(HANG)).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut connection, &mut answer).unwrap();
    assert_eq!(answer, "uid 0 euid 0\n");
    assert!(lines_of(&dir.join("events")).contains(&"listen web".to_owned()));
    assert_eq!(systemd.show("web.service", "ActiveState"), "active");
    let main = systemd.main_pid("web.service");
    assert_eq!(read_pidfile(&dir.join("daemon.pid")), Some(main));
    systemd.ok(&["stop", "web.service", "web.socket"]);
    wait_line(&dir.join("events"), "atexit");
}

fn forking_follows_the_daemons_pid_through_its_pidfile_and_stop_runs_atexit(systemd: &Systemd) {
    let dir = &systemd.dir;
    // No NOTIFY_SOCKET under Type=forking: the CLI's `start` forks the daemon and returns once
    // it is ready, its pidfile written.
    systemd.install(
        "forking.service",
        &format!(
            "[Service]\nType=forking\nPIDFile={}\nExecStart={}\n",
            dir.join("ticker.pid").display(),
            ticker_command(dir, "start")
        ),
    );
    systemd.ok(&["start", "forking.service"]);
    let main = systemd.main_pid("forking.service");
    assert_eq!(read_pidfile(&dir.join("ticker.pid")), Some(main));
    // The one process left is the daemon (the CLI that forked it has exited).
    let processes = systemd.unit_processes("forking.service");
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/status", processes[0]))
            .unwrap()
            .lines()
            .find_map(|line| line.strip_prefix("NSpid:"))
            .and_then(|pids| pids.split_whitespace().last()?.parse().ok()),
        Some(main)
    );
    systemd.ok(&["stop", "forking.service"]);
    wait_line(&dir.join("ticker.log"), "atexit");
    assert_eq!(systemd.show("forking.service", "Result"), "success");
    assert!(!dir.join("ticker.pid").exists());
}

fn stop_runs_atexit_succeeds_and_leaves_nothing_in_the_cgroup(systemd: &Systemd) {
    let dir = &systemd.dir;
    // The daemon's children too: `run` starts two `sleep`s.
    systemd.install(
        "stop.service",
        &notify_unit(&services_command(dir, "--children 2 foreground")),
    );
    systemd.ok(&["start", "stop.service"]);
    eventually("the daemon and its two children", || {
        let processes = systemd.unit_processes("stop.service");
        if processes.len() == 3 {
            Ok(())
        } else {
            Err(processes)
        }
    });
    let daemon = systemd.main_pid("stop.service");
    systemd.ok(&["stop", "stop.service"]);
    // `systemctl stop` returned: the daemon ran atexit and exited by itself.
    assert!(lines_of(&dir.join("events")).contains(&"atexit".to_owned()));
    assert_eq!(systemd.show("stop.service", "Result"), "success");
    assert_eq!(systemd.show("stop.service", "ActiveState"), "inactive");
    assert_eq!(systemd.unit_processes("stop.service"), Vec::<i32>::new());
    assert!(!systemd.dir.join("daemon.pid").exists());
    assert_ne!(daemon, 0);
}

fn the_shipped_ticker_unit_runs(systemd: &Systemd) {
    let dir = &systemd.dir;
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ticker.service"
    ))
    .unwrap();
    // The unit names the installed binary and /var/log: the one just built, and the test's
    // directory, instead. Everything else as shipped.
    let log = dir.join("ticker.log");
    let unit = unit
        .replace(
            "/usr/local/bin/deluxe-ticker",
            &ticker_binary().display().to_string(),
        )
        .replace("/var/log/deluxe-ticker.log", &log.display().to_string());
    systemd.install("deluxe-ticker.service", &unit);
    systemd.ok(&["start", "deluxe-ticker.service"]);
    let main = systemd.main_pid("deluxe-ticker.service");
    assert_eq!(
        read_pidfile(&systemd.run_path("deluxe-ticker/ticker.pid")),
        Some(main)
    );
    systemd.ok(&["reload", "deluxe-ticker.service"]);
    wait_line(&log, "reloaded");
    assert_eq!(systemd.main_pid("deluxe-ticker.service"), main);
    systemd.ok(&["stop", "deluxe-ticker.service"]);
    wait_line(&log, "atexit");
    assert_eq!(systemd.show("deluxe-ticker.service", "Result"), "success");
    // RuntimeDirectory= is removed with the service, pidfile and all.
    assert!(!systemd.run_path("deluxe-ticker").exists());
}

#[cfg(feature = "tokio")]
on_both!(
    reload_hands_the_greeters_socket_over_to_a_new_main_pid_refusing_nothing,
    a_plain_restart_of_a_socket_activated_greeter_refuses_nothing,
);

/// The one process of `unit` (host pid), once the processes that exited are gone from it.
#[cfg(feature = "tokio")]
fn only_process(systemd: &Systemd, unit: &str) -> i32 {
    eventually(format!("one process in {unit}"), || {
        match systemd.unit_processes(unit)[..] {
            [process] => Ok(process),
            ref processes => Err(processes.to_vec()),
        }
    })
}

/// `greeter --config DIR/greeter.conf --pidfile DIR/greeter.pid --log DIR/greeter.log ACTION`.
#[cfg(feature = "tokio")]
fn greeter_command(greeter: &crate::greeter::Greeter, action: &str) -> String {
    format!(
        "{} --config {} --pidfile {} --log {} {action}",
        crate::services::greeter_binary().display(),
        greeter.config().display(),
        greeter.scene.pidfile().display(),
        greeter.log().display()
    )
}

/// The restart under systemd: `ExecReload=greeter restart` hands the socket to a new greeter,
/// which the old one names to systemd (`MAINPID=`, the one message `NotifyAccess=main` takes)
/// before it drains; the unit stays active throughout. A restart whose new greeter fails its
/// setup fails the reload, and the old greeter stays the main process.
#[cfg(feature = "tokio")]
fn reload_hands_the_greeters_socket_over_to_a_new_main_pid_refusing_nothing(systemd: &Systemd) {
    use crate::greeter::{Clients, Greeter, assert_none_refused, echo, hold};

    let greeter = Greeter::new("systemd-greeter");
    greeter.configure("greeting = hello\n");
    systemd.install(
        "greeter.service",
        &format!(
            "[Service]\nType=notify\nNotifyAccess=main\nExecStart={}\nExecReload={}\n",
            greeter_command(&greeter, "start"),
            greeter_command(&greeter, "restart")
        ),
    );
    systemd.ok(&["start", "greeter.service"]);
    let main = systemd.main_pid("greeter.service");
    assert_eq!(read_pidfile(&greeter.scene.pidfile()), Some(main));
    let [old] = systemd.unit_processes("greeter.service")[..] else {
        panic!(
            "one process: {:?}",
            systemd.unit_processes("greeter.service")
        );
    };
    // Open before the reload: the old greeter serves it to its end.
    let (open, mut reader, hello) = hold(greeter.address);
    assert_eq!(hello, "hello\n");
    let clients = Clients::start(greeter.address);
    clients.wait_for("hello");

    // A new greeter whose setup fails: the reload fails, the old greeter serves on as the
    // unit's main process.
    greeter.configure("colour = blue\n");
    let failed = systemd.systemctl(["reload", "greeter.service"]);
    assert!(
        !failed.status.success(),
        "a failed restart fails the reload"
    );
    assert_eq!(systemd.show("greeter.service", "ActiveState"), "active");
    assert_eq!(systemd.main_pid("greeter.service"), main);
    assert_eq!(only_process(systemd, "greeter.service"), old);

    greeter.configure("greeting = bonjour\n");
    std::thread::scope(|threads| {
        // `systemctl reload` returns when `restart` does: once the old greeter is gone.
        let reloading = threads.spawn(|| systemd.systemctl(["reload", "greeter.service"]));
        crate::services::wait_for_log(&greeter.log(), "stopping: ");
        clients.wait_for("bonjour");
        assert_eq!(systemd.show("greeter.service", "ActiveState"), "reloading");
        assert_eq!(echo(&open, &mut reader, "still served"), "still served\n");
        drop((open, reader));
        let output = reloading.join().unwrap();
        assert!(
            output.status.success(),
            "systemctl reload: {}\nconsole: {}",
            String::from_utf8_lossy(&output.stderr),
            systemd.console()
        );
    });
    assert!(wait_gone(old, HANG));
    assert_eq!(systemd.show("greeter.service", "ActiveState"), "active");
    assert_eq!(systemd.show("greeter.service", "NRestarts"), "0");
    let new = systemd.main_pid("greeter.service");
    assert_ne!(new, main);
    assert_eq!(read_pidfile(&greeter.scene.pidfile()), Some(new));
    let outcomes = clients.finish();
    assert_none_refused(&outcomes);
    assert_ne!(only_process(systemd, "greeter.service"), old);
    systemd.ok(&["stop", "greeter.service"]);
    assert_eq!(systemd.show("greeter.service", "Result"), "success");
    assert!(!greeter.scene.pidfile().exists());
}

/// Where systemd holds the socket (a `.socket` unit), a plain `systemctl restart` (a stop job,
/// then a start job) refuses nothing either: connections wait in the socket's queue for the
/// new greeter, which takes the socket by its name through `daemon::listener`.
#[cfg(feature = "tokio")]
fn a_plain_restart_of_a_socket_activated_greeter_refuses_nothing(systemd: &Systemd) {
    use crate::greeter::{Clients, Greeter, assert_none_refused, greeting};

    let greeter = Greeter::new("systemd-greeter-socket");
    greeter.configure("greeting = hello\n");
    systemd.install(
        "greeter.socket",
        &format!(
            "[Socket]\nListenStream={}\nFileDescriptorName=greeter\n",
            greeter.address
        ),
    );
    systemd.install(
        "greeter.service",
        &notify_unit(&greeter_command(&greeter, "start")),
    );
    systemd.ok(&["start", "greeter.socket"]);
    assert_eq!(systemd.show("greeter.service", "ActiveState"), "inactive");
    // The first connection starts the greeter, which serves the socket systemd passed.
    assert_eq!(greeting(greeter.address).unwrap(), "hello");
    assert_eq!(systemd.show("greeter.service", "ActiveState"), "active");
    let main = systemd.main_pid("greeter.service");
    let [old] = systemd.unit_processes("greeter.service")[..] else {
        panic!(
            "one process: {:?}",
            systemd.unit_processes("greeter.service")
        );
    };
    let clients = Clients::start(greeter.address);
    clients.wait_for("hello");
    greeter.configure("greeting = bonjour\n");
    systemd.ok(&["restart", "greeter.service"]);
    clients.wait_for("bonjour");
    let outcomes = clients.finish();
    assert_none_refused(&outcomes);
    assert!(wait_gone(old, HANG));
    let new = systemd.main_pid("greeter.service");
    assert_ne!(new, main);
    assert_eq!(read_pidfile(&greeter.scene.pidfile()), Some(new));
    systemd.ok(&["stop", "greeter.service", "greeter.socket"]);
    assert_eq!(systemd.show("greeter.service", "Result"), "success");
}
