//! Linux: when the signal thread takes a stop, the signals sent before it that other threads
//! have taken and not yet noted.
//!
//! Every thread of the daemon may take its signals (none blocks them, so a program any of
//! them starts, even through `posix_spawn`, has an empty mask). A `SIGUSR1` sent before a
//! `SIGTERM` is then in one of three places when the signal thread sees the stop:
//! - still pending: the signal thread takes it itself (`sigtimedwait`, with the signals
//!   blocked for a moment in this thread only);
//! - taken by another thread, whose handler has not noted it yet (the kernel has dequeued it
//!   and is about to run the handler, or the handler is running): the signal thread sends
//!   each other thread a `SIGHUP` of its own (a barrier, which the handler recognises and
//!   ignores) and waits until none is still pending. A handler blocks every handled signal
//!   while it runs, from the moment the kernel sets it up, so a thread's barrier is delivered
//!   only after the handler it was about to run, or was running, has noted its signal;
//! - noted already.
//!
//! A thread that blocks `SIGHUP` for good (one that blocks every signal, as some C libraries'
//! helper threads do) never takes its barrier: once it has kept it blocked for
//! [`BLOCKED_FOR_GOOD`] with no handler running, it is not waited for.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use super::sys;

/// The signal that serves as the barrier (only when sent by the daemon to its own thread).
pub(super) const BARRIER: Signal = Signal::SIGHUP;

/// Whether barriers have been sent: from then on a `SIGHUP` a thread of the daemon sends to
/// one of its threads (`raise`, `pthread_kill`) is taken for a barrier. Set at the stop, and
/// never cleared: a barrier still pending in a thread that blocks it must not reload later.
static SENT: AtomicBool = AtomicBool::new(false);

/// How many of the daemon's handlers are running.
static RUNNING: AtomicI32 = AtomicI32::new(0);

/// How long a thread may keep its barrier blocked, with no handler running, before it is
/// taken for one that blocks `SIGHUP` for good.
const BLOCKED_FOR_GOOD: Duration = Duration::from_millis(500);

/// The longest the signal thread waits for the barriers; the stop's grace bounds it too.
const LONGEST: Duration = Duration::from_secs(2);

/// Called first thing in the handler; `false` when the signal is a barrier. Async-signal-safe.
/// `thread_sender`: the process that sent the signal to one of its threads, if one did.
pub(super) fn enter(
    signal: libc::c_int,
    thread_sender: Option<libc::pid_t>,
    me: libc::pid_t,
) -> bool {
    RUNNING.fetch_add(1, Ordering::AcqRel);
    let barrier = signal == BARRIER as libc::c_int
        && SENT.load(Ordering::Acquire)
        && thread_sender == Some(me);
    !barrier
}

/// Called last thing in the handler. Async-signal-safe.
pub(super) fn leave() {
    RUNNING.fetch_sub(1, Ordering::AcqRel);
}

/// Takes the signals of `handled` still pending for the process, and waits until the other
/// threads have noted those they took (see the module's documentation); returns the bits of
/// the signals taken here. `deadline` bounds the wait.
pub(super) fn catch_up(handled: &SigSet, deadline: Option<Instant>) -> u32 {
    let mut taken = 0;
    let mut previous = SigSet::empty();
    if handled
        .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
        .is_ok_and(|old| {
            previous = old;
            true
        })
    {
        while let Some(signal) = sys::take_pending(handled.as_ref()) {
            taken |= 1 << signal;
        }
        let _ = previous.thread_set_mask();
    }
    SENT.store(true, Ordering::Release);
    let pid = std::process::id() as libc::pid_t;
    let me = sys::gettid();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return taken;
    };
    let mut waiting: Vec<libc::pid_t> = tasks
        .flatten()
        .filter_map(|task| task.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|&tid| tid != me)
        // The handler of this very process recognises it; a thread that has exited just
        // fails it.
        .filter(|&tid| sys::tgkill(pid, tid, BARRIER as libc::c_int))
        .collect();
    let started = Instant::now();
    let limit = deadline.map_or(started + LONGEST, |deadline| {
        deadline.min(started + LONGEST)
    });
    let mut quiet_since: Option<Instant> = None;
    // A thread takes its barrier within microseconds, unless it is descheduled: yield at
    // first (a sleep lasts at least the timer slack, 50 µs), then sleep.
    let mut pause = Duration::from_micros(50);
    let bit = 1u64 << (BARRIER as u32 - 1);
    while !waiting.is_empty() && Instant::now() < limit {
        let now = Instant::now();
        quiet_since = match RUNNING.load(Ordering::Acquire) {
            0 => Some(quiet_since.unwrap_or(now)),
            _ => None,
        };
        let blocked_for_good = quiet_since.is_some_and(|since| now - since >= BLOCKED_FOR_GOOD);
        waiting.retain(|&tid| match thread_masks(tid) {
            // Gone, or its barrier taken: whatever it had taken before is noted.
            None => false,
            Some((pending, blocked)) => {
                pending & bit != 0 && !(blocked_for_good && blocked & bit != 0)
            }
        });
        if waiting.is_empty() {
            break;
        }
        if started.elapsed() < Duration::from_micros(200) {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
    }
    taken
}

/// A thread's own pending signals and its mask (`SigPnd`, `SigBlk` of its `status`); `None`
/// once it has exited.
fn thread_masks(tid: libc::pid_t) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| u64::from_str_radix(line.strip_prefix(name)?.trim(), 16).ok())
    };
    Some((field("SigPnd:")?, field("SigBlk:")?))
}
