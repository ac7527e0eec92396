//! Whom a controller trusts: the pidfile's lock holder, confirmed by the kernel, and nothing
//! else. Pidfiles planted by another user, processes that cannot be inspected, shared
//! directories, default names, and controllers racing while daemons are killed at random.
//! The tests with another account need root and the test accounts (`.ci/run`).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{
    HANG, Scene, TEST_USER, helper_command, is_alive, read_pidfile, wait_gone,
    wrapped_helper_command,
};

/// `CLOCK_MONOTONIC` in nanoseconds, the clock the helper stamps its lines with.
fn monotonic_nanos() -> u128 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(read, 0, "the monotonic clock reads");
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// A small random sequence for pacing the kills (xorshift64, seeded from the clock).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A daemon the stress run killed: its pid, when `SIGKILL` was sent, when it was seen gone.
struct Kill {
    pid: u32,
    sent: u128,
    gone: u128,
}

/// The answers of the stress run that a controller must never give: an error (other than
/// "not running" for a signal, "died before ready" for a start during which a daemon was
/// killed, and "stopped during setup" for a start another controller's stop met), or a daemon reported running (by `status`, or by `start` as "already running")
/// whose pid had been killed, and seen gone, before the call began.
fn spurious(lines: &[String], killed: &[Kill]) -> Vec<String> {
    let dead_before = |pid: u32, start: u128| {
        killed
            .iter()
            .any(|kill| kill.pid == pid && kill.gone < start)
    };
    let killed_during =
        |start: u128, end: u128| killed.iter().any(|kill| (start..=end).contains(&kill.sent));
    lines
        .iter()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [before, after, action, verdict, rest @ ..] = fields.as_slice() else {
                return true;
            };
            let before: u128 = before.parse().expect("a timestamp");
            let after: u128 = after.parse().expect("a timestamp");
            match (*verdict, rest) {
                ("error", ["DiedBeforeReady", ..]) if *action == "start" => {
                    !killed_during(before, after)
                }
                // Another controller's `stop` found the new daemon (it holds its pidfile from
                // before `setup`) and asked it to stop during `setup`: a true answer.
                ("error", ["StoppedDuringSetup", ..]) if *action == "start" => false,
                ("ok", ["running" | "already", pid]) => {
                    dead_before(pid.parse().expect("a pid"), before)
                }
                ("ok", _) => false,
                _ => true,
            }
        })
        .cloned()
        .collect()
}

