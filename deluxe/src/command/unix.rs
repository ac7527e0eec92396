//! The Unix side of running a command: which process group it gets, how its exit is
//! noticed, how a cancelled call takes down everything it started, and how the caller's own
//! signal settings (`SIGPIPE` at its default, `SIGCHLD` ignored) are kept from hurting it.
//!
//! Everything here is platform machinery; the rest of `command` only asks "spawn in a group",
//! "has it exited", "terminate it all", "write without `SIGPIPE`". The calls that need
//! `unsafe` are [`sys`](super::sys)'s.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::unistd::Pid;

use super::sys;
use crate::time;

/// Where the processes of one call live, which decides how a cancelled call reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// A new process group, led by the first process: the whole group is signalled.
    NewGroup,
    /// The caller's own group, because the caller is the terminal's foreground job: a Ctrl-C
    /// at the terminal reaches the program as it reaches the caller, and the program can read
    /// the terminal. Cancelling signals the program and its descendants one by one.
    CallersGroup,
}

impl Placement {
    /// A new group, unless this process is in the foreground process group of its controlling
    /// terminal (an interactive program): a program in a group of its own would not get the
    /// terminal's Ctrl-C, and would be stopped by `SIGTTIN` when it reads the terminal.
    pub(crate) fn choose() -> Self {
        if in_terminal_foreground() {
            Self::CallersGroup
        } else {
            Self::NewGroup
        }
    }

    /// Puts a process being built into its place: `leader` is the group of the call when a
    /// previous stage of a pipeline already made it. Keeps std's `posix_spawn` path: no
    /// `pre_exec`.
    pub(crate) fn apply(self, command: &mut std::process::Command, leader: Option<u32>) {
        if self == Self::NewGroup {
            let group = leader.map_or(0, |pid| pid as i32);
            command.process_group(group);
        }
    }
}

/// Whether this process is in the foreground process group of its controlling terminal.
fn in_terminal_foreground() -> bool {
    let own = nix::unistd::getpgrp();
    let foreground = |fd: BorrowedFd<'_>| nix::unistd::tcgetpgrp(fd).ok();
    for fd in [
        io::stdin().as_fd(),
        io::stdout().as_fd(),
        io::stderr().as_fd(),
    ] {
        // Fails with ENOTTY unless the descriptor is our controlling terminal.
        if let Some(group) = foreground(fd) {
            return group == own;
        }
    }
    // No standard stream is the terminal; a controlling terminal may still send Ctrl-C.
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open("/dev/tty")
    {
        Ok(tty) => foreground(tty.as_fd()) == Some(own),
        Err(_) => false,
    }
}

use std::os::unix::fs::OpenOptionsExt;

/// Notices a child's exit without reaping it, so that its pid (and its process group) cannot
/// be reused while the call may still signal them.
pub(crate) struct ExitWatch {
    pid: Pid,
    /// A pidfd, readable once the process has exited (Linux); elsewhere `None`, and the
    /// caller polls [`ExitWatch::exited`] on a short tick.
    fd: Option<OwnedFd>,
}

/// How often exits are checked where no pidfd can be polled.
pub(crate) const EXIT_TICK: Duration = Duration::from_millis(10);

impl ExitWatch {
    pub(crate) fn new(child: &Child) -> Self {
        let pid = Pid::from_raw(child.id() as i32);
        Self {
            pid,
            fd: pidfd(pid),
        }
    }

    pub(crate) fn pid(&self) -> Pid {
        self.pid
    }

    /// The descriptor to poll for readability, when there is one.
    pub(crate) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }

    /// Whether the process has exited (it stays a zombie until reaped).
    pub(crate) fn exited(&self) -> bool {
        sys::child_exited(self.pid)
    }

    /// Waits until the process has exited or `deadline` passes; says whether it exited.
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.exited() {
                return true;
            }
            let now = Instant::now();
            if time::passed(deadline, now) {
                return false;
            }
            let left = time::left_at(deadline, now).min(if self.fd.is_some() {
                Duration::from_secs(3600)
            } else {
                EXIT_TICK
            });
            match &self.fd {
                Some(fd) => {
                    let mut fds = [nix::poll::PollFd::new(
                        fd.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut fds, poll_timeout(left));
                }
                None => std::thread::sleep(left),
            }
        }
    }
}

