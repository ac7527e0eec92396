//! Whom a controller trusts: the pidfile's lock holder, confirmed by the kernel, and nothing
//! else. Pidfiles planted by another user, processes that cannot be inspected, shared
//! directories, default names, and controllers racing while daemons are killed at random.
//! The tests with another account need root and the test accounts (`.ci/run`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{HANG, Scene, helper_command, is_alive, read_pidfile, wait_gone};

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
/// "not running" for a signal, and "died before ready" for a start during which a daemon was
/// killed), or a daemon reported running (by `status`, or by `start` as "already running")
/// whose pid had been killed, and seen gone, before the call began.
fn spurious(lines: &[String], killed: &[Kill]) -> Vec<String> {
    let dead_before = |pid: u32, start: u128| {
        killed
            .iter()
            .any(|kill| kill.pid == pid && kill.gone < start)
    };
    let killed_during = |start: u128, end: u128| {
        killed
            .iter()
            .any(|kill| (start..=end).contains(&kill.sent))
    };
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
    assert_eq!(scene.helper(&["status"]).1, "status Stopped");
    assert!(
        common::live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty(),
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
