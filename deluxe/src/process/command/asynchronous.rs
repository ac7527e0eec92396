//! The calls on tokio: [`Command::call_async`], [`Command::output_async`] and
//! [`Command::spawn_async`], with the same options, errors and guarantees as the synchronous
//! forms.
//!
//! A call's loop (see `running.rs`) runs on tokio's blocking pool, one thread per call in
//! flight, so that the async forms behave exactly as the synchronous ones. The future (or the
//! [`AsyncRunning`] handle) holds one end of a pipe whose other end that loop polls: dropping
//! it closes the pipe, and the loop terminates the program and everything it started, then
//! reaps it. Starting a program through `sudo` by its bare name first asks `sudo -l` which
//! file it would run (see [`Command::user`]): that is done on the blocking pool too, and a
//! future dropped meanwhile starts nothing.

use std::ffi::{OsStr, OsString};
use std::io;
#[cfg(unix)]
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use super::{CallOptions, Command, CommandError, Output, Pipeline, Running};

impl Command {
    /// Runs the command on tokio and returns its standard output (empty when not captured):
    /// [`Command::call_with`], asynchronously.
    ///
    /// Dropping the future before it completes terminates the program and everything it
    /// started (`SIGTERM`, then `SIGKILL` after the grace; through `sudo` too), and reaps it.
    /// Needs a tokio runtime.
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
        self.output_async(args, options)
            .await
            .map(|output| output.stdout)
    }

    /// [`Command::output`], asynchronously (see [`Command::call_async`]).
    ///
    /// # Errors
    ///
    /// As [`Command::output`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let grep = Command::new("grep")?;
    /// let options = CallOptions::new().input("a\n").success_codes([1]);
    /// assert_eq!(grep.output_async(["b"], &options).await?.code, 1);
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn output_async<I, S>(
        &self,
        args: I,
        options: &CallOptions,
    ) -> Result<Output, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let pipeline = Pipeline::new(
            self.clone(),
            args.into_iter()
                .map(|arg| arg.as_ref().to_owned())
                .collect::<Vec<OsString>>(),
        );
        wait(start(&pipeline, options).await?).await
    }

    /// [`Command::spawn`] on tokio: the handle is a [`Stream`](futures_core::Stream) of
    /// standard output's lines, and can be waited for or killed.
    ///
    /// It starts the program before returning: through `sudo` with a bare name, that includes
    /// asking `sudo -l` which file sudo would run (one short run of sudo, on the calling
    /// thread); [`Command::call_async`] asks it on the blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Command::spawn`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut running = Command::new("seq")?.spawn_async(["2"], &CallOptions::new())?;
    /// assert_eq!(running.next_line().await.unwrap()?, "1");
    /// assert_eq!(running.next_line().await.unwrap()?, "2");
    /// assert!(running.next_line().await.is_none());
    /// running.wait().await?;
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_async<I, S>(
        &self,
        args: I,
        options: &CallOptions,
    ) -> Result<AsyncRunning, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        AsyncRunning::new(self.spawn(args, options)?)
    }
}

impl Pipeline {
    /// [`Pipeline::call`], asynchronously (see [`Command::call_async`]).
    ///
    /// # Errors
    ///
    /// As [`Pipeline::call`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (seq, wc) = (Command::new("seq")?, Command::new("wc")?);
    /// let count = seq.with_args(["10"]).pipe(wc.with_args(["-l"])).call_async(&CallOptions::new()).await?;
    /// assert_eq!(String::from_utf8_lossy(&count).trim(), "10");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn call_async(&self, options: &CallOptions) -> Result<Vec<u8>, CommandError> {
        debug_assert!(self.stage_count() > 0);
        wait(start(self, options).await?)
            .await
            .map(|output| output.stdout)
    }

    /// [`Pipeline::spawn`] on tokio (see [`Command::spawn_async`]).
    ///
    /// # Errors
    ///
    /// As [`Pipeline::spawn`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (seq, tail) = (Command::new("seq")?, Command::new("tail")?);
    /// let mut last = seq.with_args(["3"]).pipe(tail.with_args(["-n1"])).spawn_async(&CallOptions::new())?;
    /// assert_eq!(last.next_line().await.unwrap()?, "3");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_async(&self, options: &CallOptions) -> Result<AsyncRunning, CommandError> {
        AsyncRunning::new(self.spawn(options)?)
    }
}

/// What cancels a call when dropped: on Unix the write end of a pipe whose read end the
/// call's loop polls; on Windows a flag the call's thread checks.
#[cfg(unix)]
type Canceller = OwnedFd;
#[cfg(windows)]
type Canceller = CancelOnDrop;

/// Ties `running` to a [`Canceller`]: dropping it cancels the call.
fn cancel_pair(running: &mut Running) -> Result<Canceller, CommandError> {
    #[cfg(unix)]
    {
        let (read, write) = io::pipe().map_err(|error| CommandError::Io {
            program: std::path::PathBuf::new(),
            error,
        })?;
        running.cancel_on(read.into());
        Ok(write.into())
    }
    #[cfg(windows)]
    {
        let cancel = CancelOnDrop(std::sync::Arc::default());
        running.cancel_on(std::sync::Arc::clone(&cancel.0));
        Ok(cancel)
    }
}

/// Starts `pipeline`; when that asks `sudo -l` first (a blocking run of sudo), it is asked on
/// the blocking pool, and nothing is started if the future is dropped meanwhile.
async fn start(pipeline: &Pipeline, options: &CallOptions) -> Result<Running, CommandError> {
    if !pipeline.asks_sudo() {
        return pipeline.spawn(options);
    }
    let begun = std::time::Instant::now();
    let (owned, owned_options) = (pipeline.clone(), options.clone());
    let plans =
        joined(tokio::task::spawn_blocking(move || owned.plans(&owned_options, begun)).await)?;
    Running::start(plans, options, begun)
}