#[test]
fn racing_controllers_see_only_consistent_answers_while_daemons_are_killed() {
    const CONTROLLERS: u64 = 4;
    const ACTIONS: usize = 400;
    let scene = Scene::new("trust-stress");
    let _sweep = Sweep(&scene);
    let mut random = Random(monotonic_nanos() as u64 | 1);
    let mut controllers: Vec<_> = (0..CONTROLLERS)
        .map(|index| {
            let seed = (random.next() ^ index).to_string();
            helper_command(
                &scene.pidfile(),
                &scene.events_path(),
                &["--stop-timeout", "3000"],
                &["stress", &ACTIONS.to_string(), &seed],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let controller_pids: Vec<u32> = controllers.iter().map(|child| child.id()).collect();
    let readers: Vec<_> = controllers
        .iter_mut()
        .map(|child| {
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                BufReader::new(stdout)
                    .lines()
                    .map(Result::unwrap)
                    .collect::<Vec<String>>()
            })
        })
        .collect();

    // Kill whatever daemon the pidfile names, at random moments, until the controllers are
    // done; each kill is recorded once the kernel reports the process gone.
    let mut killed = Vec::new();
    while controllers
        .iter_mut()
        .any(|child| child.try_wait().unwrap().is_none())
    {
        std::thread::sleep(Duration::from_micros(random.next() % 20_000));
        let Some(pid) = read_pidfile(&scene.pidfile()) else {
            continue;
        };
        let ours = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| cmdline.contains(&*scene.dir.to_string_lossy()));
        if !ours || controller_pids.contains(&(pid as u32)) || !is_alive(pid) {
            continue;
        }
        let sent = monotonic_nanos();
        // SAFETY: killing a daemon this test's controllers started (checked just above).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert!(wait_gone(pid, HANG), "daemon {pid} survives SIGKILL");
        killed.push(Kill {
            pid: pid as u32,
            sent,
            gone: monotonic_nanos(),
        });
    }
    let lines: Vec<String> = readers
        .into_iter()
        .flat_map(|reader| reader.join().unwrap())
        .collect();

    // Afterwards the pidfile still tells the truth: one stop, and nothing is left.
    let (ok, line) = scene.helper(&["stop"]);
    assert!(ok, "{line}");
    // Stopped, or stale when the last daemon was killed (controllers never remove a pidfile).
    let status = scene.helper(&["status"]).1;
    assert!(
        status == "status Stopped" || status.starts_with("status Stale "),
        "{status}"
    );
    assert!(
        crate::common::live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty(),
        "a daemon outlived the run"
    );

    let wrong = spurious(&lines, &killed);
    eprintln!(
        "stress: {} answers from {CONTROLLERS} controllers, {} daemons killed, {} spurious",
        lines.len(),
        killed.len(),
        wrong.len()
    );
    let mut kinds = std::collections::BTreeMap::new();
    for line in &wrong {
        let kind: Vec<&str> = line.split_whitespace().skip(2).take(3).collect();
        *kinds.entry(kind.join(" ")).or_insert(0) += 1;
    }
    eprintln!("stress: spurious by kind: {kinds:?}");
    assert_eq!(lines.len(), CONTROLLERS as usize * ACTIONS);
    assert!(
        wrong.is_empty(),
        "{} spurious answers, e.g. {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// The daemon helper run as `user` through `sudo`, with `env` settings (`NAME=value`, or
/// `-u NAME` to unset) and `args`.
fn as_user(user: &str, env: &[&str], args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new("sudo");
    command
        .args(["-n", "-u", user, "env"])
        .args(env)
        .arg(env!("CARGO_BIN_EXE_deluxe-daemon-helper"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Runs `command` to its end: whether it succeeded, and its result line.
fn outcome(mut command: std::process::Command) -> (bool, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        crate::common::result_line(&output.stdout),
    )
}

/// Kills, when dropped, every live process whose command line names the scene's directory:
/// daemons a failed assertion left behind, whatever their pidfile now says.
struct Sweep<'a>(&'a Scene);

impl Drop for Sweep<'_> {
    fn drop(&mut self) {
        for pid in crate::common::live_processes_mentioning(&self.0.dir.to_string_lossy()) {
            // SAFETY: killing a process of this test (its command line names the test's own
            // directory).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A process that holds on (`hold`, `nondumpable`) until the test kills it.
struct Holder {
    child: std::process::Child,
    pid: i32,
}

impl Holder {
    /// Starts `command` and waits for its first line, which ends with its pid.
    fn spawn(mut command: std::process::Command) -> Self {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line
            .split_whitespace()
            .last()
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {line:?}"));
        Self { child, pid }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: killing the process this test started (through sudo, as another user).
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A bystander: a process of the test's own (root) that no controller may touch.
fn bystander() -> std::process::Child {
    std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap()
}

/// A scene whose directory the test user owns, so that its processes can write there.
fn scene_of_test_user(name: &str) -> Scene {
    use std::os::unix::fs::PermissionsExt;
    let scene = Scene::new(name);
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    std::os::unix::fs::chown(&scene.dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
    std::fs::set_permissions(&scene.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    scene
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

#[test]
fn every_pidfile_state_has_one_status_and_start_and_stop_follow_it() {
    let scene = Scene::new("trust-states");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    let mut other = bystander();
    let other_pid = other.id();

    // Missing: stopped; stop has nothing to do.
    assert_eq!(scene.helper(&["status"]).1, "status Stopped");
    assert_eq!(scene.helper(&["stop"]).1, "stopped NotRunning");

    // Unlocked, whatever it says (empty, garbage, a live process's pid): stale; stop signals
    // nobody and leaves it (removing it could remove a new daemon's); start replaces it.
    for (content, status) in [
        (String::new(), "status Stale -".to_owned()),
        ("hello\n".to_owned(), "status Stale -".to_owned()),
        (
            format!("{other_pid}\n"),
            format!("status Stale {other_pid}"),
        ),
    ] {
        std::fs::write(&pidfile, &content).unwrap();
        assert_eq!(scene.helper(&["status"]).1, status, "{content:?}");
        assert_eq!(scene.helper(&["stop"]).1, "stopped NotRunning");
        assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), content);
        let pid = scene.start(&[]);
        assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
        assert!(wait_gone(pid, HANG));
    }
    assert!(
        is_alive(other_pid as i32),
        "the bystander was never signalled"
    );

    // Held by a process that is not the one it names: neither running nor stale, an error
    // for every call; the named process is never signalled, the holder neither.
    for (content, kind) in [
        (other_pid.to_string(), "PidfileHolderMismatch"),
        ("empty".to_owned(), "PidfileWithoutPid"),
        ("garbage".to_owned(), "PidfileWithoutPid"),
    ] {
        let holder = Holder::spawn(helper_command(
            &pidfile,
            &scene.events_path(),
            &[],
            &["hold", &content],
        ));
        for action in ["status", "start", "stop", "user1"] {
            let (ok, line) = scene.helper(&[action]);
            assert!(
                !ok && line.starts_with(&format!("error {kind}")),
                "{action}: {line}"
            );
        }
        assert!(is_alive(holder.pid) && is_alive(other_pid as i32));
    }
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn a_holder_whose_files_cannot_be_read_is_refused_never_trusted() {
    if !crate::common::has_sudo_setup(
        "a_holder_whose_files_cannot_be_read_is_refused_never_trusted",
    ) {
        return;
    }
    let scene = scene_of_test_user("trust-nondumpable");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    let pidfile_arg = pidfile.to_str().unwrap();
    // The user's own non-dumpable process (as ssh-agent is), named by a pidfile that another
    // of the user's processes holds.
    let victim = Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile_arg, "nondumpable"],
    ));
    let _holder = Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile_arg, "hold", &victim.pid.to_string()],
    ));
    for action in ["status", "stop", "user1"] {
        let (ok, line) = outcome(as_user(TEST_USER, &[], &["--pidfile", pidfile_arg, action]));
        assert!(
            !ok && line.starts_with(&format!(
                "error HolderUnconfirmed: cannot confirm that process {}",
                victim.pid
            )),
            "{action}: {line}"
        );
    }
    assert!(
        is_alive(victim.pid),
        "the unreadable process was never signalled"
    );
    // Root can read it, and sees that it does not hold the lock.
    let (ok, line) = scene.helper(&["stop"]);
    assert!(
        !ok && line.starts_with("error PidfileHolderMismatch"),
        "{line}"
    );
    assert!(is_alive(victim.pid));
}

#[test]
fn root_never_signals_another_users_process_it_reaches_only_by_privilege() {
    if !crate::common::has_sudo_setup(
        "root_never_signals_another_users_process_it_reaches_only_by_privilege",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // Root's pidfile, carelessly writable by all, which the user's process locks and fills
    // with its own pid: it really holds it, but it is not root's to signal.
    let scene = Scene::new("trust-other-user");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    let pidfile_arg = pidfile.to_str().unwrap();
    std::fs::write(&pidfile, "").unwrap();
    std::fs::set_permissions(&pidfile, std::fs::Permissions::from_mode(0o666)).unwrap();
    let holder = Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile_arg, "hold", "self"],
    ));
    assert_eq!(
        scene.helper(&["status"]).1,
        format!("status Running {}", holder.pid)
    );
    for action in ["stop", "user1"] {
        let (ok, line) = scene.helper(&[action]);
        assert!(
            !ok && line.starts_with("error SignalRefused"),
            "{action}: {line}"
        );
        assert!(
            line.contains(&format!("uid {}", uid_of(TEST_USER))),
            "{line}"
        );
    }
    assert!(is_alive(holder.pid));
    // Its own user may: that signal needs no privilege (removing the pidfile from root's
    // directory afterwards it may not, and says so).
    let (_, line) = outcome(as_user(TEST_USER, &[], &["--pidfile", pidfile_arg, "stop"]));
    assert!(wait_gone(holder.pid, HANG), "{line}");
}

#[test]
fn pids_another_user_writes_in_its_daemons_pidfile_are_never_signalled() {
    if !crate::common::has_sudo_setup(
        "pids_another_user_writes_in_its_daemons_pidfile_are_never_signalled",
    ) {
        return;
    }
    let scene = scene_of_test_user("trust-planted");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    let pidfile_arg = pidfile.to_str().unwrap();
    let (ok, line) = outcome(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile_arg, "start"],
    ));
    assert!(ok, "{line}");
    let daemon: i32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    let mut root_process = bystander();
    // The user rewrites its daemon's pidfile (it owns it) to name root's processes: root's
    // controller signals none of them. The kernel names the lock's holder, the user's
    // daemon, whatever the file says.
    for planted in [root_process.id(), 1, std::process::id()] {
        let (ok, _) = outcome({
            let mut command = std::process::Command::new("sudo");
            command.args([
                "-n",
                "-u",
                TEST_USER,
                "sh",
                "-c",
                "echo \"$1\" > \"$2\"",
                "sh",
            ]);
            command.arg(planted.to_string()).arg(&pidfile);
            command
        });
        assert!(ok, "the user rewrites its pidfile");
        assert_eq!(
            scene.helper(&["status"]).1,
            format!("status Running {daemon}"),
            "{planted}"
        );
        assert_eq!(scene.helper(&["user1"]).1, "sent", "{planted}");
    }
    assert!(is_alive(root_process.id() as i32));
    // The user's daemon, whose pidfile the user owns: root stops it, whatever the file says.
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(daemon, HANG));
    assert!(is_alive(root_process.id() as i32));
    root_process.kill().unwrap();
    root_process.wait().unwrap();
}

