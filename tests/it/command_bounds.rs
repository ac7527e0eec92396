//! `Command` bounded: timeouts, cancellation that takes down the whole tree (through `sudo`
//! too), background processes that hold the pipes, bounded memory, the caller's signal
//! settings, and Ctrl-C at a real terminal.

use std::path::Path;
use std::time::Duration;

use deluxe::command::{CallOptions, Command, CommandError};

use crate::common::{HANG, Scratch, is_alive, scratch_dir, stat, wait_gone};

/// A directory for one test, that every account may write in.
pub(crate) fn tempdir(name: &str) -> Scratch {
    let dir = scratch_dir(&format!("bounds-{name}"));
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dir
}

/// The pids a script wrote into `file`, one a line (written with `mv`, so complete).
pub(crate) fn pids(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect()
}

/// Whether `pid` is a child of this process that nobody reaped (a zombie left behind).
fn is_unreaped_child(pid: i32) -> bool {
    stat(pid).is_some_and(|stat| stat.ppid == std::process::id() as i32)
}

/// The shell writes its own pid and a background sleep's into `file`, then sleeps too: a
/// program with a child and a grandchild-like background process.
pub(crate) fn tree_script(file: &Path, marker: &str) -> String {
    format!(
        "sleep {marker}1 & echo $$ $! > {f}.tmp; mv {f}.tmp {f}; echo started; sleep {marker}2; echo never",
        f = file.display()
    )
}

#[test]
fn a_timeout_terminates_the_program_and_everything_it_started() {
    let dir = tempdir("timeout");
    let file = dir.join("pids");
    let sh = Command::new("sh").unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(300));
    let error = sh
        .call_with(["-c", &tree_script(&file, "7201.1")], &options)
        .unwrap_err();
    match &error {
        CommandError::Timeout {
            timeout, stdout, ..
        } => {
            assert_eq!(*timeout, Duration::from_millis(300));
            assert_eq!(
                stdout, b"started\n",
                "what was read before the deadline is kept"
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(
        error.to_string().contains("did not finish within 300ms"),
        "{error}"
    );
    let pids = pids(&file);
    assert_eq!(pids.len(), 2);
    for pid in &pids {
        // SIGTERM was obeyed: the call returned once they had exited.
        assert!(!is_alive(*pid), "{pid} survived the timeout");
    }
    assert!(!is_unreaped_child(pids[0]), "the shell was not reaped");
}

#[test]
fn a_program_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempdir("grace");
    let file = dir.join("pids");
    let script = format!("trap '' TERM; {}", tree_script(&file, "7201.3"));
    let options = CallOptions::new()
        .timeout(Duration::from_millis(200))
        .kill_grace(Duration::from_millis(200));
    let error = Command::new("sh")
        .unwrap()
        .call_with(["-c", &script], &options)
        .unwrap_err();
    assert!(matches!(error, CommandError::Timeout { .. }), "{error:?}");
    for pid in pids(&file) {
        assert!(wait_gone(pid, HANG), "{pid} survived SIGKILL");
        assert!(!is_unreaped_child(pid));
    }
}

#[test]
fn background_processes_holding_the_pipes_do_not_hold_the_call() {
    let dir = tempdir("linger");
    let file = dir.join("pids");
    let sh = Command::new("sh").unwrap();
    // A hang guard, not a timing check: without the fix the call waits for `sleep`.
    let guard = CallOptions::new().timeout(HANG);
    let script = format!(
        "sleep 7201.5 & echo $! > {f}.tmp; mv {f}.tmp {f}; echo hi",
        f = file.display()
    );
    assert_eq!(sh.call_with(["-c", &script], &guard).unwrap(), b"hi\n");
    // capture(false): stdout goes through, stderr is still read, and still not waited for.
    let script2 = script.replace("7201.5", "7201.6").replace("pids", "pids2");
    let returned = sh
        .call_with(["-c", &script2], &guard.clone().capture(false))
        .unwrap();
    assert!(returned.is_empty());
    // The background processes were not cancelled: the call finished. Clean them up.
    for pid in pids(&file).into_iter().chain(pids(&dir.join("pids2"))) {
        assert!(
            is_alive(pid),
            "a finished call must not kill what its program left running"
        );
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        assert!(wait_gone(pid, HANG));
    }
}

#[test]
fn dropping_a_running_program_kills_its_whole_tree_and_reaps_it() {
    let dir = tempdir("drop");
    let file = dir.join("pids");
    let sh = Command::new("sh").unwrap();
    let mut running = sh
        .spawn(["-c", &tree_script(&file, "7201.7")], &CallOptions::new())
        .unwrap();
    assert_eq!(running.lines().next().unwrap().unwrap(), "started");
    let pids = pids(&file);
    assert_eq!(pids[0], running.id() as i32);
    assert!(pids.iter().all(|pid| is_alive(*pid)));
    drop(running);
    for pid in &pids {
        assert!(!is_alive(*pid), "{pid} survived the drop");
    }
    assert!(!is_unreaped_child(pids[0]));
}

#[test]
fn kill_terminates_the_group_and_wait_reports_the_signal() {
    let dir = tempdir("kill");
    let file = dir.join("pids");
    let mut running = Command::new("sh")
        .unwrap()
        .spawn(["-c", &tree_script(&file, "7201.8")], &CallOptions::new())
        .unwrap();
    assert_eq!(running.lines().next().unwrap().unwrap(), "started");
    running.kill();
    for pid in pids(&file) {
        assert!(!is_alive(pid));
    }
    match running.wait() {
        Err(CommandError::Signal {
            signal_name,
            stdout,
            ..
        }) => {
            assert_eq!(signal_name, "SIGTERM");
            assert!(stdout.is_empty(), "the line read is not returned twice");
        }
        other => panic!("expected Signal, got {other:?}"),
    }
}

#[test]
fn each_call_gets_a_process_group_of_its_own_outside_a_terminal() {
    let running = Command::new("sleep")
        .unwrap()
        .spawn(["7201.9"], &CallOptions::new())
        .unwrap();
    let pid = running.id() as i32;
    let group = crate::common::stat(pid).unwrap().pgrp;
    let interactive = nix::unistd::tcgetpgrp(std::io::stdin())
        .is_ok_and(|foreground| foreground == nix::unistd::getpgrp());
    if interactive {
        // The foreground job of a terminal keeps its programs in its group (Ctrl-C).
        assert_eq!(group, nix::unistd::getpgrp().as_raw());
    } else {
        assert_eq!(group, pid, "the program leads a group of its own");
    }
}

#[test]
fn stderr_memory_stays_bounded_while_a_program_writes_300_mb() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("memory")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..2], ["kept", "65536"], "{line}");
    let peak_kb: u64 = words[3].parse().unwrap();
    // The probe itself is a few MB; 300 MB buffered would show here.
    assert!(peak_kb < 32 * 1024, "peak {peak_kb} kB");
}

