//! A call in progress: its processes (one, or the stages of a pipeline), the pipes between
//! them and the caller, and the loop that feeds and drains those pipes.
//!
//! The loop polls, on one thread, the program's stdin (to write the input), its stdout and
//! every stage's stderr (to read them), each process's exit (a pidfd on Linux) and the
//! deadline. Writing all of stdin before reading, or
//! reading stdout to its end before stderr, would deadlock as soon as a program fills the pipe
//! nobody reads; waiting for end-of-file alone would wait for any background process that
//! holds the pipes open: the loop stops reading [`LINGER`] after the programs have exited, or
//! after it terminated them (a process that escaped the kill may hold the pipes forever).
//!
//! Standard output is read at most [`TURN`] bytes per turn, so that the deadline is checked
//! however fast a program writes, and kept up to the call's `max_output`.
//!
//! The async forms drive the same loop one turn at a time ([`Running::step`]): each turn polls
//! without waiting, and the caller waits on the descriptors ([`Running::watched`]) and the
//! time ([`Running::wake_at`]) in its own event loop; a termination a turn decides on is left
//! to the caller ([`Running::take_deferred_kill`]), which runs it where blocking is allowed.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags};

use super::super::lines::LineBuffer;
use super::super::options::{Input, LINGER, Stderr};
use super::super::unix::{self, EXIT_TICK, ExitWatch, Placement, StatusGuard, Switch};
use super::super::{CallOptions, CommandError, Output, Plan, SudoRun, sudo};
use super::{End, Ending, Tail, verdict};

/// Bytes of standard error read at a time (standard output is read straight into its buffer).
const CHUNK: usize = 16 * 1024;

/// The least room made for standard output in its buffer (then doubled as it fills).
const FIRST_READ: usize = 64 * 1024;

/// The most bytes of standard output read in one turn of the loop.
const TURN: u64 = 1 << 20;

/// The most bytes read from standard output when the linger ends: what the pipe holds then
/// (64 KiB by default, 1 MiB at most), and some of what a background writer adds meanwhile.
const LAST_READ: usize = 2 << 20;

struct Stage {
    child: Child,
    watch: ExitWatch,
    exited: bool,
    program: PathBuf,
    sudo: Option<SudoRun>,
    stderr: Option<File>,
    tail: Tail,
}