#[test]
fn a_daemon_never_signals_itself() {
    let scene = Scene::new("trust-self");
    let _sweep = Sweep(&scene);
    let pid = scene.start(&["--mode", "self-signal"]);
    scene.wait_event(&format!("self-signal SignalRefused {pid} ThisProcess"), 1);
    assert!(!scene.events().iter().any(|line| line == "user1"));
    // Asking about its own pidfile did not open it again (closing it would have released the
    // lock that names the daemon): without `/proc`, the kernel still names it.
    assert_eq!(
        outcome(without_proc(&scene, &["status"])).1,
        format!("status Running {pid}")
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

/// A directory anyone may write, like `/tmp`: `mode` `0o1777` (sticky) or `0o777`.
fn shared_dir(scene: &Scene, name: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = scene.dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// Root's helper against `pidfile`, for a daemon that runs as the test user: its outcome.
fn for_test_user(scene: &Scene, pidfile: &std::path::Path, action: &str) -> (bool, String) {
    outcome(helper_command(
        pidfile,
        &scene.events_path(),
        &["--user", TEST_USER],
        &[action],
    ))
}

/// Runs a shell command as `user` (to plant files as them).
fn shell_as(user: &str, script: &str, args: &[&std::path::Path]) {
    let status = std::process::Command::new("sudo")
        .args(["-n", "-u", user, "sh", "-c", script, "sh"])
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "{user}: {script}");
}

#[test]
fn a_pidfile_another_user_planted_in_a_shared_directory_is_refused() {
    if !crate::common::has_sudo_setup(
        "a_pidfile_another_user_planted_in_a_shared_directory_is_refused",
    ) {
        return;
    }
    let scene = Scene::new("trust-shared");
    let _sweep = Sweep(&scene);
    let sticky = shared_dir(&scene, "sticky", 0o1777);
    let planted = sticky.join("worker.pid");
    shell_as(TEST_USER, "printf '' > \"$1\"", &[&planted]);
    let planted_arg = planted.to_str().unwrap();
    let (ok, line) = outcome(helper_command(
        &planted,
        &scene.events_path(),
        &[],
        &["start"],
    ));
    assert!(
        !ok && line.starts_with(&format!(
            "error UnsafePidfile: pidfile {planted_arg} belongs to uid {}, another user",
            uid_of(TEST_USER)
        )),
        "{line}"
    );
    // Even locked by the user's process and naming it, it cannot make root's start believe
    // its daemon runs.
    let holder = Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", planted_arg, "hold", "self"],
    ));
    let (ok, line) = outcome(helper_command(
        &planted,
        &scene.events_path(),
        &[],
        &["start"],
    ));
    assert!(!ok && line.starts_with("error UnsafePidfile"), "{line}");
    drop(holder);
    assert!(
        crate::common::live_processes_mentioning(planted_arg).is_empty(),
        "nothing started"
    );
    // Unless that user is the daemon's own: then the file is its to have.
    let (ok, line) = for_test_user(&scene, &planted, "start");
    assert!(ok, "{line}");
    let (ok, line) = for_test_user(&scene, &planted, "stop");
    assert!(ok, "{line}");
    // Ours, in the same directory: fine.
    let mine = sticky.join("mine.pid");
    let (ok, line) = outcome(helper_command(&mine, &scene.events_path(), &[], &["start"]));
    assert!(ok, "{line}");
    assert!(outcome(helper_command(&mine, &scene.events_path(), &[], &["stop"])).0);
    // A world-writable directory without the sticky bit: the same rule.
    let open = shared_dir(&scene, "open", 0o777).join("worker.pid");
    shell_as(TEST_USER, "printf '' > \"$1\"", &[&open]);
    let (ok, line) = outcome(helper_command(&open, &scene.events_path(), &[], &["start"]));
    assert!(
        !ok && line.starts_with("error UnsafePidfile") && line.contains("another user"),
        "{line}"
    );
}

