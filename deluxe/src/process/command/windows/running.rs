//! A call in progress on Windows: the program in a Job Object of its own, its pipes fed and
//! drained by threads, its exit, deadline and cancellation watched by the caller's thread.
//!
//! Windows anonymous pipes cannot be polled, so, as std's `Command::output` does there, the
//! input is written and each output stream read on threads of their own; standard output
//! arrives in chunks over a channel, which [`Running::lines`] reads as it comes. Once the
//! program has exited, the readers get [`LINGER`] more to reach the end of its output: a
//! background process it started that keeps the pipes open does not hold the call. A timeout,
//! [`Running::kill`], dropping the `Running` or an async call's future terminates the job: the
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

use super::super::error::Tail;
use super::super::options::{Input, LINGER, Stderr};
use super::super::{CallOptions, CommandError, Output, Plan};
use super::crash;
use super::job::Job;

/// How often the exit is checked while waiting for output.
const EXIT_TICK: Duration = Duration::from_millis(5);

/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;

/// A program started by [`Command::spawn`](super::super::Command::spawn), running.
///
/// Its standard output can be read line by line as it is produced ([`Running::lines`]); the
/// input given in the options is written meanwhile, and standard error's tail kept.
/// [`Running::wait`] collects the rest and judges the outcome as a call would.
/// [`Running::kill`] terminates the program and everything it started (its Job Object).
/// Dropping a `Running` that has not been waited for kills it the same way.
///
/// ```no_run
/// use deluxe::process::{CallOptions, Command};
///
/// let cmd = Command::new("cmd")?;
/// let mut running = cmd.spawn(["/C", "echo one& echo two"], &CallOptions::new())?;
/// let lines: Vec<String> = running.lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// running.wait()?;
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
#[derive(Debug)]
pub struct Running {
    child: Child,
    job: Job,
    program: PathBuf,
    stdout: Option<Receiver<Vec<u8>>>,
    buffered: Vec<u8>,
    tail: Arc<Mutex<Tail>>,
    stderr_done: Option<Receiver<()>>,
    status: Option<ExitStatus>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    linger_until: Option<Instant>,
    timed_out: bool,
    timeout_reported: bool,
    success_codes: Vec<i32>,
    cancel: Option<Arc<AtomicBool>>,
    reaped: bool,
}