/// The Unix side of [`Running`](super::Running): the stages, their pipes and the loop.
pub(crate) struct Running {
    stages: Vec<Stage>,
    placement: Placement,
    grace: Duration,
    stdin: Option<File>,
    input: Arc<[u8]>,
    written: usize,
    stdout: Option<File>,
    buffered: LineBuffer,
    ending: Ending,
    deadline: Option<Instant>,
    linger_until: Option<Instant>,
    success_codes: Vec<i32>,
    /// Processes a cancellation could not end (another user's, see [`unix::terminate`]).
    unended: Vec<u32>,
    reaped: bool,
    /// Turning one step at a time ([`Running::step`]): polls do not wait, and a termination
    /// is deferred to the caller.
    stepping: bool,
    kill_deferred: bool,
    _statuses: StatusGuard,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field(
                "pids",
                &self.stages.iter().map(|s| s.child.id()).collect::<Vec<_>>(),
            )
            .field(
                "programs",
                &self.stages.iter().map(|s| &s.program).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What one turn of the loop produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// A complete line is in the buffer.
    Line,
    /// Everything has exited and every pipe is closed (or lingered out).
    Done,
    /// Nothing more until a watched descriptor is ready or the wake time comes
    /// ([`Running::step`] only).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    Idle,
}

impl Running {
    /// Starts the plans as one call: each stage's stdout feeds the next one's stdin.
    /// The time limit runs from `begun`, when the call began (before any check of sudo's).
    pub(crate) fn start(
        plans: Vec<Plan>,
        options: &CallOptions,
        begun: Instant,
    ) -> Result<Self, CommandError> {
        let statuses = StatusGuard::new();
        let placement = Placement::choose();
        let last_program = plans.last().map(|p| p.program.clone()).unwrap_or_default();
        let io_error = |error: io::Error| CommandError::Io {
            program: last_program.clone(),
            error,
        };
        let stderr_file = super::stderr_file(options)?;

        let (mut stdin, mut next_stdin) = match &options.input {
            Input::Null => (None, Stdio::null()),
            Input::Inherit => (None, Stdio::inherit()),
            Input::Bytes(bytes) if bytes.is_empty() => (None, Stdio::null()),
            Input::Bytes(_) => {
                let (read, write) = pipe().map_err(io_error)?;
                (Some(File::from(write)), Stdio::from(read))
            }
        };
        let input = match &options.input {
            Input::Bytes(bytes) => bytes.clone(),
            _ => Arc::from(&[][..]),
        };
        let count = plans.len();
        let mut stages: Vec<Stage> = Vec::with_capacity(count);
        let mut stdout = None;
        let mut started = Ok(());
        for (index, plan) in plans.into_iter().enumerate() {
            let last = index + 1 == count;
            let result = Self::spawn_stage(
                plan,
                std::mem::replace(&mut next_stdin, Stdio::null()),
                last,
                options,
                stderr_file.as_ref(),
                placement,
                stages.first().map(|first| first.child.id()),
            );
            match result {
                Ok((stage, out)) => {
                    stages.push(stage);
                    match out {
                        Some(read) if !last => next_stdin = Stdio::from(read),
                        Some(read) => stdout = Some(nonblocking(read).map_err(io_error)?),
                        None => {}
                    }
                }
                Err(error) => {
                    started = Err(error);
                    break;
                }
            }
        }
        if let Some(pipe) = stdin.take() {
            stdin = Some(nonblocking(pipe.into()).map_err(io_error)?);
        }
        let running = Self {
            stages,
            placement,
            grace: options.kill_grace,
            stdin,
            input,
            written: 0,
            stdout,
            buffered: LineBuffer::default(),
            ending: Ending::new(options),
            deadline: options.deadline(begun),
            linger_until: None,
            success_codes: options.success_codes.clone(),
            unended: Vec::new(),
            reaped: false,
            stepping: false,
            kill_deferred: false,
            _statuses: statuses,
        };
        // A stage that could not start takes the others down with it (dropping `running`).
        started.map(|()| running)
    }