#[test]
fn a_users_default_pidfile_lives_in_a_private_checked_directory() {
    if !crate::common::has_sudo_setup(
        "a_users_default_pidfile_lives_in_a_private_checked_directory",
    ) {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let scene = Scene::new("trust-default");
    let _sweep = Sweep(&scene);
    let tmp = shared_dir(&scene, "tmp", 0o1777);
    let uid = uid_of(TEST_USER);
    let private = tmp.join(format!("deluxe-{uid}"));
    let tmpdir = format!("TMPDIR={}", tmp.display());
    let env = ["-u", "XDG_RUNTIME_DIR", tmpdir.as_str()];
    let default = |action: &str| outcome(as_user(TEST_USER, &env, &["--default-pidfile", action]));
    let expected = private.join("deluxe-daemon-helper.helper.pid");
    assert_eq!(
        default("where").1,
        format!("pidfile {}", expected.display())
    );

    // Another user made the directory first (here, as a symbolic link, then as its own
    // directory): refused, nothing started.
    let elsewhere = shared_dir(&scene, "elsewhere", 0o1777);
    shell_as(
        crate::common::NOLOGIN_USER,
        "ln -s \"$1\" \"$2\"",
        &[&elsewhere, &private],
    );
    let (ok, line) = default("start");
    assert!(!ok && line.contains("is not a directory"), "{line}");
    std::fs::remove_file(&private).unwrap();
    shell_as(
        crate::common::NOLOGIN_USER,
        "mkdir -m 777 \"$1\"",
        &[&private],
    );
    let (ok, line) = default("start");
    assert!(
        !ok && line.starts_with(&format!(
            "error UnsafePidfile: pidfile directory {} belongs to uid {}",
            private.display(),
            uid_of(crate::common::NOLOGIN_USER)
        )),
        "{line}"
    );
    assert_eq!(std::fs::read_dir(&private).unwrap().count(), 0);
    std::fs::remove_dir(&private).unwrap();

    // Left alone, start makes it: the user's, 0700, and the daemon's pidfile is in it.
    let (ok, line) = default("start");
    assert!(ok, "{line}");
    let meta = std::fs::symlink_metadata(&private).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o700));
    assert!(expected.exists());
    assert_eq!(default("stop").1, "stopped Graceful");
    // Opened up later: refused until it is private again.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, line) = default("status");
    assert!(!ok && line.contains("has mode 0755"), "{line}");
}