#[test]
fn input_never_kills_a_caller_whose_sigpipe_is_at_its_default() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("sigpipe")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().filter(|line| *line == "ok 0 bytes").count(),
        20,
        "{stdout}"
    );
    assert!(stdout.ends_with("survived\n"));
}

#[test]
fn a_caller_that_ignores_sigchld_still_gets_exit_statuses_and_no_zombies() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("sigchld")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        ["ok fine", "error Exit 3 partial", "ok code 4"],
        "{stdout}"
    );
    assert!(lines[3].ends_with("children=0"), "{stdout}");
}

/// Starts the probe with `args` as the foreground job of a new terminal (a pty whose master
/// is returned), as a shell would. Both ends are close-on-exec from the start (`openpty`'s
/// are not): a program another test spawns meanwhile must not inherit them (one descriptor
/// more made a low descriptor limit test fail under many test threads).
fn probe_at_a_terminal(args: &[&str]) -> (std::process::Child, std::fs::File) {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;

    let master =
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    nix::pty::grantpt(&master).unwrap();
    nix::pty::unlockpt(&master).unwrap();
    // std opens close-on-exec.
    let pty_slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(nix::pty::ptsname_r(&master).unwrap())
        .unwrap();
    let slave = pty_slave.as_raw_fd();
    let mut probe = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"));
    probe
        .args(args)
        .stdin(std::process::Stdio::from(pty_slave.try_clone().unwrap()))
        .stdout(std::process::Stdio::from(pty_slave.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(pty_slave.try_clone().unwrap()));
    // SAFETY: between fork and exec only async-signal-safe calls: SIGINT's default action, a
    // new session whose controlling terminal is the pty (the probe is then its foreground job,
    // as in a shell).
    unsafe {
        probe.pre_exec(move || {
            // A terminal's Ctrl-C kills with SIGINT's default action, whatever the test
            // harness inherited (a background job of a script starts with SIGINT ignored).
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            nix::unistd::setsid()?;
            if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let probe = probe.spawn().unwrap();
    drop(pty_slave);
    (
        probe,
        std::fs::File::from(std::os::fd::OwnedFd::from(master)),
    )
}

#[test]
fn ctrl_c_at_a_terminal_stops_the_program_and_what_it_started() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;

    let dir = tempdir("ctrl-c");
    let pidfile = dir.join("pid");
    let (mut probe, mut master) = probe_at_a_terminal(&["hold", pidfile.to_str().unwrap()]);
    let started = std::time::Instant::now();
    let shell = loop {
        if let Some(&pid) = pids(&pidfile).first() {
            break pid;
        }
        assert!(started.elapsed() < HANG, "the probe's shell never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let sleep = loop {
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.parse::<i32>().unwrap();
        }
        assert!(
            started.elapsed() < HANG,
            "the shell never started its sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // Ctrl-C, typed at the terminal.
    master.write_all(&[3]).unwrap();
    let status = probe.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(wait_gone(shell, HANG), "the program survived Ctrl-C");
    assert!(
        wait_gone(sleep, HANG),
        "what the program started survived Ctrl-C"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn a_timeout_applies_to_async_calls_too() {
    let dir = tempdir("async-timeout");
    let file = dir.join("pids");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        let options = CallOptions::new().timeout(Duration::from_millis(300));
        Command::new("sh")
            .unwrap()
            .call_async(["-c", &tree_script(&file, "7202.1")], &options)
            .await
            .unwrap_err()
    });
    assert!(
        matches!(&error, CommandError::Timeout { stdout, .. } if stdout == b"started\n"),
        "{error:?}"
    );
    for pid in pids(&file) {
        assert!(!is_alive(pid));
    }
}

#[cfg(feature = "tokio")]
#[test]
fn dropping_call_async_through_sudo_leaves_nothing_running_as_the_user() {
    use crate::common::{TEST_USER, has_sudo_setup};
    if !has_sudo_setup("dropping_call_async_through_sudo_leaves_nothing_running_as_the_user") {
        return;
    }
    let dir = tempdir("async-sudo");
    let file = dir.join("pids");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sh = Command::new("sh").unwrap().user(TEST_USER).unwrap();
        let options = CallOptions::new();
        let script = tree_script(&file, "7202.2");
        let call = sh.call_async(["-c", &script], &options);
        tokio::pin!(call);
        let started = async {
            while pids(&file).len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            result = &mut call => panic!("returned: {result:?}"),
            () = started => {}
        }
    });
    // The future was dropped: the shell and its sleeps, running as the test user under sudo,
    // are terminated (sudo relays SIGTERM; the group is signalled as well).
    for pid in pids(&file) {
        assert!(wait_gone(pid, HANG), "{pid} still runs as {TEST_USER}");
    }
    // The foreground sleep too (its pid is not written: it is found by its unique duration).
    // The termination runs on the call's thread after the drop, so it is waited for.
    let started = std::time::Instant::now();
    while !crate::common::live_processes_mentioning("7202.2").is_empty() {
        assert!(
            started.elapsed() < HANG,
            "the shell's sleep still runs as {TEST_USER}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `call` on a thread of its own and returns what it returned, or `None` when it has not
/// returned within [`HANG`] (a watchdog, not a timing check).
fn within_hang<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(call());
    });
    receiver.recv_timeout(HANG).ok()
}

/// Ends a process a test left running (on purpose, or by a failure), and waits until it is
/// gone.
pub(crate) fn end_escaped(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
    assert!(wait_gone(pid, HANG), "{pid} survived SIGKILL");
}

/// A shell whose background process escapes into a session of its own (a double fork, as a
/// daemon does) holding the shell's stdout and stderr, writes that process's pid into
/// `file`, says `started` and sleeps.
fn escaping_script(file: &Path, marker: &str) -> String {
    // The escaped process writes its own pid once `setsid` has made its session (`$!` would be
    // known before that, and a kill in between would still find it in the call's group).
    format!(
        "(setsid sh -c 'echo $$ > {f}.tmp; mv {f}.tmp {f}; exec sleep {marker}1' &); \
         while [ ! -e {f} ]; do sleep 0.01; done; echo started; sleep {marker}2",
        f = file.display()
    )
}

#[test]
fn a_timeout_returns_while_an_escaped_process_still_holds_the_pipes() {
    let dir = tempdir("escaped-timeout");
    let file = dir.join("pids");
    let script = escaping_script(&file, "7208.1");
    let returned = within_hang(move || {
        let options = CallOptions::new().timeout(Duration::from_millis(300));
        Command::new("sh")
            .unwrap()
            .call_with(["-c", &script], &options)
    });
    let escaped = pids(&file)[0];
    // The order of events: the call returned, and the holder of its pipes still lives.
    let alive = is_alive(escaped);
    end_escaped(escaped);
    let returned = returned.expect("the call hung on the escaped process's pipes");
    assert!(
        matches!(&returned, Err(CommandError::Timeout { stdout, .. }) if stdout == b"started\n"),
        "{returned:?}"
    );
    assert!(
        alive,
        "the escaped process was expected to outlive the call"
    );
}

#[test]
fn wait_after_kill_returns_while_an_escaped_process_still_holds_the_pipes() {
    let dir = tempdir("escaped-kill");
    let file = dir.join("pids");
    let mut running = Command::new("sh")
        .unwrap()
        .spawn(
            ["-c", &escaping_script(&file, "7208.2")],
            &CallOptions::new(),
        )
        .unwrap();
    assert_eq!(running.lines().next().unwrap().unwrap(), "started");
    let escaped = pids(&file)[0];
    running.kill();
    let returned = within_hang(move || running.wait());
    let alive = is_alive(escaped);
    end_escaped(escaped);
    let returned = returned.expect("wait() after kill() hung on the escaped process's pipes");
    assert!(
        matches!(&returned, Err(CommandError::Signal { signal: 15, .. })),
        "{returned:?}"
    );
    assert!(
        alive,
        "the escaped process was expected to outlive the call"
    );
}

/// A shell that, on `SIGTERM`, starts a process in a session of its own (out of the call's
/// process group), writes its pid into `file`, and goes on ignoring the signal.
fn forks_on_term_script(file: &Path, marker: &str) -> String {
    format!(
        "trap 'setsid sleep {marker} & echo $! > {f}.tmp; mv {f}.tmp {f}' TERM; echo started; \
         while :; do sleep 0.05; done",
        f = file.display()
    )
}

#[test]
fn processes_started_during_the_grace_are_killed_too() {
    let dir = tempdir("grace-fork");
    let file = dir.join("pids");
    let options = CallOptions::new()
        .timeout(Duration::from_millis(300))
        .kill_grace(Duration::from_secs(2));
    let error = Command::new("sh")
        .unwrap()
        .call_with(["-c", &forks_on_term_script(&file, "7208.3")], &options)
        .unwrap_err();
    assert!(matches!(error, CommandError::Timeout { .. }), "{error:?}");
    let born = pids(&file);
    assert_eq!(
        born.len(),
        1,
        "the TERM handler did not run within the grace"
    );
    let gone = wait_gone(born[0], Duration::from_secs(5));
    if !gone {
        end_escaped(born[0]);
    }
    assert!(gone, "a process started during the grace survived the call");
}

#[test]
fn any_duration_is_accepted_as_a_timeout_or_a_grace() {
    use proptest::prelude::*;
    let truth = Command::new("true").unwrap();
    let any_duration = prop_oneof![
        Just(Duration::MAX),
        Just(Duration::ZERO),
        (any::<u64>(), 0..1_000_000_000u32).prop_map(|(secs, nanos)| Duration::new(secs, nanos)),
        (0..2_000_000_000u64).prop_map(Duration::from_nanos),
    ];
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::proptest!(config, |(timeout in any_duration.clone(), grace in any_duration)| {
        let options = CallOptions::new().timeout(timeout).kill_grace(grace);
        match truth.call_with(deluxe::command::NO_ARGS, &options) {
            Ok(stdout) => prop_assert!(stdout.is_empty()),
            Err(CommandError::Timeout { timeout: reported, .. }) => {
                prop_assert_eq!(reported, timeout);
                prop_assert!(timeout < Duration::from_secs(60), "{:?}", timeout);
            }
            Err(other) => prop_assert!(false, "{}", other),
        }
        // A cancelled call uses the grace (dropping it, inside `Drop`).
        let running = Command::new("sleep").unwrap().spawn(["7208.4"], &options);
        drop(running);
    });
}

#[test]
fn a_program_past_its_output_limit_is_ended_and_the_kept_output_returned() {
    let options = CallOptions::new().max_output(1 << 20);
    let mut running = Command::new("yes")
        .unwrap()
        .spawn(deluxe::command::NO_ARGS, &options)
        .unwrap();
    let pid = running.id() as i32;
    let first = running.lines().next().unwrap().unwrap();
    assert_eq!(first, "y");
    let error = running.wait().unwrap_err();
    match &error {
        CommandError::OutputLimit { limit, stdout, .. } => {
            assert_eq!(*limit, 1 << 20);
            assert_eq!(stdout.len(), 1 << 20, "the output kept");
            assert!(stdout.chunks(2).all(|pair| pair == b"y\n"));
        }
        other => panic!("expected OutputLimit, got {other:?}"),
    }
    assert!(!is_alive(pid), "the program outlived its output limit");
    assert!(
        error.to_string().contains("CallOptions::max_output"),
        "{error}"
    );
    // Standard error merged into the output counts too.
    let merged = CallOptions::new()
        .max_output(4096)
        .stderr(deluxe::command::Stderr::Merge);
    let error = Command::new("sh")
        .unwrap()
        .call_with(["-c", "yes >&2"], &merged)
        .unwrap_err();
    assert!(
        matches!(&error, CommandError::OutputLimit { stdout, .. } if stdout.len() == 4096),
        "{error:?}"
    );
}

#[test]
fn one_line_longer_than_the_output_limit_ends_the_program() {
    let options = CallOptions::new().max_output(64 << 10);
    let mut running = Command::new("sh")
        .unwrap()
        .spawn(["-c", "echo short; exec tr -d '\\n' < /dev/zero"], &options)
        .unwrap();
    let pid = running.id() as i32;
    let lines: Vec<_> = running.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].as_deref().unwrap(), "short");
    assert!(
        matches!(&lines[1], Err(CommandError::OutputLimit { limit, .. }) if *limit == 64 << 10),
        "{:?}",
        lines[1]
    );
    match running.wait() {
        Err(CommandError::OutputLimit { stdout, .. }) => assert_eq!(stdout.len(), 64 << 10),
        other => panic!("expected OutputLimit, got {other:?}"),
    }
    assert!(!is_alive(pid));
}

#[test]
fn output_memory_stays_bounded_by_the_default_limit_while_yes_floods_stdout() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("flood")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        words[..3],
        [
            "OutputLimit",
            "kept",
            &deluxe::command::MAX_OUTPUT.to_string()
        ],
        "{line}"
    );
    let peak_kb: usize = words[4].parse().unwrap();
    // The kept output, the probe itself (a few MB) and slack; no doubling past the limit.
    let limit_kb = deluxe::command::MAX_OUTPUT / 1024;
    assert!(peak_kb < limit_kb + limit_kb / 4, "peak {peak_kb} kB");
}

