//! Feeding a child's stdin while draining its stdout and stderr, all at once, on one thread.
//!
//! Writing all of stdin before reading, or reading stdout to its end before stderr, deadlocks
//! as soon as the child fills the pipe the parent is not reading. This loop polls the three
//! pipes together, like std's `Command::output`, and also writes the input.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::error::Tail;

/// What a child wrote: all of stdout (when piped) and the tail of stderr.
pub(crate) struct Output {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Tail,
}

/// Writes `input` to the child's stdin (when piped) while reading its stdout and stderr
/// (when piped), until both reach end of file.
///
/// A child that closes its stdin before taking all of the input is not an error: like
/// Python's `communicate`, the rest of the input is dropped.
pub(crate) fn communicate(child: &mut Child, input: &[u8]) -> io::Result<Output> {
    let mut stdin = child.stdin.take().map(into_file).transpose()?;
    let mut stdout = child.stdout.take().map(into_file).transpose()?;
    let mut stderr = child.stderr.take().map(into_file).transpose()?;
    let mut output = Output {
        stdout: Vec::new(),
        stderr: Tail::default(),
    };
    let mut written = 0;
    if input.is_empty() {
        stdin = None;
    }

    while stdin.is_some() || stdout.is_some() || stderr.is_some() {
        let (stdin_ready, stdout_ready, stderr_ready) = wait_ready(&stdin, &stdout, &stderr)?;
        if stdin_ready && let Some(pipe) = &mut stdin {
            match pipe.write(&input[written..]) {
                Ok(count) => {
                    written += count;
                    if written == input.len() {
                        stdin = None;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => stdin = None,
                Err(error) if is_transient(&error) => {}
                Err(error) => return Err(error),
            }
        }
        if stdout_ready && drain(stdout.as_mut(), &mut output.stdout)? {
            stdout = None;
        }
        if stderr_ready {
            let done = drain(stderr.as_mut(), output.stderr.buffer())?;
            output.stderr.trim();
            if done {
                stderr = None;
            }
        }
    }
    Ok(output)
}

fn into_file(pipe: impl Into<OwnedFd>) -> io::Result<File> {
    let fd: OwnedFd = pipe.into();
    let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(File::from(fd))
}

/// Blocks until at least one open pipe is ready; says which are.
fn wait_ready(
    stdin: &Option<File>,
    stdout: &Option<File>,
    stderr: &Option<File>,
) -> io::Result<(bool, bool, bool)> {
    let wanted = [
        (stdin, PollFlags::POLLOUT),
        (stdout, PollFlags::POLLIN),
        (stderr, PollFlags::POLLIN),
    ];
    let mut fds = Vec::with_capacity(3);
    let mut slots = [None; 3];
    for (slot, (pipe, events)) in wanted.iter().enumerate() {
        if let Some(pipe) = pipe {
            slots[slot] = Some(fds.len());
            fds.push(PollFd::new(pipe.as_fd(), *events));
        }
    }
    loop {
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
    let ready = |slot: usize| {
        slots[slot].is_some_and(|index| fds[index].revents().is_some_and(|r| !r.is_empty()))
    };
    Ok((ready(0), ready(1), ready(2)))
}

/// Reads what is available; `true` at end of file.
fn drain(pipe: Option<&mut File>, into: &mut Vec<u8>) -> io::Result<bool> {
    let Some(pipe) = pipe else { return Ok(true) };
    match pipe.read_to_end(into) {
        Ok(_) => Ok(true),
        Err(error) if is_transient(&error) => Ok(false),
        Err(error) => Err(error),
    }
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
