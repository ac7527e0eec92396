//! Feeding a child's stdin while draining its stdout and stderr, on Windows.
//!
//! Windows anonymous pipes cannot be polled, so, as std's `Command::output` does there, the
//! input is written and stderr read on their own threads while this thread reads stdout.
//! All three threads end when the child closes its ends of the pipes.

use std::io::{self, Read, Write};
use std::process::Child;
use std::thread;

use crate::process::command::error::Tail;

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
    let stdin = child.stdin.take().filter(|_| !input.is_empty());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    thread::scope(|scope| {
        let writer = stdin.map(|mut pipe| {
            scope.spawn(move || match pipe.write_all(input) {
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other,
            })
        });
        let reader = stderr.map(|mut pipe| {
            scope.spawn(move || {
                let mut tail = Tail::default();
                let mut chunk = vec![0; 16 * 1024];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => return Ok(tail),
                        Ok(count) => {
                            tail.buffer().extend_from_slice(&chunk[..count]);
                            tail.trim();
                        }
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                        // The child closed its end: Windows says so with a broken pipe.
                        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                            return Ok(tail);
                        }
                        Err(error) => return Err(error),
                    }
                }
            })
        });
        let mut output = Vec::new();
        let read = match stdout {
            Some(mut pipe) => match pipe.read_to_end(&mut output) {
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map(drop),
            },
            None => Ok(()),
        };
        let written = writer.map_or(Ok(()), join);
        let stderr = reader.map_or_else(|| Ok(Tail::default()), join);
        read?;
        written?;
        Ok(Output {
            stdout: output,
            stderr: stderr?,
        })
    })
}

/// The thread's result; its panic, if it panicked, goes on here.
fn join<T>(handle: thread::ScopedJoinHandle<'_, io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
