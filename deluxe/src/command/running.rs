//! A call in progress ([`Running`]): one public type over a per-platform implementation, as
//! std's `Child` is. Each platform starts the stages, feeds and drains their pipes and ends
//! them on a bound or a kill ([`unix`](self::unix): one polling loop, a process group;
//! `windows`: reader threads, a Job Object); the verdict on how the call ended, its bounds
//! ([`Ending`]) and standard error's kept tail ([`Tail`]) are written once, here.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

#[cfg(unix)]
use self::unix as imp;
#[cfg(windows)]
use self::windows as imp;
use super::lines::LineBuffer;
use super::options::Stderr;
use super::{CallOptions, CommandError, Lines, Output, STDERR_CAP};
#[cfg(unix)]
use super::{SudoRun, sudo};
#[cfg(all(unix, feature = "tokio"))]
pub(crate) use imp::Progress;

/// A program (or pipeline) started by [`Command::spawn`](super::Command::spawn), running.
///
/// Its standard output can be read line by line as it is produced ([`Running::lines`]); the
/// input given in the options is written meanwhile, and standard error's tail kept.
/// [`Running::wait`] collects the rest and judges the outcome as a call would.
/// [`Running::kill`] terminates the program and everything it started (on Unix its process
/// group, on Windows its Job Object). Dropping a `Running` that has not been waited for kills
/// it the same way: no process of it is left behind, and every child is reaped.
///
/// ```
/// # #[cfg(unix)] {
/// use deluxe::command::{CallOptions, Command};
///
/// let sh = Command::new("sh")?;
/// let mut running = sh.spawn(["-c", "echo one; echo two; exit 3"], &CallOptions::new().success_codes([3]))?;
/// let lines: Vec<String> = running.lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// assert_eq!(running.wait()?.code, 3);
/// # }
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
pub struct Running {
    /// The platform's call: what the async forms drive.
    pub(super) imp: imp::Running,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.imp.fmt(f)
    }
}

impl Running {
    /// Starts the plans as one call: each stage's stdout feeds the next one's stdin.
    /// The time limit runs from `begun`, when the call began (before any check of sudo's).
    pub(crate) fn start(
        plans: Vec<super::Plan>,
        options: &CallOptions,
        begun: std::time::Instant,
    ) -> Result<Self, CommandError> {
        imp::Running::start(plans, options, begun).map(|imp| Self { imp })
    }

    /// The process id of the program (the first stage of a pipeline). On Unix, with a process
    /// group of its own, it is also the group's id.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use deluxe::command::{CallOptions, Command};
    /// let running = Command::new("sleep")?.spawn(["10"], &CallOptions::new())?;
    /// assert!(running.id() > 0);
    /// # }
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.imp.id()
    }

    /// The program's standard output, line by line as it is produced (without the `\n` or
    /// `\r\n`; bytes that are not UTF-8 are replaced). The iterator ends when the output does;
    /// after a time limit has passed it yields [`CommandError::Timeout`] once, and when a line
    /// longer than [`CallOptions::max_output`] (or that much output not yet taken) was read,
    /// [`CommandError::OutputLimit`] once.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use deluxe::command::{CallOptions, Command};
    /// let mut running = Command::new("seq")?.spawn(["3"], &CallOptions::new())?;
    /// let mut total = 0;
    /// for line in running.lines() {
    ///     total += line?.parse::<i32>().unwrap();
    /// }
    /// assert_eq!(total, 6);
    /// running.wait()?;
    /// # }
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn lines(&mut self) -> Lines<'_> {
        Lines::new(self)
    }

    /// The next whole line already read, if any: [`Running::next_line`]'s fast path.
    #[inline]
    pub(crate) fn ready_line(&mut self) -> Option<String> {
        self.imp.ready_line()
    }

    /// Reads the next line of standard output, `None` at its end.
    pub(crate) fn next_line(&mut self) -> Option<Result<String, CommandError>> {
        self.imp.next_line()
    }

    /// Terminates the program and everything it started, and waits until the program is gone:
    /// on Unix `SIGTERM` to its process group, then `SIGKILL` after the grace
    /// ([`Running::wait`] then reports `SIGTERM`, usually); on Windows its Job Object is
    /// terminated ([`Running::wait`] then reports exit code 1).
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use deluxe::command::{CallOptions, Command, CommandError};
    /// let mut running = Command::new("sleep")?.spawn(["1000"], &CallOptions::new())?;
    /// running.kill();
    /// assert!(matches!(running.wait(), Err(CommandError::Signal { signal: 15, .. })));
    /// # }
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn kill(&mut self) {
        self.imp.kill();
    }

    /// Waits for the program to end, reading the rest of its output, and judges the outcome
    /// as [`Command::output`](super::Command::output) does.
    ///
    /// # Errors
    ///
    /// As [`Command::output`](super::Command::output).
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use deluxe::command::{CallOptions, Command};
    /// let running = Command::new("echo")?.spawn(["hi"], &CallOptions::new())?;
    /// assert_eq!(running.wait()?.stdout, b"hi\n");
    /// # }
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn wait(self) -> Result<Output, CommandError> {
        self.imp.wait()
    }
}

/// A call's bounds (its time limit and its output limit) and whether one ended it: the same
/// for each platform's call.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_output: usize,
    /// The time limit passed.
    pub(crate) timed_out: bool,
    /// The output passed `max_output`.
    pub(crate) over_limit: bool,
    /// [`Ending::report_once`] has reported it.
    reported: bool,
}