#[test]
fn a_runtime_dir_is_used_for_default_pidfiles_only_when_it_is_the_users_and_closed() {
    if !crate::common::has_sudo_setup(
        "a_runtime_dir_is_used_for_default_pidfiles_only_when_it_is_the_users_and_closed",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let scene = scene_of_test_user("trust-runtime");
    let _sweep = Sweep(&scene);
    let uid = uid_of(TEST_USER);
    let tmpdir = format!("TMPDIR={}", scene.dir.display());
    let where_with = |runtime: &std::path::Path| {
        let runtime = format!("XDG_RUNTIME_DIR={}", runtime.display());
        outcome(as_user(
            TEST_USER,
            &[&runtime, &tmpdir],
            &["--default-pidfile", "where"],
        ))
        .1
    };
    let fallback = scene
        .dir
        .join(format!("deluxe-{uid}"))
        .join("deluxe-daemon-helper.helper.pid");
    // The user's own, 0700: used.
    let runtime = scene.dir.join("runtime");
    shell_as(TEST_USER, "mkdir -m 700 \"$1\"", &[&runtime]);
    assert_eq!(
        where_with(&runtime),
        format!(
            "pidfile {}",
            runtime.join("deluxe-daemon-helper.helper.pid").display()
        )
    );
    // Writable by others, or someone else's: not used.
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        where_with(&runtime),
        format!("pidfile {}", fallback.display())
    );
    let roots = shared_dir(&scene, "roots", 0o700);
    assert_eq!(
        where_with(&roots),
        format!("pidfile {}", fallback.display())
    );
}

