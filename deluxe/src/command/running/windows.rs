//! A call in progress on Windows: the program in a Job Object of its own, its pipes fed and
//! drained by threads, its exit, deadline and cancellation watched by the caller's thread.
//!
//! Windows anonymous pipes cannot be polled, so, as std's `Command::output` does there, the
//! input is written and each output stream read on threads of their own; standard output
//! arrives in chunks over a channel, which [`Running::lines`](super::Running::lines) reads as it comes. Once the
//! program has exited, the readers get [`LINGER`] more to reach the end of its output: a
//! background process it started that keeps the pipes open does not hold the call. A timeout,
//! [`Running::kill`](super::Running::kill), dropping the `Running` or an async call's future terminates the job: the
//! program and everything it started.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::super::lines::LineBuffer;
use super::super::options::{Input, LINGER, Stderr};
use super::super::windows::{Job, crash};
use super::super::{CallOptions, CommandError, Output, Plan};
use super::{End, Ending, Tail, verdict};

/// How often the exit is checked while waiting for output.
const EXIT_TICK: Duration = Duration::from_millis(5);

/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;

/// The Windows side of [`Running`](super::Running): the stages in their Job Object, the
/// reader threads' channels.
#[derive(Debug)]
pub(crate) struct Running {
    stages: Vec<Stage>,
    job: Job,
    stdout: Option<Receiver<Vec<u8>>>,
    buffered: LineBuffer,
    ending: Ending,
    stderr_done: Option<Receiver<()>>,
    exited: bool,
    deadline: Option<Instant>,
    linger_until: Option<Instant>,
    success_codes: Vec<i32>,
    cancel: Option<Arc<AtomicBool>>,
    reaped: bool,
}

/// One program of the call (the call's only one, or a pipeline's stage).
#[derive(Debug)]
struct Stage {
    child: Child,
    program: PathBuf,
    tail: Arc<Mutex<Tail>>,
    status: Option<ExitStatus>,
}

impl Running {
    /// Starts the plans as one call in a Job Object of its own: each stage's stdout feeds the
    /// next one's stdin.
    /// The time limit runs from `begun`, when the call began (before any check of sudo's).
    pub(crate) fn start(
        plans: Vec<Plan>,
        options: &CallOptions,
        begun: Instant,
    ) -> Result<Self, CommandError> {
        let last_program = plans.last().map(|p| p.program.clone()).unwrap_or_default();
        let job = Job::new().map_err(|error| CommandError::Io {
            program: last_program.clone(),
            error,
        })?;
        let mut stdin = match &options.input {
            Input::Null => Stdio::null(),
            Input::Inherit => Stdio::inherit(),
            Input::Bytes(bytes) if bytes.is_empty() => Stdio::null(),
            Input::Bytes(_) => Stdio::piped(),
        };
        let stderr_file = super::stderr_file(options)?;
        let count = plans.len();
        let (done, stderr_done) = mpsc::channel();
        let mut running = Self {
            stages: Vec::with_capacity(count),
            job,
            stdout: None,
            buffered: LineBuffer::default(),
            ending: Ending::new(options),
            stderr_done: Some(stderr_done),
            exited: false,
            deadline: options.deadline(begun),
            linger_until: None,
            success_codes: options.success_codes.clone(),
            cancel: None,
            reaped: false,
        };
        for (index, plan) in plans.into_iter().enumerate() {
            let last = index + 1 == count;
            // A stage that cannot start takes the others down with it (dropping `running`).
            let (stage, out) = Self::spawn_stage(
                plan,
                std::mem::replace(&mut stdin, Stdio::null()),
                last,
                options,
                stderr_file.as_ref(),
                &running.job,
                &done,
            )?;
            running.stages.push(stage);
            match out {
                Some(read) if !last => stdin = Stdio::from(read),
                Some(read) => {
                    let (chunks, received) = mpsc::channel();
                    thread::spawn(move || drain(read, |bytes| chunks.send(bytes.to_vec()).is_ok()));
                    running.stdout = Some(received);
                }
                None => {}
            }
        }
        if let (Some(first), Input::Bytes(bytes)) = (running.stages.first_mut(), &options.input)
            && let Some(mut pipe) = first.child.stdin.take()
        {
            let bytes = Arc::clone(bytes);
            // A program that closes its input early only drops the rest, as Python's
            // `communicate` does; the exit status says what happened.
            thread::spawn(move || drop(pipe.write_all(&bytes)));
        }
        Ok(running)
    }

