//! The daemon's output when it has a log file: its stdout and stderr are the write end of a
//! pipe, and a thread of its own, the pump, copies what arrives to the log file.
//!
//! Why not the log file itself on descriptors 1 and 2: std's `println!` panics when a write
//! fails, so the first line that met a full disk (`ENOSPC`), a quota (`EDQUOT`), a file size
//! limit (`EFBIG`) or a failing disk (`EIO`) would kill `run`. A pipe takes every write as
//! long as the pump keeps reading, and the pump never stops reading: a chunk it cannot write
//! is dropped, its lines counted, and once a write succeeds again the first thing in the file
//! is the line [`lost_line`] (`deluxe[PID]: WARN: N lines lost: cannot write to the log file:
//! ERROR`). Lines are never cut into pieces by a loss: a line partly dropped is dropped whole,
//! from the pump's point of view, and counted.
//!
//! The pipe is made in the setup steps (system calls only, before "ready"), enlarged to 1 MiB
//! where the system allows it (Linux, `F_SETPIPE_SZ`), so that what `setup` prints before the
//! pump starts, and bursts, do not block. The pump starts with the daemon's threads; if it
//! cannot, descriptors 1 and 2 become the log file itself, as without a pump.
//!
//! A reopen (`SIGHUP`) hands the new file to the pump, which first writes what the pipe
//! already holds to the old one. At the exit the pump writes what the pipe holds, then the
//! process ends; both waits are bounded by [`SETTLE`], so a hung disk cannot hold the daemon.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::sys;

/// The pipe's capacity asked for (Linux; best effort).
#[cfg(any(target_os = "linux", target_os = "android"))]
const PIPE_SIZE: libc::c_int = 1 << 20;

/// How long a reopen waits for the pump to switch files, and the exit for it to empty the
/// pipe: longer only when the log's disk hangs.
const SETTLE: Duration = Duration::from_secs(2);

/// How much the pump reads at once.
const CHUNK: usize = 64 * 1024;

/// The pipe's read end and the log file, between the setup steps and the pump.
pub(crate) struct Output {
    read: OwnedFd,
    log: OwnedFd,
}

impl Output {
    /// Makes descriptors 1 and 2 the write end of a new pipe whose read end, with `log`, is
    /// returned. Async-signal-safe (system calls only), for the setup steps. Descriptors 1
    /// and 2 must be open already (on `/dev/null`), so that neither end takes their numbers.
    pub(crate) fn install(log: OwnedFd) -> Result<Self, Errno> {
        let (read, write) = sys::pipe_nonblocking()?;
        // Writers block on a full pipe, as on a slow file; `println!` must never see EAGAIN.
        sys::set_nonblocking(write.as_fd(), false)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        sys::grow_pipe(read.as_fd(), PIPE_SIZE);
        sys::dup2(write.as_fd(), 1)?;
        sys::dup2(write.as_fd(), 2)?;
        Ok(Self { read, log })
    }

    /// After a failed step, before the daemon gives up: copies what the pipe holds (what
    /// `setup` printed) to the log file, as it would have gone there directly.
    /// Async-signal-safe.
    pub(crate) fn forward(&self) {
        let mut buf = [0u8; 4096];
        loop {
            // The read end is non-blocking.
            let count = match sys::read(self.read.as_fd(), &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(count) => count,
            };
            if sys::write_all(self.log.as_fd(), &buf[..count]).is_err() {
                return;
            }
        }
    }
}

/// What the pump shares with the threads that reopen the log or exit.
struct Shared {
    /// The process the pump runs in: a process forked from the daemon has no pump.
    owner: u32,
    /// Wakes the pump (a byte written to it).
    wake: OwnedFd,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// A reopened log file for the pump to switch to.
    next: Option<OwnedFd>,
    /// Whether a flush is asked: the pump writes what the pipe holds, and goes on.
    flush: bool,
    /// How many times the pump has written what the pipe held when asked (for a switch or a
    /// flush).
    copied: u64,
    /// The process is exiting: the pump empties the pipe and ends.
    closing: bool,
    /// The pump has ended.
    ended: bool,
}

