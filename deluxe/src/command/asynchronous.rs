//! The calls on tokio: [`Command::call_async`], [`Command::output_async`] and
//! [`Command::spawn_async`], with the same options, errors and guarantees as the synchronous
//! forms.
//!
//! On Unix a call is event-driven (`events.rs`): the same loop as the synchronous forms',
//! turned by the future's polls, its pipes and pidfds waiting in tokio's reactor and its time
//! limit in a tokio timer; no thread is taken per call in flight. A termination (a time limit,
//! [`AsyncRunning::kill`], a dropped future or handle) runs the synchronous forms' own code on
//! tokio's blocking pool for as long as it lasts (up to the grace). On Windows a call's loop
//! runs on the blocking pool, one thread per call in flight (`pool.rs`).
//!
//! Starting a program through `sudo` by its bare name first asks `sudo -l` which file it
//! would run (see [`Command::user`]): one short run of sudo, on the blocking pool; a future
//! dropped meanwhile starts nothing.

use std::ffi::{OsStr, OsString};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(unix)]
mod events;
#[cfg(windows)]
mod pool;

#[cfg(unix)]
use events::Engine;
#[cfg(windows)]
use pool::Engine;

use super::{CallOptions, Command, CommandError, Output, Pipeline, Running};

impl Command {
    /// Runs the command on tokio and returns its standard output (empty when not captured):
    /// [`Command::call_with`], asynchronously.
    ///
    /// Dropping the future before it completes terminates the program and everything it
    /// started (`SIGTERM`, then `SIGKILL` after the grace; through `sudo` too), and reaps it.
    /// A dropped future cannot wait: that cleanup runs in the background, on tokio's blocking
    /// pool, starting when the future is dropped (unless the caller's own blocking tasks fill
    /// the pool), and is complete within the grace ([`CallOptions::kill_grace`]) plus the time
    /// to find and signal the processes. The program then runs no longer than a timeout
    /// would let it.
    ///
    /// Needs a tokio runtime with I/O and time enabled (`enable_all`). On Unix the call takes
    /// no thread while it runs: it waits in the runtime's reactor, as `tokio::process` does,
    /// and its time limit in a tokio timer; the termination a timeout starts takes a thread of
    /// the blocking pool while it lasts, as a drop's does.
    ///
    /// # Errors
    ///
    /// As [`Command::call_with`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sort = Command::new("sort")?;
    /// let options = CallOptions::new().input("b\na\n");
    /// assert_eq!(sort.call_async(["-r"], &options).await?, b"b\na\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
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
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let grep = Command::new("grep")?;
    /// let options = CallOptions::new().input("a\n").success_codes([1]);
    /// assert_eq!(grep.output_async(["b"], &options).await?.code, 1);
    /// # Ok::<(), deluxe::command::CommandError>(())
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

    /// [`Command::spawn`] on tokio: the handle is a [`Stream`](https://docs.rs/futures-core/0.3/futures_core/stream/trait.Stream.html) of
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
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut running = Command::new("seq")?.spawn_async(["2"], &CallOptions::new())?;
    /// assert_eq!(running.next_line().await.unwrap()?, "1");
    /// assert_eq!(running.next_line().await.unwrap()?, "2");
    /// assert!(running.next_line().await.is_none());
    /// running.wait().await?;
    /// # Ok::<(), deluxe::command::CommandError>(())
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
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (seq, wc) = (Command::new("seq")?, Command::new("wc")?);
    /// let count = seq.with_args(["10"]).pipe(wc.with_args(["-l"])).call_async(&CallOptions::new()).await?;
    /// assert_eq!(String::from_utf8_lossy(&count).trim(), "10");
    /// # Ok::<(), deluxe::command::CommandError>(())
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
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let (seq, tail) = (Command::new("seq")?, Command::new("tail")?);
    /// let mut last = seq.with_args(["3"]).pipe(tail.with_args(["-n1"])).spawn_async(&CallOptions::new())?;
    /// assert_eq!(last.next_line().await.unwrap()?, "3");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// # }).unwrap();
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_async(&self, options: &CallOptions) -> Result<AsyncRunning, CommandError> {
        AsyncRunning::new(self.spawn(options)?)
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

async fn wait(running: Running) -> Result<Output, CommandError> {
    Engine::new(running)?.wait().await
}

/// A program (or pipeline) started on tokio by [`Command::spawn_async`]: its standard output
/// is a [`Stream`](https://docs.rs/futures-core/0.3/futures_core/stream/trait.Stream.html) of lines ([`AsyncRunning::next_line`]), and it can be
/// waited for or killed. Dropping it before [`AsyncRunning::wait`] completes terminates the
/// program and everything it started, and reaps it, in the background as a dropped
/// [`Command::call_async`] does.
///
/// ```
/// use deluxe::command::{CallOptions, Command};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut running = Command::new("sh")?.spawn_async(["-c", "echo up; sleep 1000"], &CallOptions::new())?;
/// assert_eq!(running.next_line().await.unwrap()?, "up");
/// running.kill();
/// assert!(running.wait().await.is_err());
/// # Ok::<(), deluxe::command::CommandError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub struct AsyncRunning {
    id: u32,
    engine: Engine,
}

impl AsyncRunning {
    fn new(running: Running) -> Result<Self, CommandError> {
        Ok(Self {
            id: running.id(),
            engine: Engine::new(running)?,
        })
    }

    /// The process id of the program (the first stage of a pipeline).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let running = Command::new("true")?.spawn_async(deluxe::command::NO_ARGS, &CallOptions::new())?;
    /// assert!(running.id() > 0);
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next line of standard output (see [`Running::lines`]), `None` at its end.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut echo = Command::new("echo")?.spawn_async(["hello"], &CallOptions::new())?;
    /// assert_eq!(echo.next_line().await.unwrap()?, "hello");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub async fn next_line(&mut self) -> Option<Result<String, CommandError>> {
        std::future::poll_fn(|cx| self.poll_line(cx)).await
    }

    fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<String, CommandError>>> {
        self.engine.poll_line(cx)
    }

    /// Terminates the program and everything it started, as [`Running::kill`], starting at
    /// once and without waiting (the termination runs on tokio's blocking pool, `SIGTERM`
    /// now and `SIGKILL` after the grace): [`AsyncRunning::wait`] then reports how it ended.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command, CommandError};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let mut sleep = Command::new("sleep")?.spawn_async(["1000"], &CallOptions::new())?;
    /// sleep.kill();
    /// assert!(matches!(sleep.wait().await, Err(CommandError::Signal { signal: 15, .. })));
    /// # Ok::<(), CommandError>(())
    /// # }).unwrap();
    /// ```
    pub fn kill(&mut self) {
        self.engine.kill();
    }

    /// Waits for the program to end and judges the outcome (see [`Running::wait`]); standard
    /// output not read as lines is in the [`Output`].
    ///
    /// # Errors
    ///
    /// As [`Command::output`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let echo = Command::new("echo")?.spawn_async(["hi"], &CallOptions::new())?;
    /// assert_eq!(echo.wait().await?.stdout, b"hi\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait(self) -> Result<Output, CommandError> {
        self.engine.wait().await
    }
}

impl futures_core::Stream for AsyncRunning {
    type Item = Result<String, CommandError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_line(cx)
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