    /// Spawns one stage in the job; returns it and the read end of its stdout pipe, when piped.
    fn spawn_stage(
        mut plan: Plan,
        stdin: Stdio,
        last: bool,
        options: &CallOptions,
        stderr_file: Option<&File>,
        job: &Job,
        done: &mpsc::Sender<()>,
    ) -> Result<(Stage, Option<io::PipeReader>), CommandError> {
        let program = plan.program.clone();
        let io_error = |error: io::Error| CommandError::Io {
            program: program.clone(),
            error,
        };
        let (out_read, out_write) = if !last || options.capture {
            let (read, write) = io::pipe().map_err(io_error)?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let (stderr, err_read) = match &options.stderr {
            Stderr::Tail => {
                let (read, write) = io::pipe().map_err(io_error)?;
                (Stdio::from(write), Some(read))
            }
            Stderr::Merge => match &out_write {
                Some(write) => (Stdio::from(write.try_clone().map_err(io_error)?), None),
                None => (Stdio::inherit(), None),
            },
            Stderr::File(_) => {
                let file = stderr_file.expect("opened for Stderr::File");
                (Stdio::from(file.try_clone().map_err(io_error)?), None)
            }
            Stderr::Inherit => (Stdio::inherit(), None),
        };
        plan.command
            .stdin(stdin)
            .stdout(out_write.map_or_else(Stdio::inherit, Stdio::from))
            .stderr(stderr);
        Job::prepare(&mut plan.command);
        let mut child = plan.command.spawn().map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                // The program was there when the command was built; it has gone since.
                CommandError::NotFound {
                    program: program.to_string_lossy().into_owned(),
                    searched: vec![program.clone()],
                    denied: Vec::new(),
                    skipped: Vec::new(),
                }
            } else {
                io_error(error)
            }
        })?;
        // Our copies of the child's ends close with the command, so that end of file can come.
        drop(plan.command);
        job.adopt(&mut child).map_err(io_error)?;

        let tail = Arc::new(Mutex::new(Tail::default()));
        if let Some(pipe) = err_read {
            let (sink, done) = (Arc::clone(&tail), done.clone());
            thread::spawn(move || {
                drain(pipe, |bytes| {
                    lock(&sink).push(bytes);
                    true
                });
                let _ = done.send(());
            });
        }
        Ok((
            Stage {
                child,
                program,
                tail,
                status: None,
            },
            out_read,
        ))
    }

    /// Makes the call end (as [`Running::kill`]) once `cancel` is set: the async forms set it
    /// when their future is dropped.
    #[cfg(feature = "tokio")]
    pub(crate) fn cancel_on(&mut self, cancel: Arc<AtomicBool>) {
        self.cancel = Some(cancel);
    }

    /// The process id of the first stage.
    pub(crate) fn id(&self) -> u32 {
        self.stages.first().map_or(0, |stage| stage.child.id())
    }

    /// The next whole line already read, if any: [`Running::next_line`]'s fast path.
    #[inline]
    pub(crate) fn ready_line(&mut self) -> Option<String> {
        self.ending.ready_line(&mut self.buffered)
    }

    /// Reads the next line of standard output, `None` at its end.
    pub(crate) fn next_line(&mut self) -> Option<Result<String, CommandError>> {
        loop {
            if !self.ending.over_limit
                && let Some(line) = self.buffered.take_line(self.stdout.is_none())
            {
                return Some(Ok(line));
            }
            if self.stdout.is_none() {
                let program = self.stages.last().map(|stage| &stage.program);
                if let Some(error) = self.ending.report_once(program) {
                    return Some(Err(error));
                }
                return None;
            }
            if let Err(error) = self.turn() {
                return Some(Err(error));
            }
        }
    }

    /// Terminates the Job Object and waits until the program is gone.
    pub(crate) fn kill(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.reaped {
            return;
        }
        self.job.terminate();
        for stage in &mut self.stages {
            if stage.status.is_none()
                && let Ok(status) = stage.child.wait()
            {
                stage.status = Some(status);
            }
        }
        self.check_exits();
    }

    /// Notes whether every stage has exited; the linger starts then.
    fn check_exits(&mut self) {
        if !self.exited && self.stages.iter().all(|stage| stage.status.is_some()) {
            self.exited = true;
            self.linger_until = Some(Instant::now() + LINGER);
        }
    }

    /// Turns until the program has exited and its pipes are done, then judges.
    pub(crate) fn wait(mut self) -> Result<Output, CommandError> {
        while !self.exited || self.stdout.is_some() || self.stderr_done.is_some() {
            self.turn()?;
        }
        self.reaped = true;
        // Ended (or cancelled, and then already terminated): background processes it left
        // are not the call's to kill, as on Unix.
        self.job.release();
        let stdout = self.buffered.take_all();
        let stages = std::mem::take(&mut self.stages);
        let ends: Vec<End> = stages
            .into_iter()
            .map(|stage| End {
                stderr: std::mem::take(&mut *lock(&stage.tail)).into_bytes(),
                program: stage.program,
                status: stage.status.expect("exited"),
            })
            .collect();
        verdict(&self.ending, ends, stdout, &self.success_codes)
    }

    /// One turn: output read for a short while, then the exit, the deadline, a cancellation
    /// and the linger checked.
    fn turn(&mut self) -> Result<(), CommandError> {
        let now = Instant::now();
        let wake = [self.deadline, self.linger_until]
            .into_iter()
            .flatten()
            .fold(now + EXIT_TICK, Instant::min);
        let left = wake.saturating_duration_since(now);
        if let Some(chunks) = &self.stdout {
            match chunks.recv_timeout(left) {
                Ok(chunk) => self.buffered.tail_mut().extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout = None,
            }
        } else if let Some(done) = &self.stderr_done {
            match done.recv_timeout(left) {
                // One reader done; the channel disconnects when all are.
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stderr_done = None,
            }
        } else if !self.exited {
            thread::sleep(left);
        }
        for stage in &mut self.stages {
            if stage.status.is_none() {
                stage.status = stage.child.try_wait().map_err(|error| CommandError::Io {
                    program: stage.program.clone(),
                    error,
                })?;
            }
        }
        self.check_exits();
        if self.ending.cut(&mut self.buffered) {
            self.stdout = None;
            self.terminate();
        }
        let now = Instant::now();
        if !self.exited && self.deadline.is_some_and(|deadline| now >= deadline) {
            self.deadline = None;
            self.ending.timed_out = true;
            self.terminate();
        }
        if !self.exited
            && self
                .cancel
                .as_ref()
                .is_some_and(|cancel| cancel.load(Ordering::Acquire))
        {
            self.terminate();
        }
        if self.linger_until.is_some_and(|until| now >= until) {
            // What still holds the pipes is not the program: stop reading.
            self.stdout = None;
            self.stderr_done = None;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Not waited for: a cancelled call. Leave nothing behind.
        self.job.terminate();
        for stage in &mut self.stages {
            let _ = stage.child.wait();
        }
        self.reaped = true;
    }
}