/// Two programs (here, two modules) each with a `Server` of their own.
mod one {
    #[deluxe::daemon]
    #[derive(Default)]
    pub struct Server;

    #[deluxe::daemon]
    impl Server {
        fn run(&self) {}
    }
}

mod two {
    #[deluxe::daemon]
    #[derive(Default)]
    pub struct Server;

    #[deluxe::daemon]
    impl Server {
        fn run(&self) {}
    }
}

#[test]
fn two_programs_with_a_server_do_not_share_a_default_pidfile() {
    let one = one::Server::controller().config().pidfile.clone();
    let two = two::Server::controller().config().pidfile.clone();
    assert_eq!(one.file_name().unwrap(), "it.trust.one.server.pid");
    assert_eq!(two.file_name().unwrap(), "it.trust.two.server.pid");
    assert_eq!(one.parent(), two.parent());
    // The runtime's own default, for a type implementing `Daemon` by hand, agrees.
    assert_eq!(
        deluxe::daemon::Config::for_type::<one::Server>().pidfile,
        one
    );
}

/// The helper with `args` against the scene's pidfile, run where `/proc` is an empty tmpfs
/// (a mount namespace of its own): nothing can be learnt from `/proc` there.
fn without_proc(scene: &Scene, args: &[&str]) -> std::process::Command {
    let wrapper = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs none /proc && exec \"$0\" \"$@\"",
    ]
    .map(std::ffi::OsString::from);
    wrapped_helper_command(&wrapper, &scene.pidfile(), &scene.events_path(), &[], args)
}

/// The helper with `args` against the scene's pidfile, run in a new PID namespace (with its
/// own `/proc`), as pid 1 there.
fn in_pid_namespace(scene: &Scene, args: &[&str]) -> std::process::Command {
    let wrapper = ["unshare", "--pid", "--fork", "--mount-proc"].map(std::ffi::OsString::from);
    wrapped_helper_command(&wrapper, &scene.pidfile(), &scene.events_path(), &[], args)
}

/// The test user's process holding a read lock of `kind` on `pidfile`, until dropped.
fn read_locked(pidfile: &std::path::Path, kind: &str) -> Holder {
    Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile.to_str().unwrap(), "read-lock", kind],
    ))
}

#[test]
fn another_users_read_lock_never_blocks_start_stop_or_status() {
    if !crate::common::has_sudo_setup("another_users_read_lock_never_blocks_start_stop_or_status") {
        return;
    }
    let scene = Scene::new("trust-read-lock");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    for kind in ["posix", "ofd", "flock"] {
        // A daemon killed (by the OOM killer, say) leaves a stale pidfile, `0644`: another
        // user read-locks it first.
        let killed = scene.start(&[]);
        // SAFETY: killing the daemon this test started.
        unsafe { libc::kill(killed, libc::SIGKILL) };
        assert!(wait_gone(killed, HANG));
        let stale_reader = read_locked(&pidfile, kind);
        assert_eq!(
            scene.helper(&["status"]).1,
            format!("status Stale {killed}"),
            "{kind}"
        );
        assert_eq!(scene.helper(&["stop"]).1, "stopped NotRunning", "{kind}");
        let (ok, line) = scene.helper(&["user1"]);
        assert!(
            !ok && line.starts_with("error NotRunning"),
            "{kind}: {line}"
        );
        // The start replaces the read-locked stale file.
        let pid = scene.start(&[]);
        // The running daemon's pidfile, read-locked too: the daemon's answer stands.
        let reader = read_locked(&pidfile, kind);
        assert_eq!(
            scene.helper(&["status"]).1,
            format!("status Running {pid}"),
            "{kind}"
        );
        let (ok, line) = scene.helper(&["start"]);
        assert!(
            !ok && line.starts_with(&format!("error AlreadyRunning {pid}")),
            "{kind}: {line}"
        );
        assert_eq!(scene.helper(&["user1"]).1, "sent", "{kind}");
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful", "{kind}");
        assert!(wait_gone(pid, HANG));
        assert!(!pidfile.exists(), "{kind}: the daemon removed its pidfile");

        // The file made first (empty, as a failed start used to leave it), then read-locked
        // before any daemon could lock it: the start is not blocked, and leaves no empty file.
        std::fs::write(&pidfile, "").unwrap();
        let early_reader = read_locked(&pidfile, kind);
        let pid = scene.start(&[]);
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap(),
            format!("{pid}\n")
        );
        assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful", "{kind}");
        assert!(wait_gone(pid, HANG));
        for holder in [&stale_reader, &reader, &early_reader] {
            assert!(is_alive(holder.pid), "{kind}: a reader was signalled");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&scene.dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".new-"))
        .collect();
    assert!(leftovers.is_empty(), "private pidfiles left: {leftovers:?}");
}

