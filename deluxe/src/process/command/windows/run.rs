//! One call on Windows: the program started with its pipes, fed and drained by threads, waited
//! for within its time limit, and judged.
//!
//! Windows anonymous pipes cannot be polled, so, as std's `Command::output` does there, the
//! input is written and each output stream read on threads of their own, while this thread
//! waits for the program's exit (or the deadline, or a cancellation). Once the program has
//! exited, the readers get [`LINGER`] more to reach the end of its output: a background
//! process it started that keeps the pipes open does not hold the call (its readers end with
//! it, in the background).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::super::error::Tail;
use super::super::options::{Input, LINGER, Stderr};
use super::super::{CallOptions, CommandError, Output, Plan};
use super::crash;

/// How often the exit, the deadline and a cancellation are checked while the program runs.
const EXIT_TICK: Duration = Duration::from_millis(5);

/// Bytes read at a time.
const CHUNK: usize = 16 * 1024;

/// Runs `plan` as `options` say, until it ends, its time limit passes, or `cancel` is set.
pub(crate) fn run(
    mut plan: Plan,
    options: &CallOptions,
    cancel: Option<&AtomicBool>,
) -> Result<Output, CommandError> {
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
    plan.command
        .stdin(stdin)
        .stdout(out_write.map_or_else(Stdio::inherit, Stdio::from))
        .stderr(stderr);
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

    if let (Some(mut pipe), Input::Bytes(bytes)) = (child.stdin.take(), &options.input) {
        let bytes = Arc::clone(bytes);
        // A program that closes its input early only drops the rest, as Python's
        // `communicate` does; the exit status says what happened.
        thread::spawn(move || drop(pipe.write_all(&bytes)));
    }
    let (done, finished) = mpsc::channel::<()>();
    let mut readers = 0;
    let stdout = Arc::new(Mutex::new(Vec::new()));
    if let Some(pipe) = out_read {
        readers += 1;
        let (sink, done) = (Arc::clone(&stdout), done.clone());
        thread::spawn(move || {
            drain(pipe, |bytes| lock(&sink).extend_from_slice(bytes));
            let _ = done.send(());
        });
    }
    let tail = Arc::new(Mutex::new(Tail::default()));
    if let Some(pipe) = err_read {
        readers += 1;
        let (sink, done) = (Arc::clone(&tail), done.clone());
        thread::spawn(move || {
            drain(pipe, |bytes| lock(&sink).push(bytes));
            let _ = done.send(());
        });
    }
    drop(done);

    let deadline = options.timeout.map(|timeout| Instant::now() + timeout);
    let (status, timed_out) = wait(&mut child, deadline, cancel).map_err(io_error)?;
    let linger_until = Instant::now() + LINGER;
    for _ in 0..readers {
        let left = linger_until.saturating_duration_since(Instant::now());
        if finished.recv_timeout(left).is_err() {
            // What still holds the pipes is not the program: stop waiting for it.
            break;
        }
    }
    let stdout = std::mem::take(&mut *lock(&stdout));
    let stderr = std::mem::take(&mut *lock(&tail)).into_string();
    if timed_out {
        return Err(CommandError::Timeout {
            program,
            timeout: options.timeout.unwrap_or_default(),
            stdout,
            stderr,
        });
    }
    judge(program, status, stdout, stderr, &options.success_codes)
}

/// Waits for `child` to exit, killing it when `deadline` passes or `cancel` is set; the
/// status, and whether the deadline passed.
fn wait(
    child: &mut Child,
    deadline: Option<Instant>,
    cancel: Option<&AtomicBool>,
) -> io::Result<(ExitStatus, bool)> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        let now = Instant::now();
        let expired = deadline.is_some_and(|deadline| now >= deadline);
        if expired || cancel.is_some_and(|cancel| cancel.load(Ordering::Acquire)) {
            // TerminateProcess; an error means it has exited meanwhile.
            let _ = child.kill();
            return Ok((child.wait()?, expired));
        }
        let tick = deadline.map_or(EXIT_TICK, |deadline| {
            EXIT_TICK.min(deadline.saturating_duration_since(now))
        });
        thread::sleep(tick);
    }
}

/// Reads `pipe` to its end (or its breaking: Windows says a closed writer so) into `sink`.
fn drain(mut pipe: impl Read, mut sink: impl FnMut(&[u8])) {
    let mut chunk = vec![0; CHUNK];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(count) => sink(&chunk[..count]),
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