async fn wait(mut running: Running) -> Result<Output, CommandError> {
    let keep_alive = cancel_pair(&mut running)?;
    let result = tokio::task::spawn_blocking(move || running.wait()).await;
    drop(keep_alive);
    joined(result)
}

enum Request {
    Line(oneshot::Sender<Option<Result<String, CommandError>>>),
    Wait(oneshot::Sender<Result<Output, CommandError>>),
}

/// A program (or pipeline) started on tokio by [`Command::spawn_async`]: its standard output
/// is a [`Stream`](futures_core::Stream) of lines ([`AsyncRunning::next_line`]), and it can be
/// waited for or killed. Dropping it before [`AsyncRunning::wait`] completes terminates the
/// program and everything it started, and reaps it.
///
/// ```
/// use deluxe::process::{CallOptions, Command};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut running = Command::new("sh")?.spawn_async(["-c", "echo up; sleep 1000"], &CallOptions::new())?;
/// assert_eq!(running.next_line().await.unwrap()?, "up");
/// running.kill();
/// assert!(running.wait().await.is_err());
/// # Ok::<(), deluxe::process::CommandError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncRunning {
    id: u32,
    requests: mpsc::UnboundedSender<Request>,
    pending: Option<oneshot::Receiver<Option<Result<String, CommandError>>>>,
    cancel: Option<Canceller>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Line(_) => "Line",
            Self::Wait(_) => "Wait",
        })
    }
}

impl AsyncRunning {
    fn new(mut running: Running) -> Result<Self, CommandError> {
        let cancel = cancel_pair(&mut running)?;
        let id = running.id();
        let (requests, mut inbox) = mpsc::unbounded_channel();
        tokio::task::spawn_blocking(move || {
            while let Some(request) = inbox.blocking_recv() {
                match request {
                    Request::Line(reply) => {
                        let _ = reply.send(running.next_line());
                    }
                    Request::Wait(reply) => {
                        let _ = reply.send(running.wait());
                        return;
                    }
                }
            }
            // The handle is gone: `running` is dropped here, which kills and reaps it.
        });
        Ok(Self {
            id,
            requests,
            pending: None,
            cancel: Some(cancel),
        })
    }

    /// The process id of the program (the first stage of a pipeline).
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let running = Command::new("true")?.spawn_async(deluxe::process::NO_ARGS, &CallOptions::new())?;
    /// assert!(running.id() > 0);
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next line of standard output (see [`Running::lines`]), `None` at its end.
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut echo = Command::new("echo")?.spawn_async(["hello"], &CallOptions::new())?;
    /// assert_eq!(echo.next_line().await.unwrap()?, "hello");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub async fn next_line(&mut self) -> Option<Result<String, CommandError>> {
        std::future::poll_fn(|cx| self.poll_line(cx)).await
    }

    fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String, CommandError>>> {
        if self.pending.is_none() {
            let (reply, answer) = oneshot::channel();
            if self.requests.send(Request::Line(reply)).is_err() {
                return Poll::Ready(None);
            }
            self.pending = Some(answer);
        }
        let answer = self.pending.as_mut().expect("just set");
        match Pin::new(answer).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(line) => {
                self.pending = None;
                Poll::Ready(line.unwrap_or(None))
            }
        }
    }

    /// Terminates the program and everything it started, as [`Running::kill`] (without
    /// waiting: [`AsyncRunning::wait`] then reports how it ended).
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command, CommandError};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut sleep = Command::new("sleep")?.spawn_async(["1000"], &CallOptions::new())?;
    /// sleep.kill();
    /// assert!(matches!(sleep.wait().await, Err(CommandError::Signal { signal: 15, .. })));
    /// # Ok::<(), CommandError>(())
    /// # }).unwrap();
    /// ```
    pub fn kill(&mut self) {
        self.cancel = None;
    }

    /// Waits for the program to end and judges the outcome (see [`Running::wait`]); standard
    /// output not read as lines is in the [`Output`].
    ///
    /// # Errors
    ///
    /// As [`Command::output`].
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let echo = Command::new("echo")?.spawn_async(["hi"], &CallOptions::new())?;
    /// assert_eq!(echo.wait().await?.stdout, b"hi\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait(mut self) -> Result<Output, CommandError> {
        if let Some(pending) = self.pending.take() {
            // A line asked for and not taken: the request is answered before `Wait`.
            drop(pending);
        }
        let (reply, answer) = oneshot::channel();
        let gone = || CommandError::Io {
            program: std::path::PathBuf::new(),
            error: io::Error::other("the call's thread ended"),
        };
        self.requests
            .send(Request::Wait(reply))
            .map_err(|_| gone())?;
        let result = answer.await.map_err(|_| gone())?;
        self.cancel = None;
        result
    }
}

impl futures_core::Stream for AsyncRunning {
    type Item = Result<String, CommandError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_line(cx)
    }
}

/// Sets its flag when dropped: the Windows call's thread checks it.
#[cfg(windows)]
#[derive(Debug)]
struct CancelOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

#[cfg(windows)]
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// The result of a call run on tokio's blocking pool; its panic, if it panicked, goes on here.
fn joined<T>(
    result: Result<Result<T, CommandError>, tokio::task::JoinError>,
) -> Result<T, CommandError> {
    match result {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Err(CommandError::Io {
            program: std::path::PathBuf::new(),
            error: io::Error::other(error),
        }),
    }
}