#[test]
fn another_user_grabbing_each_new_pidfile_as_it_appears_never_wins() {
    if !crate::common::has_sudo_setup(
        "another_user_grabbing_each_new_pidfile_as_it_appears_never_wins",
    ) {
        return;
    }
    let scene = Scene::new("trust-grab");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    // The user's inotify program read-locks every file that appears at the pidfile's name,
    // at once: each new pidfile is already locked when it appears.
    let grabber = Holder::spawn(as_user(
        TEST_USER,
        &[],
        &["--pidfile", pidfile.to_str().unwrap(), "grab"],
    ));
    for round in 0..10 {
        let pid = scene.start(&[]);
        assert_eq!(
            scene.helper(&["status"]).1,
            format!("status Running {pid}"),
            "round {round}"
        );
        if round % 2 == 0 {
            assert_eq!(
                scene.helper(&["stop"]).1,
                "stopped Graceful",
                "round {round}"
            );
        } else {
            // Killed: the next start replaces the stale file the grabber holds.
            // SAFETY: killing the daemon this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        assert!(wait_gone(pid, HANG));
    }
    assert!(is_alive(grabber.pid));
}

#[test]
fn a_hard_link_planted_at_the_pidfile_path_is_replaced_never_changed() {
    if !crate::common::has_sudo_setup(
        "a_hard_link_planted_at_the_pidfile_path_is_replaced_never_changed",
    ) {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let scene = Scene::new("trust-hard-link");
    let _sweep = Sweep(&scene);
    let user = nix::unistd::User::from_name(TEST_USER).unwrap().unwrap();
    // A file of root's that the user may read and write through its group: the user can
    // link it even with fs.protected_hardlinks=1.
    let secret = scene.dir.join("secret");
    std::fs::write(&secret, "secret\n").unwrap();
    std::os::unix::fs::chown(&secret, Some(0), Some(user.gid.as_raw())).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o660)).unwrap();
    let pidfile = shared_dir(&scene, "shared", 0o1777).join("daemon.pid");
    shell_as(TEST_USER, "ln \"$1\" \"$2\"", &[&secret, &pidfile]);
    assert_eq!(std::fs::metadata(&secret).unwrap().nlink(), 2);

    let (ok, line) = for_test_user(&scene, &pidfile, "start");
    assert!(ok, "{line}");
    let pid: u32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777, meta.nlink()),
        (0, user.gid.as_raw(), 0o660, 1),
        "the linked file keeps its owner and mode, and is no longer at the pidfile path"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret\n");
    let own = std::fs::metadata(&pidfile).unwrap();
    assert_ne!(own.ino(), meta.ino());
    assert_eq!(
        (own.uid(), own.mode() & 0o7777),
        (user.uid.as_raw(), 0o644),
        "the daemon's own new pidfile is given to its user"
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{pid}\n")
    );
    let (ok, line) = for_test_user(&scene, &pidfile, "stop");
    assert!(ok, "{line}");
}