    /// Spawns one stage; returns it and the read end of its stdout pipe, when piped.
    fn spawn_stage(
        mut plan: Plan,
        stdin: Stdio,
        last: bool,
        options: &CallOptions,
        stderr_file: Option<&File>,
        placement: Placement,
        leader: Option<u32>,
    ) -> Result<(Stage, Option<OwnedFd>), CommandError> {
        let io_error = |error: io::Error| CommandError::Io {
            program: plan.program.clone(),
            error,
        };
        let piped = !last || options.capture;
        let (out_read, out_write) = if piped {
            let (read, write) = pipe().map_err(io_error)?;
            (Some(read), Some(write))
        } else {
            (None, None)
        };
        let (stderr, err_read) = match &options.stderr {
            Stderr::Tail => {
                let (read, write) = pipe().map_err(io_error)?;
                (Stdio::from(write), Some(read))
            }
            Stderr::Merge => match &out_write {
                Some(write) => (Stdio::from(write.try_clone().map_err(io_error)?), None),
                None => (
                    Stdio::from(
                        io::stdout()
                            .as_fd()
                            .try_clone_to_owned()
                            .map_err(io_error)?,
                    ),
                    None,
                ),
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
        placement.apply(&mut plan.command, leader);
        let child = plan
            .command
            .spawn()
            .map_err(|error| spawn_error(&plan, error))?;
        // Our copies of the child's ends close with the command.
        drop(plan.command);
        let watch = ExitWatch::new(&child);
        let stderr = err_read
            .map(nonblocking)
            .transpose()
            .map_err(|error| CommandError::Io {
                program: plan.program.clone(),
                error,
            })?;
        Ok((
            Stage {
                child,
                watch,
                exited: false,
                program: plan.program,
                sudo: plan.sudo,
                stderr,
                tail: Tail::default(),
            },
            out_read,
        ))
    }

    /// One turn of the loop without waiting: what is ready is read and written, exits and
    /// the deadline are checked, then it returns ([`Progress::Idle`] when nothing completed).
    /// A termination the turn decides on (a time limit passed) is not run here: see
    /// [`Running::take_deferred_kill`].
    #[cfg(feature = "tokio")]
    pub(crate) fn step(&mut self, want_line: bool) -> Result<Progress, CommandError> {
        self.stepping = true;
        let progress = self.pump(want_line);
        self.stepping = false;
        progress
    }

    /// Whether a [`Running::step`] decided to terminate the call: the caller then runs
    /// [`Running::kill`] (which blocks up to the grace) where blocking is allowed.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_deferred_kill(&mut self) -> bool {
        std::mem::take(&mut self.kill_deferred)
    }

    /// The descriptors the loop waits on, each with what it waits for (`POLLIN`/`POLLOUT`).
    #[cfg(feature = "tokio")]
    pub(crate) fn watched(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        self.wanted()
            .into_iter()
            .map(|(fd, events, _)| (fd, events))
            .collect()
    }

    /// When the loop must turn even if no descriptor is ready: the deadline, the end of the
    /// linger, or the next exit check where no pidfd can be polled.
    pub(crate) fn wake_at(&self, now: Instant) -> Option<Instant> {
        let mut wake = [self.deadline, self.linger_until]
            .into_iter()
            .flatten()
            .min();
        if self
            .stages
            .iter()
            .any(|stage| !stage.exited && stage.watch.fd().is_none())
        {
            wake = Some(wake.map_or(now + EXIT_TICK, |at| at.min(now + EXIT_TICK)));
        }
        wake
    }

    /// The process id of the first stage (with a process group of its own, the group's id).
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
            if let Some(answer) = self.buffered_line() {
                return answer;
            }
            if let Err(error) = self.pump(true) {
                return Some(Err(error));
            }
        }
    }

    /// The answer [`Running::next_line`] can give without reading more: `None` when the
    /// loop must turn first.
    #[allow(clippy::option_option)]
    pub(crate) fn buffered_line(&mut self) -> Option<Option<Result<String, CommandError>>> {
        if !self.ending.over_limit
            && let Some(line) = self.buffered.take_line(self.stdout.is_none())
        {
            return Some(Some(Ok(line)));
        }
        if self.stdout.is_none() {
            let program = self.stages.last().map(|stage| &stage.program);
            return Some(self.ending.report_once(program).map(Err));
        }
        None
    }

    /// `SIGTERM` to the call's processes, then `SIGKILL` after the grace; waits until they
    /// are gone.
    pub(crate) fn kill(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let watches: Vec<&ExitWatch> = self.stages.iter().map(|stage| &stage.watch).collect();
        if watches.is_empty() || self.reaped {
            return;
        }
        if self.stepping {
            self.kill_deferred = true;
            return;
        }
        let switches: Vec<Switch<'_>> = self
            .stages
            .iter()
            .filter_map(|stage| stage.sudo.as_ref())
            .map(|run| Switch {
                sudo: &run.sudo,
                user: &run.user,
            })
            .collect();
        let unended = unix::terminate(&watches, self.placement, self.grace, &switches);
        self.unended.extend(unended);
        for stage in &mut self.stages {
            stage.exited = stage.watch.exited() || stage.exited;
        }
        self.stdin = None;
        // What the programs wrote is read for a short while more; a process that escaped
        // the kill must not hold the call by holding the pipes.
        self.linger_until.get_or_insert(Instant::now() + LINGER);
    }

    /// Runs the loop to its end, then reaps and judges.
    pub(crate) fn wait(mut self) -> Result<Output, CommandError> {
        while let Progress::Line = self.pump(false)? {}
        self.finish()
    }

