//! [`Command::call_async`]: the reference's `async_call`, on tokio.

use std::ffi::OsStr;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::Tail;
use super::{CallOptions, Command, CommandError};

impl Command {
    /// Runs the command asynchronously on tokio and returns its standard output (empty when
    /// not captured): the reference's `async_call`, with the same options as
    /// [`Command::call_with`].
    ///
    /// Input is written while both output streams are read. The child is killed if the
    /// returned future is dropped before it completes, and it is always waited for: no
    /// process is left behind. Needs a tokio runtime with I/O enabled (`enable_all`).
    ///
    /// # Errors
    ///
    /// As [`Command::call_with`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sort = Command::new("sort")?;
    /// let options = CallOptions::new().input("b\na\n");
    /// assert_eq!(sort.call_async(["-r"], &options).await?, b"b\na\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn call_async<I, S>(
        &self,
        args: I,
        options: &CallOptions,
    ) -> Result<Vec<u8>, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = tokio::process::Command::from(self.prepare(args, options)?);
        command.kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| self.spawn_error(error))?;
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let input = options.input_bytes();

        let write = async move {
            let Some(mut stdin) = stdin else {
                return Ok(());
            };
            match stdin.write_all(input).await {
                Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error),
                _ => Ok(()),
            }
        };
        let read_stdout = async move {
            let mut bytes = Vec::new();
            if let Some(mut stdout) = stdout {
                stdout.read_to_end(&mut bytes).await?;
            }
            Ok(bytes)
        };
        let read_stderr = async move {
            let mut tail = Tail::default();
            if let Some(mut stderr) = stderr {
                let mut chunk = vec![0; 16 * 1024];
                loop {
                    let count = stderr.read(&mut chunk).await?;
                    if count == 0 {
                        break;
                    }
                    tail.buffer().extend_from_slice(&chunk[..count]);
                    tail.trim();
                }
            }
            Ok(tail)
        };

        match tokio::try_join!(write, read_stdout, read_stderr) {
            Ok(((), stdout, stderr)) => {
                let status = child.wait().await.map_err(|error| self.io_error(error))?;
                self.outcome(status, stdout, stderr.into_string())
            }
            Err(error) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Err(self.io_error(error))
            }
        }
    }
}