#[test]
fn the_daemons_own_service_account_gets_the_kernels_answer() {
    if !crate::common::has_sudo_setup("the_daemons_own_service_account_gets_the_kernels_answer") {
        return;
    }
    let scene = scene_of_test_user("trust-service-account");
    let _sweep = Sweep(&scene);
    let pidfile = scene.pidfile();
    let pidfile_arg = pidfile.to_str().unwrap();
    // Started by root, the daemon drops to the user (and is non-dumpable: its open files are
    // root's to read).
    let (ok, line) = for_test_user(&scene, &pidfile, "start");
    assert!(ok, "{line}");
    let pid: i32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    let as_service =
        |action: &str| outcome(as_user(TEST_USER, &[], &["--pidfile", pidfile_arg, action]));
    assert_eq!(as_service("status").1, format!("status Running {pid}"));
    assert_eq!(as_service("user1").1, "sent");
    scene.wait_event("user1", 1);
    // A reload's answer comes from the pidfile's holder, which the service account confirms
    // through the kernel too.
    assert_eq!(as_service("reload").1, "reloaded");
    scene.wait_event("reload", 1);
    assert_eq!(as_service("stop").1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
}

#[test]
fn a_daemon_in_another_pid_namespace_has_its_pid_here_or_is_out_of_reach() {
    let scene = Scene::new("trust-pid-namespace");
    let _sweep = Sweep(&scene);
    // Started inside a new PID namespace, whose pid 1 (a shell) keeps it alive; asked from
    // the host, the daemon is named by its host pid, not by the pid it wrote.
    let helper = env!("CARGO_BIN_EXE_deluxe-daemon-helper");
    let mut namespace = std::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "sh",
            "-c",
        ])
        .arg("\"$0\" \"$@\" && exec sleep 1000")
        .arg(helper)
        .arg("--pidfile")
        .arg(scene.pidfile())
        .arg("--events")
        .arg(scene.events_path())
        .arg("start")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(namespace.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let inner: u32 = line
        .trim()
        .strip_prefix("started ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    assert_eq!(read_pidfile(&scene.pidfile()), Some(inner as i32));
    let status = scene.helper(&["status"]).1;
    let host: i32 = status
        .strip_prefix("status Running ")
        .unwrap_or_else(|| panic!("{status}"))
        .parse()
        .unwrap();
    let nspid = std::fs::read_to_string(format!("/proc/{host}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:").map(str::to_owned))
        .unwrap();
    assert_eq!(
        nspid.split_whitespace().collect::<Vec<_>>(),
        [host.to_string(), inner.to_string()],
        "the host pid of the daemon that wrote {inner}"
    );
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("user1", 1);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(host, HANG));
    namespace.kill().unwrap();
    namespace.wait().unwrap();

    // Started here, asked from inside a new PID namespace: running, but out of reach, and
    // neither signalled nor replaced from there.
    let pid = scene.start(&[]);
    assert_eq!(
        outcome(in_pid_namespace(&scene, &["status"])).1,
        "status RunningElsewhere"
    );
    for action in ["stop", "user1", "start"] {
        let (ok, line) = outcome(in_pid_namespace(&scene, &[action]));
        assert!(
            !ok && line.starts_with("error OutsideNamespace: pidfile")
                && line.contains("outside this PID namespace"),
            "{action}: {line}"
        );
    }
    assert!(is_alive(pid));
    assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
    assert_eq!(
        scene
            .events()
            .iter()
            .filter(|line| *line == "user1")
            .count(),
        1,
        "nothing was signalled from the other namespace"
    );
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
}

#[test]
fn without_proc_the_kernel_still_names_the_daemon() {
    let scene = Scene::new("trust-no-proc");
    let _sweep = Sweep(&scene);
    let pid = scene.start(&[]);
    assert_eq!(
        outcome(without_proc(&scene, &["status"])).1,
        format!("status Running {pid}")
    );
    assert_eq!(outcome(without_proc(&scene, &["user1"])).1, "sent");
    scene.wait_event("user1", 1);
    let (ok, line) = outcome(without_proc(&scene, &["start"]));
    assert!(
        !ok && line.starts_with(&format!("error AlreadyRunning {pid}")),
        "{line}"
    );
    assert_eq!(
        outcome(without_proc(&scene, &["stop"])).1,
        "stopped Graceful"
    );
    assert!(wait_gone(pid, HANG));
}

#[test]
fn an_empty_or_relative_tmpdir_never_gives_a_relative_private_directory() {
    if !crate::common::has_sudo_setup(
        "an_empty_or_relative_tmpdir_never_gives_a_relative_private_directory",
    ) {
        return;
    }
    let expected = format!(
        "pidfile /tmp/deluxe-{}/deluxe-daemon-helper.helper.pid",
        uid_of(TEST_USER)
    );
    for tmpdir in ["TMPDIR=", "TMPDIR=relative", "TMPDIR=./tmp"] {
        let env = ["-u", "XDG_RUNTIME_DIR", tmpdir];
        let (ok, line) = outcome(as_user(TEST_USER, &env, &["--default-pidfile", "where"]));
        assert!(ok && line == expected, "{tmpdir}: {line}");
    }
}