static PUMP: OnceLock<Shared> = OnceLock::new();

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the pump on its own thread. If it cannot be started (no descriptor for its wake
/// pipe, no thread), descriptors 1 and 2 become the log file itself (output written so far is
/// copied there first) and the error is returned: the daemon does not go on without the
/// pump. A daemon started from a daemon (forked from it, where the pump of the first one is
/// set up already) writes to its log file directly.
pub(crate) fn start(output: Output) -> Result<(), Errno> {
    let (wake_read, wake) = match sys::pipe_nonblocking() {
        Ok(pipe) => pipe,
        Err(errno) => {
            write_directly(output);
            return Err(errno);
        }
    };
    let shared = Shared {
        owner: std::process::id(),
        wake,
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
    };
    if PUMP.set(shared).is_err() {
        // Only one pump per process image: this is a daemon forked from a daemon.
        write_directly(output);
        return Ok(());
    }
    // Given to the thread if it starts, taken back otherwise.
    let handed = Arc::new(Mutex::new(Some(output)));
    let taken = Arc::clone(&handed);
    let started = std::thread::Builder::new()
        .name("deluxe-log".into())
        .spawn(move || {
            let output = taken.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(output) = output {
                pump(output, wake_read);
            }
        });
    match started {
        Ok(_) => {
            // A function that only locks, waits and writes (see `settle`).
            sys::at_exit(drain_at_exit);
            Ok(())
        }
        Err(error) => {
            if let Some(shared) = PUMP.get() {
                lock(&shared.state).ended = true;
            }
            let output = handed.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(output) = output {
                write_directly(output);
            }
            Err(error.raw_os_error().map_or(Errno::EAGAIN, Errno::from_raw))
        }
    }
}

/// The fallback without a pump: the log file on descriptors 1 and 2.
fn write_directly(output: Output) {
    output.forward();
    let _ = sys::dup2(output.log.as_fd(), 1);
    let _ = sys::dup2(output.log.as_fd(), 2);
}

/// The running pump of this process, if any.
fn running() -> Option<&'static Shared> {
    PUMP.get()
        .filter(|shared| shared.owner == std::process::id())
}

fn wake(shared: &Shared) {
    let _ = sys::write_all(shared.wake.as_fd(), &[1]);
}

/// Makes `log` the daemon's log file (a reopen on `SIGHUP`): what the daemon wrote before
/// this call goes to the previous file, what it writes after to this one. Returns once the
/// pump has switched (or after [`SETTLE`], if the previous file's disk hangs). Without a
/// pump, `log` goes on descriptors 1 and 2.
pub(crate) fn reopen(log: OwnedFd) -> Result<(), Errno> {
    let Some(shared) = running() else {
        sys::dup2(log.as_fd(), 1)?;
        return sys::dup2(log.as_fd(), 2);
    };
    let mut state = lock(&shared.state);
    if state.ended {
        return Ok(());
    }
    state.next = Some(log);
    let target = state.copied + 1;
    drop(state);
    wake(shared);
    settle(shared, |state| state.copied >= target);
    Ok(())
}

/// Waits until the pump has written what the daemon wrote before this call (at most
/// [`SETTLE`]); the pump goes on. The daemon calls it before it removes its pidfile, so that a
/// `stop` that returns when the pidfile's lock is released finds the output in the log.
pub(crate) fn flush() {
    let Some(shared) = running() else {
        return;
    };
    let mut state = lock(&shared.state);
    if state.ended {
        return;
    }
    state.flush = true;
    let target = state.copied + 1;
    drop(state);
    wake(shared);
    settle(shared, |state| state.copied >= target);
}

/// At the exit (and before a `SIGKILL` of the daemon's own group): waits until the pump has
/// written what the pipe holds, at most [`SETTLE`]. Whatever the daemon writes from then on
/// may be lost.
pub(crate) fn drain() {
    let Some(shared) = running() else {
        return;
    };
    lock(&shared.state).closing = true;
    wake(shared);
    settle(shared, |_| false);
}

/// Registered with `atexit`: runs after std has flushed stdout in `exit`.
extern "C" fn drain_at_exit() {
    drain();
}