    /// One or more turns of the loop, until a line is complete (when `want_line`) or all is
    /// done.
    fn pump(&mut self, want_line: bool) -> Result<Progress, CommandError> {
        let mut turned = false;
        loop {
            if want_line && self.buffered.has_line() {
                return Ok(Progress::Line);
            }
            let all_exited = self.stages.iter().all(|stage| stage.exited);
            let pipes_open =
                self.stdout.is_some() || self.stages.iter().any(|stage| stage.stderr.is_some());
            if all_exited && !pipes_open {
                return Ok(Progress::Done);
            }
            if want_line && self.stdout.is_none() {
                return Ok(Progress::Done);
            }
            if self.stepping && turned {
                return Ok(Progress::Idle);
            }
            turned = true;

            let now = Instant::now();
            let wait = match self.wake_at(now) {
                _ if self.stepping => Some(Duration::ZERO),
                wake => wake.map(|at| at.saturating_duration_since(now)),
            };
            let ready = self.poll(wait)?;

            if ready.stdin {
                self.write_input();
            }
            if ready.stdout {
                let _ = self.read_stdout()?;
            }
            for (index, stage) in self.stages.iter_mut().enumerate() {
                if ready.stderr.contains(&index)
                    && let Some(pipe) = &mut stage.stderr
                {
                    let tail = &mut stage.tail;
                    let mut chunk = [0; CHUNK];
                    let done =
                        drain(pipe, &mut chunk, |bytes| tail.push(bytes)).map_err(|error| {
                            CommandError::Io {
                                program: stage.program.clone(),
                                error,
                            }
                        })?;
                    if done {
                        stage.stderr = None;
                    }
                }
            }
            for (index, stage) in self.stages.iter_mut().enumerate() {
                // With a pidfd, only when it said so; without, on every turn (a short tick).
                let maybe = stage.watch.fd().is_none() || ready.exits.contains(&index);
                if !stage.exited && maybe && stage.watch.exited() {
                    stage.exited = true;
                }
            }
            let now = Instant::now();
            let all_exited = self.stages.iter().all(|stage| stage.exited);
            if all_exited {
                // Nobody is left to read the input.
                self.stdin = None;
                if self.linger_until.is_none() {
                    self.linger_until = Some(now + LINGER);
                }
            }
            if self.linger_until.is_some_and(|until| now >= until) {
                // What is left holding the pipes is not the program: stop reading, once
                // what the pipe holds now is read (a slow reader of `lines()` may not have
                // read it within the linger).
                let mut last = LAST_READ;
                while last > 0 {
                    match self.read_stdout()? {
                        0 => break,
                        count => last = last.saturating_sub(count),
                    }
                }
                self.stdout = None;
                for stage in &mut self.stages {
                    stage.stderr = None;
                }
            }
            if !all_exited && self.deadline.is_some_and(|deadline| now >= deadline) {
                self.deadline = None;
                self.ending.timed_out = true;
                self.terminate();
            }
        }
    }

    /// Reads what standard output has, up to [`TURN`] bytes; past `max_output`, keeps that
    /// much and terminates the call.
    /// Says how many bytes it read.
    fn read_stdout(&mut self) -> Result<usize, CommandError> {
        let Some(pipe) = &mut self.stdout else {
            return Ok(0);
        };
        let before = self.buffered.len();
        // One byte past the limit tells that the program wrote more.
        let room = self
            .ending
            .max_output
            .saturating_sub(self.buffered.len())
            .saturating_add(1);
        let buffer = self.buffered.tail_mut();
        if buffer.capacity() == buffer.len() {
            // Grown here, by doubling but never past the limit (`read_to_end` would double
            // past it).
            buffer.reserve_exact(buffer.len().max(FIRST_READ).min(room));
        }
        let spare = buffer.capacity() - buffer.len();
        let budget = u64::try_from(spare.min(room)).unwrap_or(u64::MAX).min(TURN);
        // Straight into the buffer; what was read before `WouldBlock` stays in it.
        match pipe.take(budget).read_to_end(buffer) {
            Ok(count) if (count as u64) < budget => self.stdout = None,
            Ok(_) => {}
            Err(error) if is_transient(&error) => {}
            Err(error) => return Err(io_failure(&self.stages, error)),
        }
        if self.ending.cut(&mut self.buffered) {
            self.stdout = None;
            self.terminate();
        }
        Ok(self.buffered.len().saturating_sub(before))
    }