impl Ending {
    pub(crate) fn new(options: &CallOptions) -> Self {
        Self {
            timeout: options.timeout,
            max_output: options.max_output,
            timed_out: false,
            over_limit: false,
            reported: false,
        }
    }

    /// The next whole line already in `buffered`, unless the output passed its limit.
    fn ready_line(&self, buffered: &mut LineBuffer) -> Option<String> {
        if self.over_limit {
            return None;
        }
        buffered.take_line(false)
    }

    /// Past `max_output`: keeps that much of `buffered`, notes it, and says so (the caller
    /// then stops reading and terminates the call).
    fn cut(&mut self, buffered: &mut LineBuffer) -> bool {
        if buffered.len() <= self.max_output {
            return false;
        }
        buffered.truncate(self.max_output);
        self.over_limit = true;
        true
    }

    /// Whether a bound ended the call.
    pub(crate) fn ended(&self) -> bool {
        self.timed_out || self.over_limit
    }

    /// The error of a call a bound ended, the first time it is asked (for `lines()`).
    pub(crate) fn report_once(&mut self, program: Option<&PathBuf>) -> Option<CommandError> {
        if !self.ended() || self.reported {
            return None;
        }
        self.reported = true;
        let program = program.cloned().unwrap_or_default();
        Some(self.error(program, Vec::new(), Vec::new()))
    }

    /// The error of a call a bound ended: its output limit when passed, else its time limit.
    pub(crate) fn error(&self, program: PathBuf, stdout: Vec<u8>, stderr: Vec<u8>) -> CommandError {
        if self.over_limit {
            return CommandError::OutputLimit {
                program,
                limit: self.max_output,
                stdout,
                stderr,
            };
        }
        CommandError::Timeout {
            program,
            timeout: self.timeout.unwrap_or_default(),
            stdout,
            stderr,
        }
    }
}

/// The file a call's standard error goes to ([`Stderr::File`]), created (truncated) once for
/// every stage.
fn stderr_file(options: &CallOptions) -> Result<Option<File>, CommandError> {
    match &options.stderr {
        Stderr::File(path) => {
            File::create(path)
                .map(Some)
                .map_err(|error| CommandError::StderrFile {
                    path: path.clone(),
                    error,
                })
        }
        _ => Ok(None),
    }
}

/// How one stage of a call ended.
struct End {
    program: PathBuf,
    status: ExitStatus,
    stderr: Vec<u8>,
    /// The `sudo` the stage ran through, if any.
    #[cfg(unix)]
    sudo: Option<SudoRun>,
    /// What `sudo` did before it exited, when the stage ran through it.
    #[cfg(unix)]
    trace: sudo::Trace,
}

/// The call's result once every stage is reaped: the bound that ended it, when one did; else
/// the rightmost stage that failed decides (as `set -o pipefail`; what "failed" means is the
/// platform's, see `imp::failed`).
fn verdict(
    ending: &Ending,
    ends: Vec<End>,
    stdout: Vec<u8>,
    success_codes: &[i32],
) -> Result<Output, CommandError> {
    if ending.ended() {
        let program = ends.last().map(|end| end.program.clone());
        let stderr = ends.into_iter().flat_map(|end| end.stderr).collect();
        return Err(ending.error(program.unwrap_or_default(), stdout, stderr));
    }
    let count = ends.len();
    let failing = (0..count)
        .rev()
        .find(|&index| imp::failed(&ends[index], index + 1 == count, success_codes));
    let code = ends.last().map(imp::code).unwrap_or_default();
    let Some(index) = failing else {
        return Ok(Output {
            code,
            stdout,
            stderr: ends.into_iter().flat_map(|end| end.stderr).collect(),
        });
    };
    let end = ends.into_iter().nth(index).expect("a failing stage");
    Err(imp::stage_error(end, stdout).in_stage(index, count))
}

/// The last [`STDERR_CAP`] bytes of a stream, kept while it is read: never more than the cap
/// plus the chunk being added is held, however much the program writes.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    /// Adds what was just read, dropping what is older than the cap.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(STDERR_CAP)..];
        let excess = (self.bytes.len() + chunk.len()).saturating_sub(STDERR_CAP);
        if excess > 0 {
            self.bytes.drain(..excess);
        }
        self.bytes.extend(chunk);
    }

    /// The kept bytes: the last 64 KiB at most, as written.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_64_kib_as_bytes() {
        let mut tail = Tail::default();
        for _ in 0..100_000 {
            tail.push("é".as_bytes());
        }
        tail.push(b"\xff\xfeend");
        let bytes = tail.into_bytes();
        assert_eq!(bytes.len(), STDERR_CAP);
        assert!(bytes.ends_with(b"\xc3\xa9\xff\xfeend"));
    }

    proptest::proptest! {
        /// However stderr arrives, what is kept is its end, within the cap.
        #[test]
        fn the_tail_is_the_end_of_the_stream(
            lengths in proptest::collection::vec(0..40_000usize, 0..6),
            offset in 0..251u8,
        ) {
            let chunks: Vec<Vec<u8>> = lengths
                .iter()
                .enumerate()
                .map(|(i, len)| (0..*len).map(|j| (i + j) as u8 ^ offset).collect())
                .collect();
            let mut tail = Tail::default();
            for chunk in &chunks {
                tail.push(chunk);
            }
            let whole: Vec<u8> = chunks.concat();
            let kept = tail.into_bytes();
            proptest::prop_assert_eq!(kept.len(), whole.len().min(STDERR_CAP));
            proptest::prop_assert!(whole.ends_with(&kept));
        }
    }
}