#[test]
fn processes_started_during_the_grace_are_killed_when_the_caller_is_a_terminal_job() {
    use std::io::Read;

    let dir = tempdir("grace-fork-tty");
    let file = dir.join("pids");
    // In the caller's process group (a terminal's foreground job), so reached one by one;
    // deaf to the SIGHUP the terminal sends its foreground group when the probe, the
    // session's leader, exits.
    let script = format!(
        "trap '' HUP; {}",
        forks_on_term_script(&file, "7208.5").replace("setsid ", "")
    );
    let (mut probe, mut master) = probe_at_a_terminal(&["grace-fork", &script]);
    let status = within_hang(move || probe.wait()).expect("the probe hung");
    // What the probe wrote on the terminal, without waiting for its other users to go.
    let flags = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let flags = nix::fcntl::OFlag::from_bits_retain(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(flags)).unwrap();
    let mut said = Vec::new();
    let _ = master.read_to_end(&mut said);
    let said = String::from_utf8_lossy(&said);
    assert!(status.unwrap().success(), "{said}");
    assert!(said.contains("error Timeout"), "{said}");
    let born = pids(&file);
    assert_eq!(
        born.len(),
        1,
        "the TERM handler did not run within the grace: {said}"
    );
    let gone = wait_gone(born[0], Duration::from_secs(5));
    if !gone {
        end_escaped(born[0]);
    }
    assert!(gone, "a process started during the grace survived the call");
}