    fn write_input(&mut self) {
        let Some(pipe) = &mut self.stdin else { return };
        match unix::write_without_sigpipe(pipe, &self.input[self.written..]) {
            Ok(count) => {
                self.written += count;
                if self.written == self.input.len() {
                    self.stdin = None;
                }
            }
            Err(error) if is_transient(&error) => {}
            // The program closed its input (or it broke): like Python's `communicate`, the
            // rest of the input is dropped; the program's exit status tells what happened.
            Err(_) => self.stdin = None,
        }
    }

    /// The descriptors to poll, what for, and what each one is.
    fn wanted(&self) -> Vec<(BorrowedFd<'_>, PollFlags, Role)> {
        let mut wanted: Vec<(BorrowedFd<'_>, PollFlags, Role)> =
            Vec::with_capacity(4 + 2 * self.stages.len());
        let mut add = |fd, events, role| wanted.push((fd, events, role));
        if let Some(pipe) = &self.stdin {
            add(pipe.as_fd(), PollFlags::POLLOUT, Role::Stdin);
        }
        if let Some(pipe) = &self.stdout {
            add(pipe.as_fd(), PollFlags::POLLIN, Role::Stdout);
        }
        for (index, stage) in self.stages.iter().enumerate() {
            if let Some(pipe) = &stage.stderr {
                add(pipe.as_fd(), PollFlags::POLLIN, Role::Stderr(index));
            }
            if !stage.exited
                && let Some(fd) = stage.watch.fd()
            {
                add(fd, PollFlags::POLLIN, Role::Exit(index));
            }
        }
        wanted
    }

    fn poll(&self, timeout: Option<Duration>) -> Result<Ready, CommandError> {
        let wanted = self.wanted();
        let roles: Vec<Role> = wanted.iter().map(|(_, _, role)| *role).collect();
        let mut fds: Vec<PollFd<'_>> = wanted
            .into_iter()
            .map(|(fd, events, _)| PollFd::new(fd, events))
            .collect();
        let timeout = timeout.map_or(nix::poll::PollTimeout::NONE, unix::poll_timeout);
        loop {
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(io_failure(&self.stages, errno.into())),
            }
        }
        let mut ready = Ready::default();
        for (fd, role) in fds.iter().zip(roles) {
            if fd.revents().is_none_or(|events| events.is_empty()) {
                continue;
            }
            match role {
                Role::Stdin => ready.stdin = true,
                Role::Stdout => ready.stdout = true,
                Role::Stderr(index) => ready.stderr.push(index),
                Role::Exit(index) => ready.exits.push(index),
            }
        }
        Ok(ready)
    }

    /// Reaps every stage and turns the statuses into the call's result; when a cancellation
    /// could not end some processes, the error says which.
    fn finish(mut self) -> Result<Output, CommandError> {
        let unended = std::mem::take(&mut self.unended);
        let user = self
            .stages
            .iter()
            .find_map(|stage| stage.sudo.as_ref())
            .map(|run| run.user.clone());
        match (self.outcome(), user) {
            (Err(error), Some(user)) if !unended.is_empty() => Err(CommandError::NotEnded {
                user,
                pids: unended,
                error: Box::new(error),
            }),
            (result, _) => result,
        }
    }