impl Running {
    /// Starts `plan` as `options` say, in a Job Object of its own.
    pub(crate) fn start(mut plan: Plan, options: &CallOptions) -> Result<Self, CommandError> {
        let program = plan.program.clone();
        let io_error = |error: io::Error| CommandError::Io {
            program: program.clone(),
            error,
        };
        let stdin = match &options.input {
            Input::Null => Stdio::null(),
            Input::Inherit => Stdio::inherit(),
            Input::Bytes(bytes) if bytes.is_empty() => Stdio::null(),
            Input::Bytes(_) => Stdio::piped(),
        };
        let (out_read, out_write) = if options.capture {
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
            Stderr::File(path) => {
                let file = File::create(path).map_err(|error| CommandError::StderrFile {
                    path: path.clone(),
                    error,
                })?;
                (Stdio::from(file), None)
            }
            Stderr::Inherit => (Stdio::inherit(), None),
        };
        let job = Job::new().map_err(io_error)?;
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
                }
            } else {
                io_error(error)
            }
        })?;
        // Our copies of the child's ends close with the command, so that end of file can come.
        drop(plan.command);
        job.adopt(&mut child).map_err(io_error)?;

        if let (Some(mut pipe), Input::Bytes(bytes)) = (child.stdin.take(), &options.input) {
            let bytes = Arc::clone(bytes);
            // A program that closes its input early only drops the rest, as Python's
            // `communicate` does; the exit status says what happened.
            thread::spawn(move || drop(pipe.write_all(&bytes)));
        }
        let stdout = out_read.map(|pipe| {
            let (chunks, received) = mpsc::channel();
            thread::spawn(move || drain(pipe, |bytes| chunks.send(bytes.to_vec()).is_ok()));
            received
        });
        let tail = Arc::new(Mutex::new(Tail::default()));
        let stderr_done = err_read.map(|pipe| {
            let (done, finished) = mpsc::channel();
            let sink = Arc::clone(&tail);
            thread::spawn(move || {
                drain(pipe, |bytes| {
                    lock(&sink).push(bytes);
                    true
                });
                let _ = done.send(());
            });
            finished
        });
        Ok(Self {
            child,
            job,
            program,
            stdout,
            buffered: Vec::new(),
            tail,
            stderr_done,
            status: None,
            timeout: options.timeout,
            deadline: options.timeout.map(|timeout| Instant::now() + timeout),
            linger_until: None,
            timed_out: false,
            timeout_reported: false,
            success_codes: options.success_codes.clone(),
            cancel: None,
            reaped: false,
        })
    }

    /// Makes the call end (as [`Running::kill`]) once `cancel` is set: the async forms set it
    /// when their future is dropped.
    #[cfg(feature = "tokio")]
    pub(crate) fn cancel_on(&mut self, cancel: Arc<AtomicBool>) {
        self.cancel = Some(cancel);
    }

    /// The process id of the program.
    ///
    /// ```no_run
    /// use deluxe::process::{CallOptions, Command};
    /// let running = Command::new("cmd")?.spawn(["/C", "pause"], &CallOptions::new())?;
    /// assert!(running.id() > 0);
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The program's standard output, line by line as it is produced (without the `\n` or
    /// `\r\n`; bytes that are not UTF-8 are replaced). The iterator ends when the output does;
    /// after a time limit has passed it yields [`CommandError::Timeout`] once.
    ///
    /// ```no_run
    /// use deluxe::process::{CallOptions, Command};
    /// let mut running = Command::new("cmd")?.spawn(["/C", "echo 1& echo 2"], &CallOptions::new())?;
    /// let total: i32 = running.lines().map(|line| line.unwrap().trim().parse::<i32>().unwrap()).sum();
    /// assert_eq!(total, 3);
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn lines(&mut self) -> Lines<'_> {
        Lines {
            running: self,
            failed: false,
        }
    }

    /// Reads the next line of standard output, `None` at its end.
    pub(crate) fn next_line(&mut self) -> Option<Result<String, CommandError>> {
        loop {
            if let Some(end) = self.buffered.iter().position(|&byte| byte == b'\n') {
                let mut line: Vec<u8> = self.buffered.drain(..=end).take(end).collect();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.stdout.is_none() {
                if !self.buffered.is_empty() {
                    let rest = std::mem::take(&mut self.buffered);
                    return Some(Ok(String::from_utf8_lossy(&rest).into_owned()));
                }
                if self.timed_out && !self.timeout_reported {
                    self.timeout_reported = true;
                    return Some(Err(self.timeout_error(Vec::new(), String::new())));
                }
                return None;
            }
            if let Err(error) = self.turn() {
                return Some(Err(error));
            }
        }
    }

    /// Terminates the program and everything it started (its Job Object), and waits until
    /// the program is gone. [`Running::wait`] then reports how it ended (exit code 1).
    ///
    /// ```no_run
    /// use deluxe::process::{CallOptions, Command, CommandError};
    /// let mut running = Command::new("cmd")?.spawn(["/C", "pause"], &CallOptions::new().inherit_stdin())?;
    /// running.kill();
    /// assert!(matches!(running.wait(), Err(CommandError::Exit { code: 1, .. })));
    /// # Ok::<(), CommandError>(())
    /// ```
    pub fn kill(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.reaped {
            return;
        }
        self.job.terminate();
        if self.status.is_none()
            && let Ok(status) = self.child.wait()
        {
            self.exited(status);
        }
    }

    fn exited(&mut self, status: ExitStatus) {
        self.status = Some(status);
        if self.linger_until.is_none() {
            self.linger_until = Some(Instant::now() + LINGER);
        }
    }

    /// Waits for the program to end, reading the rest of its output, and judges the outcome
    /// as [`Command::output`](super::super::Command::output) does.
    ///
    /// # Errors
    ///
    /// As [`Command::output`](super::super::Command::output).
    ///
    /// ```no_run
    /// use deluxe::process::{CallOptions, Command};
    /// let running = Command::new("cmd")?.spawn(["/C", "echo hi"], &CallOptions::new())?;
    /// assert_eq!(running.wait()?.stdout, b"hi\r\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn wait(mut self) -> Result<Output, CommandError> {
        while self.status.is_none() || self.stdout.is_some() || self.stderr_done.is_some() {
            self.turn()?;
        }
        self.reaped = true;
        // Ended (or cancelled, and then already terminated): background processes it left
        // are not the call's to kill, as on Unix.
        self.job.release();
        let status = self.status.expect("exited");
        let stdout = std::mem::take(&mut self.buffered);
        let stderr = std::mem::take(&mut *lock(&self.tail)).into_string();
        if self.timed_out {
            return Err(self.timeout_error(stdout, stderr));
        }
        judge(
            self.program.clone(),
            status,
            stdout,
            stderr,
            &self.success_codes,
        )
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
                Ok(chunk) => self.buffered.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stdout = None,
            }
        } else if let Some(done) = &self.stderr_done {
            match done.recv_timeout(left) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => self.stderr_done = None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        } else if self.status.is_none() {
            thread::sleep(left);
        }
        if self.status.is_none() {
            let status = self.child.try_wait().map_err(|error| CommandError::Io {
                program: self.program.clone(),
                error,
            })?;
            if let Some(status) = status {
                self.exited(status);
            }
        }
        let now = Instant::now();
        if self.status.is_none() && self.deadline.is_some_and(|deadline| now >= deadline) {
            self.deadline = None;
            self.timed_out = true;
            self.terminate();
        }
        if self.status.is_none()
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

    fn timeout_error(&self, stdout: Vec<u8>, stderr: String) -> CommandError {
        CommandError::Timeout {
            program: self.program.clone(),
            timeout: self.timeout.unwrap_or_default(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // Not waited for: a cancelled call. Leave nothing behind.
        self.job.terminate();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

/// The lines of a [`Running`] program's standard output: see [`Running::lines`].
#[derive(Debug)]
pub struct Lines<'a> {
    running: &'a mut Running,
    failed: bool,
}

impl Iterator for Lines<'_> {
    type Item = Result<String, CommandError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self.running.next_line();
        self.failed = matches!(item, Some(Err(_)));
        item
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

/// The call's result from how the program ended.
fn judge(
    program: PathBuf,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    success_codes: &[i32],
) -> Result<Output, CommandError> {
    // Windows processes end with an exit code, never a signal.
    let code = status.code().unwrap_or(-1);
    if status.success() || success_codes.contains(&code) {
        return Ok(Output {
            code,
            stdout,
            stderr,
        });
    }
    if let Some(crash) = crash(&program, status, stdout.clone(), &stderr) {
        return Err(crash);
    }
    Err(CommandError::Exit {
        program,
        code,
        stdout,
        stderr,
    })
}