/// A poll timeout of at least `left`, rounded up to whole milliseconds.
pub(crate) fn poll_timeout(left: Duration) -> nix::poll::PollTimeout {
    let millis = left.as_micros().div_ceil(1000);
    nix::poll::PollTimeout::try_from(millis.min(i32::MAX as u128) as i32)
        .unwrap_or(nix::poll::PollTimeout::MAX)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd(pid: Pid) -> Option<OwnedFd> {
    sys::pidfd_open(pid).ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pidfd(_pid: Pid) -> Option<OwnedFd> {
    None
}

/// Terminates every process of a call: `SIGTERM` (and `SIGCONT`, for stopped ones) to all of
/// them, up to `grace` for them to exit, then `SIGKILL` to whatever is left. The children
/// themselves are not reaped here (the caller reaps them after), so their pids and group
/// cannot be reused meanwhile. The async path calls this too.
///
/// "All of them" is the call's process group when it has one, and on Linux also every
/// descendant of the children, found through `/proc/PID/task/TID/children` (which reaches a
/// program `sudo` runs on a terminal of its own, in another session). The tree is frozen
/// (`SIGSTOP`) while it is listed, and listed again until nothing new appears, so that no
/// process can fork a child nobody lists; before `SIGKILL` it is frozen and listed again,
/// which reaches what the programs started during the grace (in a `SIGTERM` handler, say).
/// What left the tree before it was frozen (a double-forked daemon, reparented to init) is
/// reached only while it stays in the call's process group. The wait is event-driven: one
/// poll on the pidfds of the children and of those descendants.
///
/// A descendant this process may not signal (`EPERM`: it runs as the user a non-root caller
/// switched to through `sudo`) gets the same signals through `sudo -n -u USER -- kill`, for
/// each user of `switches`, when sudo's policy allows that: sent to those descendants and to
/// the call's whole process group, so that the kernel stops (or ends) every member of that
/// user at once, the orphans of a double fork that stayed in the group too, and a tree that
/// forks without pause can be frozen. Listing a tree that cannot be frozen stops after
/// `FREEZE_BOUND`. Returns the pids of those still running after that (descendants, and
/// members of the group this process may not signal): the caller reports them. The async path
/// calls this too.
pub(crate) fn terminate(
    watches: &[&ExitWatch],
    placement: Placement,
    grace: Duration,
    switches: &[Switch<'_>],
) -> Vec<u32> {
    let group = (placement == Placement::NewGroup)
        .then(|| watches.first().map(|watch| watch.pid()))
        .flatten();
    let mut descendants = Vec::new();
    freeze(group, watches, &mut descendants, switches);
    signal_all(group, watches, &descendants, Signal::SIGTERM);
    // A stopped process (frozen above, or Ctrl-Z) only acts on SIGTERM once continued.
    signal_all(group, watches, &descendants, Signal::SIGCONT);
    let relayed = signal_as(switches, group, &descendants, "TERM");
    if relayed {
        // Frozen through sudo: continued the same way, to act on the SIGTERM.
        signal_as(switches, group, &descendants, "CONT");
    }
    let deadline = time::deadline_after(grace);
    let gone = watches.iter().all(|watch| watch.wait_until(deadline))
        && descendants
            .iter()
            .all(|process| process.wait_until(deadline))
        && !tree::group_lingers(group, deadline);
    let mut killed_as = relayed;
    if !gone {
        freeze(group, watches, &mut descendants, switches);
        signal_all(group, watches, &descendants, Signal::SIGKILL);
        killed_as |= signal_as(switches, group, &descendants, "KILL");
    }
    // What sudo's `kill` was sent to is given a moment to go; the rest of the refused are
    // still running.
    let settle = if killed_as {
        time::deadline_after(SETTLE)
    } else {
        Some(Instant::now())
    };
    let mut left: Vec<u32> = descendants
        .iter()
        .filter(|process| process.refused() && !process.wait_until(settle))
        .map(|process| process.pid() as u32)
        .collect();
    // Members of the group that were never listed (a double fork's orphans) and that this
    // process may not signal: what sudo's `kill` did not end is reported too.
    if descendants.iter().any(tree::Process::refused) && tree::group_lingers(group, settle) {
        for pid in tree::unreachable_members(group) {
            if !left.contains(&pid) {
                left.push(pid);
            }
        }
    }
    left
}

/// How long listing a tree that cannot be frozen (another user's, which `sudo`'s policy does
/// not let the caller stop) may go on before the call moves on and reports what it could not
/// end.
const FREEZE_BOUND: Duration = Duration::from_secs(1);

/// How long processes ended through `sudo ... kill` get to be gone before they are reported.
const SETTLE: Duration = Duration::from_secs(1);

/// How long `sudo ... kill` may take.
const SIGNAL_AS_BOUND: Duration = Duration::from_secs(5);

/// A user the call's programs run as through `sudo`, and the `sudo` that switches to it.
pub(crate) struct Switch<'a> {
    pub(crate) sudo: &'a std::path::Path,
    pub(crate) user: &'a str,
}

/// Sends `signal` (its name) through `sudo -n -u USER -- kill` to the running descendants this
/// process was refused signalling; says whether it ran such a `kill`. sudo's refusal (no
/// rule allowing `kill`) is not an error: what is left running is reported.
fn signal_as(
    switches: &[Switch<'_>],
    group: Option<Pid>,
    descendants: &[tree::Process],
    signal: &str,
) -> bool {
    let mut pids: Vec<String> = descendants
        .iter()
        .filter(|process| process.refused() && !process.wait_until(Some(Instant::now())))
        .map(|process| process.pid().to_string())
        .collect();
    if pids.is_empty() {
        return false;
    }
    // The group as well: every member the target user may signal, listed or not.
    if let Some(group) = group {
        pids.insert(0, format!("-{group}"));
    }
    let Some(kill) = ["/usr/bin/kill", "/bin/kill"]
        .into_iter()
        .find(|path| std::path::Path::new(path).is_file())
    else {
        return false;
    };
    for switch in switches {
        let started = std::process::Command::new(switch.sudo)
            .args(["-n", "-u", switch.user, "--", kill, "-s", signal, "--"])
            .args(&pids)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = started else { continue };
        let watch = ExitWatch::new(&child);
        if !watch.wait_until(time::deadline_after(SIGNAL_AS_BOUND)) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    true
}

/// Stops (`SIGSTOP`) the call's group, its children and their descendants, listing the
/// descendants again until a listing finds none that `known` does not hold; adds those to it.
/// Those this process may not stop are stopped through `sudo ... kill` (with the whole group).
fn freeze(
    group: Option<Pid>,
    watches: &[&ExitWatch],
    known: &mut Vec<tree::Process>,
    switches: &[Switch<'_>],
) {
    // Each round stops what it found, and a stopped process cannot fork: a tree that keeps
    // forking is caught up with in as many rounds as it is deep. A tree that cannot be stopped
    // (sudo may not `kill` as its user) is listed for `FREEZE_BOUND` at most.
    let until = time::deadline_after(FREEZE_BOUND);
    let mut refused_stopped = 0;
    for _ in 0..64 {
        signal_all(group, watches, known, Signal::SIGSTOP);
        let refused = known.iter().filter(|process| process.refused()).count();
        if refused > refused_stopped {
            refused_stopped = refused;
            signal_as(switches, group, known, "STOP");
        }
        if time::passed(until, Instant::now()) {
            return;
        }
        let before = known.len();
        tree::add_descendants(watches.iter().map(|watch| watch.pid()), known);
        if known.len() == before {
            return;
        }
    }
}

fn signal_all(
    group: Option<Pid>,
    watches: &[&ExitWatch],
    descendants: &[tree::Process],
    signal: Signal,
) {
    if let Some(group) = group {
        let _ = nix::sys::signal::killpg(group, signal);
    }
    for watch in watches {
        if !watch.exited() {
            let _ = nix::sys::signal::kill(watch.pid(), signal);
        }
    }
    for process in descendants {
        process.signal(signal);
    }
}

/// The processes below a call's children, read from `/proc` (Linux); nothing elsewhere.
mod tree {
    use std::os::fd::{AsFd, OwnedFd};
    use std::time::{Duration, Instant};

    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    use crate::time;

    /// A descendant, held by a pidfd opened while it was known to be that process: signals
    /// through it never reach a process that reused the pid.
    pub(super) struct Process {
        pid: i32,
        fd: OwnedFd,
        /// Whether a signal to it was refused (`EPERM`: another user's process).
        refused: std::cell::Cell<bool>,
    }

    impl Process {
        pub(super) fn pid(&self) -> i32 {
            self.pid
        }

        pub(super) fn refused(&self) -> bool {
            self.refused.get()
        }

        pub(super) fn signal(&self, signal: Signal) {
            // Only Linux has pidfds: elsewhere no `Process` is ever made (`pidfd` is `None`).
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = (&self.fd, signal);
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                if super::sys::pidfd_send_signal(self.fd.as_fd(), signal)
                    == Err(nix::errno::Errno::EPERM)
                {
                    self.refused.set(true);
                }
            }
        }

        /// Waits until the process has exited or `deadline` passes; says whether it exited.
        pub(super) fn wait_until(&self, deadline: Option<Instant>) -> bool {
            loop {
                let left = time::time_left(deadline);
                let mut fds = [nix::poll::PollFd::new(
                    self.fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut fds, super::poll_timeout(left)) {
                    Ok(0) => return false,
                    Ok(_) => return true,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return true,
                }
            }
        }
    }

    /// Adds to `known` every descendant of `roots` it does not hold yet, each held by a pidfd
    /// (Linux); nothing elsewhere.
    pub(super) fn add_descendants(roots: impl Iterator<Item = Pid>, known: &mut Vec<Process>) {
        let mut pending: Vec<i32> = roots.map(Pid::as_raw).collect();
        let mut seen: Vec<i32> = known.iter().map(|process| process.pid).collect();
        while let Some(parent) = pending.pop() {
            for child in children(parent) {
                if seen.contains(&child) {
                    pending.push(child);
                    continue;
                }
                // Still a child of `parent` once the pidfd is open: the pidfd names this very
                // process, not one that reused the pid after `parent` reaped it.
                if let Some(fd) = super::pidfd(Pid::from_raw(child))
                    && children(parent).contains(&child)
                {
                    known.push(Process {
                        pid: child,
                        fd,
                        refused: std::cell::Cell::new(false),
                    });
                    seen.push(child);
                    pending.push(child);
                }
            }
        }
    }

    /// The children of `pid`, from every one of its threads.
    fn children(pid: i32) -> Vec<i32> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        let mut children = Vec::new();
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                children.extend(
                    text.split_whitespace()
                        .filter_map(|pid| pid.parse::<i32>().ok()),
                );
            }
        }
        children
    }

    /// Whether some process of `group` still runs at `deadline` (waited for in short ticks:
    /// a process group cannot be polled). Members that are zombies have exited; without
    /// `/proc` a group is asked with signal 0, zombies included.
    pub(super) fn group_lingers(group: Option<Pid>, deadline: Option<Instant>) -> bool {
        let Some(group) = group else { return false };
        loop {
            if !group_alive(group) {
                return false;
            }
            if time::passed(deadline, Instant::now()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The live members of `group` this process may not signal (another user's), read from
    /// `/proc` (Linux); nothing elsewhere, or when the group is gone or all ours.
    pub(super) fn unreachable_members(group: Option<Pid>) -> impl Iterator<Item = u32> {
        let members = match group {
            Some(group) if cfg!(any(target_os = "linux", target_os = "android")) => members(group),
            _ => Vec::new(),
        };
        members
            .into_iter()
            .filter(|&pid| {
                nix::sys::signal::kill(Pid::from_raw(pid), None) == Err(nix::errno::Errno::EPERM)
            })
            .map(|pid| pid as u32)
    }

    /// The members of `group` that are not zombies, from `/proc`.
    fn members(group: Pid) -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|text| {
                    text.rsplit_once(')').is_some_and(|(_, rest)| {
                        let fields: Vec<&str> = rest.split_whitespace().collect();
                        fields.get(2) == Some(&group.as_raw().to_string().as_str())
                            && !matches!(fields.first(), Some(&"Z" | &"X"))
                    })
                })
            })
            .collect()
    }

    fn group_alive(group: Pid) -> bool {
        // ESRCH: no member at all. EPERM: members, none of them ours to signal.
        if nix::sys::signal::killpg(group, None) == Err(nix::errno::Errno::ESRCH) {
            return false;
        }
        if !cfg!(any(target_os = "linux", target_os = "android"))
            || !std::path::Path::new("/proc/self").exists()
        {
            return true;
        }
        // Signal 0 counts zombies: look for a member that is not one.
        !members(group).is_empty()
    }
}

/// Writes to a pipe without letting `SIGPIPE` reach the caller: the signal is blocked in this
/// thread for the write, and one the write raised is taken before unblocking. A caller whose
/// `SIGPIPE` is at its default action (common in command-line tools) is not killed when the
/// program exits before reading all its input; the write fails with `EPIPE` instead.
pub(crate) fn write_without_sigpipe(pipe: &mut File, bytes: &[u8]) -> io::Result<usize> {
    let mut pipe_only = SigSet::empty();
    pipe_only.add(Signal::SIGPIPE);
    let mut previous = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe_only), Some(&mut previous))?;
    let result = pipe.write(bytes);
    if !previous.contains(Signal::SIGPIPE) {
        if matches!(&result, Err(error) if error.kind() == io::ErrorKind::BrokenPipe)
            && sys::sigpipe_pending()
        {
            // The write raised SIGPIPE for this thread: take it while it is blocked.
            let _ = pipe_only.wait();
        }
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None)?;
    }
    result
}