/// Reads `pipe` to its end (or its breaking: Windows says a closed writer so) into `sink`,
/// until `sink` says stop.
fn drain(mut pipe: impl Read, mut sink: impl FnMut(&[u8]) -> bool) {
    let mut chunk = vec![0; CHUNK];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(count) => {
                if !sink(&chunk[..count]) {
                    return;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a stage failed: it exited with a code that is neither 0 nor counted as success.
/// Windows has no `SIGPIPE`: a stage whose reader stopped early fails the way the program
/// fails writing to a closed pipe.
pub(super) fn failed(end: &End, _last: bool, success_codes: &[i32]) -> bool {
    !end.status.success() && !success_codes.contains(&code(end))
}

/// A stage's exit code (Windows processes end with an exit code, never a signal).
pub(super) fn code(end: &End) -> i32 {
    end.status.code().unwrap_or(-1)
}

/// The error of a stage that failed: a crash when its code is an exception's, else its exit.
pub(super) fn stage_error(end: End, stdout: Vec<u8>) -> CommandError {
    let code = code(&end);
    match crash(&end.program, end.status, stdout.clone(), &end.stderr) {
        Some(crash) => crash,
        None => CommandError::Exit {
            program: end.program,
            code,
            stdout,
            stderr: end.stderr,
        },
    }
}