/// Waits until `done` holds or the pump has ended, at most [`SETTLE`].
fn settle(shared: &Shared, done: impl Fn(&State) -> bool) {
    let deadline = Instant::now() + SETTLE;
    let mut state = lock(&shared.state);
    while !done(&state) && !state.ended {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        state = shared
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The pump: copies the pipe to the log file until the pipe ends (every writer closed it) or
/// the process exits.
fn pump(output: Output, wake_read: OwnedFd) {
    let Some(shared) = PUMP.get() else {
        return;
    };
    // A write past the file size limit (`RLIMIT_FSIZE`) sends the writing thread SIGXFSZ,
    // whose default action ends the process: blocked here, it stays pending on this thread
    // alone and the write fails with EFBIG, a loss like any other.
    let mut xfsz = nix::sys::signal::SigSet::empty();
    xfsz.add(nix::sys::signal::Signal::SIGXFSZ);
    let _ = xfsz.thread_block();
    let Output { read, log } = output;
    let mut writer = Writer::new(log);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let _ = sys::wait_readable_any(&[read.as_fd(), wake_read.as_fd()], Duration::MAX);
        sys::drain(wake_read.as_fd());
        let (next, flush, closing) = {
            let mut state = lock(&shared.state);
            (
                state.next.take(),
                std::mem::take(&mut state.flush),
                state.closing,
            )
        };
        let ended = if next.is_some() || flush || closing {
            // What the pipe holds now was written before the switch, the flush or the exit.
            let ended = copy_all(read.as_fd(), &mut buf, &mut writer);
            let asked = next.is_some() || flush;
            if let Some(log) = next {
                writer.switch(log);
            }
            if asked {
                lock(&shared.state).copied += 1;
                shared.changed.notify_all();
            }
            ended || closing
        } else {
            match read_chunk(read.as_fd(), &mut buf) {
                Chunk::Data(count) => {
                    writer.write(&buf[..count]);
                    false
                }
                Chunk::Empty => false,
                Chunk::End => true,
            }
        };
        if ended {
            writer.finish();
            lock(&shared.state).ended = true;
            shared.changed.notify_all();
            return;
        }
    }
}

enum Chunk {
    Data(usize),
    /// Nothing to read now.
    Empty,
    /// Every write end is closed.
    End,
}

fn read_chunk(read: BorrowedFd<'_>, buf: &mut [u8]) -> Chunk {
    loop {
        // The read end is non-blocking.
        match sys::read(read, buf) {
            Ok(0) => return Chunk::End,
            Ok(count) => return Chunk::Data(count),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Chunk::Empty,
            Err(_) => return Chunk::End,
        }
    }
}

/// Writes what the pipe holds now (not what writers add meanwhile: a steady writer cannot hold
/// a switch or the exit); returns whether the pipe ended.
fn copy_all(read: BorrowedFd<'_>, buf: &mut [u8], writer: &mut Writer) -> bool {
    // Cannot tell: until the pipe is empty.
    let mut left = sys::pending_bytes(read).unwrap_or(usize::MAX);
    while left > 0 {
        let limit = buf.len().min(left);
        match read_chunk(read, &mut buf[..limit]) {
            Chunk::Data(count) => {
                writer.write(&buf[..count]);
                left -= count;
            }
            Chunk::Empty => return false,
            Chunk::End => return true,
        }
    }
    false
}

/// Writes to the log file, dropping and counting the lines it cannot write.
struct Writer {
    log: OwnedFd,
    /// The first error of the current loss; `None` while writes succeed.
    error: Option<Errno>,
    /// Lines dropped since the last successful write.
    lost: u64,
    /// Whether the loss ends in the middle of a line: the rest of it is dropped too.
    mid_line: bool,
    /// Whether the file's last byte written ends a line.
    at_line_start: bool,
}

impl Writer {
    fn new(log: OwnedFd) -> Self {
        Self {
            log,
            error: None,
            lost: 0,
            mid_line: false,
            at_line_start: true,
        }
    }

    fn write(&mut self, mut bytes: &[u8]) {
        if self.error.is_some() {
            if self.mid_line {
                let Some(end) = bytes.iter().position(|byte| *byte == b'\n') else {
                    return;
                };
                self.lost += 1;
                self.mid_line = false;
                bytes = &bytes[end + 1..];
            }
            // At a line's start: one try per chunk to say what was lost.
            if bytes.is_empty() || !self.report_loss() {
                self.discard(bytes);
                return;
            }
        }
        self.put(bytes);
    }

    /// Writes `bytes`; on failure drops and counts what was not written.
    fn put(&mut self, bytes: &[u8]) {
        let (written, result) = write_counting(self.log.as_fd(), bytes);
        if written > 0 {
            self.at_line_start = bytes[written - 1] == b'\n';
        }
        if let Err(errno) = result {
            self.error = Some(errno);
            self.discard(&bytes[written..]);
        }
    }

    fn discard(&mut self, bytes: &[u8]) {
        let ends = bytes.iter().filter(|byte| **byte == b'\n').count();
        self.lost += ends as u64;
        if let Some(last) = bytes.last() {
            self.mid_line = *last != b'\n';
        }
    }

    /// Writes the line that says how many lines were lost; returns whether it went in.
    fn report_loss(&mut self) -> bool {
        let Some(errno) = self.error else {
            return true;
        };
        let text = format!(
            "{}{}",
            if self.at_line_start { "" } else { "\n" },
            lost_line(std::process::id(), self.lost, errno)
        );
        let (written, result) = write_counting(self.log.as_fd(), text.as_bytes());
        if written > 0 {
            self.at_line_start = text.as_bytes()[written - 1] == b'\n';
        }
        if result.is_err() {
            return false;
        }
        self.error = None;
        self.lost = 0;
        true
    }

    /// A reopened log file: the loss, if any, is reported in it.
    fn switch(&mut self, log: OwnedFd) {
        // The same file reopened (no rotation) goes on where the last write left it; another
        // file is taken to end with a whole line.
        let identity = |fd: &OwnedFd| sys::fstat(fd.as_fd()).ok().map(|(identity, _)| identity);
        let same = identity(&log).is_some_and(|new| identity(&self.log) == Some(new));
        self.log = log;
        if !same {
            self.at_line_start = true;
        }
        if !self.mid_line {
            self.report_loss();
        }
    }

    /// The last chance to report a loss, as the pump ends.
    fn finish(&mut self) {
        if self.error.is_some() && self.mid_line {
            self.lost += 1;
            self.mid_line = false;
        }
        self.report_loss();
    }
}

/// The line written once writing works again after `lost` lines were dropped because of
/// `errno`: `deluxe[PID]: WARN: N lines lost: cannot write to the log file: ERROR\n`, in the
/// form of the daemon's other messages.
pub(crate) fn lost_line(pid: u32, lost: u64, errno: Errno) -> String {
    format!(
        "deluxe[{pid}]: WARN: {lost} line{} lost: cannot write to the log file: {}\n",
        if lost == 1 { "" } else { "s" },
        std::io::Error::from(errno)
    )
}

/// Writes all of `bytes`; returns how many were written, and the error that stopped it.
fn write_counting(fd: BorrowedFd<'_>, bytes: &[u8]) -> (usize, Result<(), Errno>) {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        match sys::write(fd, rest) {
            // A regular file that takes nothing: as good as full.
            Ok(0) => return (written, Err(Errno::ENOSPC)),
            Ok(count) => written += count,
            Err(Errno::EINTR) => continue,
            Err(errno) => return (written, Err(errno)),
        }
    }
    (written, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/dev/full`: every write fails with `ENOSPC`, as on a full disk.
    fn full() -> OwnedFd {
        OwnedFd::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    }

    #[test]
    fn the_lost_line_is_stable() {
        assert_eq!(
            lost_line(42, 1, Errno::ENOSPC),
            "deluxe[42]: WARN: 1 line lost: cannot write to the log file: No space left on \
             device (os error 28)\n"
        );
        assert_eq!(
            lost_line(42, 3, Errno::EIO),
            "deluxe[42]: WARN: 3 lines lost: cannot write to the log file: Input/output error \
             (os error 5)\n"
        );
    }

    #[test]
    fn lines_that_cannot_be_written_are_counted_once_and_reported_where_writing_works() {
        let mut writer = Writer::new(full());
        writer.write(b"a\nb\npar");
        assert_eq!((writer.lost, writer.mid_line), (2, true));
        // The rest of the partial line, then whole lines: the partial line counts once.
        writer.write(b"tial\nc\n");
        assert_eq!((writer.lost, writer.mid_line), (4, false));
        writer.write(b"d");
        assert_eq!((writer.lost, writer.mid_line), (4, true));

        let path = std::env::temp_dir().join(format!("deluxe-output-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        writer.switch(OwnedFd::from(file));
        // Mid-line: the report waits for the line's end.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        writer.write(b"-end\ne\n");
        writer.finish();
        let pid = std::process::id();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}e\n", lost_line(pid, 5, Errno::ENOSPC))
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_loss_still_pending_at_the_end_is_reported_with_its_partial_line() {
        let mut writer = Writer::new(full());
        writer.write(b"a\npartial");
        let path = std::env::temp_dir().join(format!("deluxe-output-end-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        writer.log = OwnedFd::from(file);
        writer.finish();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            lost_line(std::process::id(), 2, Errno::ENOSPC)
        );
        std::fs::remove_file(&path).unwrap();
    }
}