    /// Reaps every stage and turns the statuses into the call's result.
    fn outcome(mut self) -> Result<Output, CommandError> {
        let stages = std::mem::take(&mut self.stages);
        self.reaped = true;
        let mut ends = Vec::with_capacity(stages.len());
        let mut failure = None;
        for mut stage in stages {
            // Read before reaping: what sudo did is known only while it is a zombie.
            let trace = match &stage.sudo {
                Some(run) if stage.exited => sudo::trace(stage.child.id(), &run.sudo),
                _ => sudo::Trace::Unknown,
            };
            match stage.child.wait() {
                Ok(status) => ends.push(End {
                    program: stage.program,
                    sudo: stage.sudo,
                    trace,
                    status,
                    stderr: stage.tail.into_bytes(),
                }),
                Err(error) => {
                    failure.get_or_insert(CommandError::Io {
                        program: stage.program,
                        error,
                    });
                }
            }
        }
        if let Some(failure) = failure {
            return Err(failure);
        }
        let stdout = self.buffered.take_all();
        verdict(&self.ending, ends, stdout, &self.success_codes)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped || self.stages.is_empty() {
            return;
        }
        // Not waited for: a cancelled call. Leave nothing behind, and no zombie.
        self.terminate();
        for stage in &mut self.stages {
            let _ = stage.child.wait();
        }
        self.reaped = true;
    }
}

/// Whether a stage failed: it exited with a code not counted as success, or a signal killed
/// it; a stage before the last killed by `SIGPIPE` did not fail (its reader had read enough,
/// as in `yes | head -1`).
pub(super) fn failed(end: &End, last: bool, success_codes: &[i32]) -> bool {
    use std::os::unix::process::ExitStatusExt;
    match end.status.code() {
        Some(code) => !success_codes.contains(&code),
        None => last || end.status.signal() != Some(libc::SIGPIPE),
    }
}

/// The exit code a call reports: its last stage's (0 when a signal ended it).
pub(super) fn code(end: &End) -> i32 {
    end.status.code().unwrap_or_default()
}

/// The error of a stage that failed.
pub(super) fn stage_error(end: End, stdout: Vec<u8>) -> CommandError {
    use std::os::unix::process::ExitStatusExt;
    let End {
        program,
        sudo,
        trace,
        status,
        stderr,
    } = end;
    if let Some(code) = status.code() {
        if let Some(run) = sudo
            && code == 1
            && let Some(refusal) =
                sudo::refusal(&String::from_utf8_lossy(&stderr), &run.names, trace)
        {
            return CommandError::Sudo {
                user: run.user,
                program,
                refusal,
                message: String::from_utf8_lossy(&stderr).into_owned(),
            };
        }
        return CommandError::Exit {
            program,
            code,
            stdout,
            stderr,
        };
    }
    let signal = status.signal().unwrap_or_default();
    CommandError::Signal {
        program,
        signal,
        signal_name: super::super::signal_name(signal),
        core_dumped: status.core_dumped(),
        stdout,
        stderr,
    }
}

#[derive(Default)]
struct Ready {
    stdin: bool,
    stdout: bool,
    stderr: Vec<usize>,
    exits: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Role {
    Stdin,
    Stdout,
    Stderr(usize),
    Exit(usize),
}

/// A pipe whose ends are closed on exec (std puts the child's end in place of its stdio).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = io::pipe()?;
    Ok((read.into(), write.into()))
}

fn nonblocking(fd: OwnedFd) -> io::Result<File> {
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(File::from(fd))
}

/// Reads what is available, a chunk at a time, into `sink`; `true` at end of file.
fn drain(pipe: &mut File, chunk: &mut [u8], mut sink: impl FnMut(&[u8])) -> io::Result<bool> {
    loop {
        match pipe.read(chunk) {
            Ok(0) => return Ok(true),
            Ok(count) => sink(&chunk[..count]),
            Err(error) if is_transient(&error) => return Ok(false),
            Err(error) => return Err(error),
        }
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn io_failure(stages: &[Stage], error: io::Error) -> CommandError {
    CommandError::Io {
        program: stages
            .last()
            .map(|stage| stage.program.clone())
            .unwrap_or_default(),
        error,
    }
}

fn spawn_error(plan: &Plan, error: io::Error) -> CommandError {
    if error.kind() == io::ErrorKind::NotFound {
        // The program was there when the command was built; it has gone since.
        return CommandError::NotFound {
            program: plan.program.to_string_lossy().into_owned(),
            searched: vec![plan.program.clone()],
            denied: Vec::new(),
            skipped: Vec::new(),
        };
    }
    CommandError::Io {
        program: plan.program.clone(),
        error,
    }
}