/// Keeps children's exit statuses while calls run in a process that ignores `SIGCHLD`.
///
/// With `SIGCHLD` ignored (classic daemon practice) the kernel reaps children itself and
/// their status is lost. While at least one call is in flight the action is set to the
/// default (which also ignores the signal, but keeps zombies); the last call puts the
/// ignoring back and reaps any zombie left meanwhile, as the ignoring would have.
pub(crate) struct StatusGuard {
    active: bool,
}

struct Sigchld {
    calls: usize,
    restore: Option<sys::ChildAction>,
}

static SIGCHLD_STATE: Mutex<Sigchld> = Mutex::new(Sigchld {
    calls: 0,
    restore: None,
});

impl StatusGuard {
    pub(crate) fn new() -> Self {
        let mut state = SIGCHLD_STATE.lock().unwrap_or_else(|p| p.into_inner());
        if state.calls == 0 {
            let Some(old) = sys::ChildAction::current() else {
                return Self { active: false };
            };
            if !old.discards_statuses() || !sys::ChildAction::set_default() {
                return Self { active: false };
            }
            state.restore = Some(old);
        } else if state.restore.is_none() {
            return Self { active: false };
        }
        state.calls += 1;
        Self { active: true }
    }
}

impl Drop for StatusGuard {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let mut state = SIGCHLD_STATE.lock().unwrap_or_else(|p| p.into_inner());
        state.calls -= 1;
        if state.calls > 0 {
            return;
        }
        if let Some(old) = state.restore.take() {
            old.restore();
            // Reap what exited while statuses were kept: the caller asked for no zombies.
            sys::reap_exited();
        }
    }
}
