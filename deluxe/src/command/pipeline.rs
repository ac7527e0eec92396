//! [`Pipeline`]: programs connected by OS pipes, without a shell.

use std::ffi::OsString;
use std::time::Instant;

use super::{CallOptions, Command, CommandError, Output, Plan, Running};

/// Programs whose standard output feeds the next one's standard input through an OS pipe, as
/// `a | b` in a shell (but without one): data streams through, nothing is collected between
/// stages. Built with [`Command::with_args`] and [`Pipeline::pipe`].
///
/// The options apply to the whole: input goes to the first stage, output comes from the last,
/// each stage's standard error is kept (or redirected) as the options say, the time limit
/// covers all stages, and cancelling terminates all of them. When stages fail, the rightmost
/// one's error is returned, wrapped in [`CommandError::Stage`] saying which (as
/// `set -o pipefail`); a stage before the last killed by `SIGPIPE` has not failed (its reader
/// had read enough, as `head` does).
///
/// ```
/// use deluxe::command::{CallOptions, Command, CommandError};
///
/// let sh = Command::new("sh")?;
/// let wc = Command::new("wc")?;
/// let counted = sh.with_args(["-c", "seq 100000"]).pipe(wc.with_args(["-l"]));
/// assert_eq!(String::from_utf8_lossy(&counted.call(&CallOptions::new())?).trim(), "100000");
///
/// let broken = sh.with_args(["-c", "exit 3"]).pipe(wc.with_args(["-l"]));
/// match broken.call(&CallOptions::new()) {
///     Err(CommandError::Stage { stage: 1, stages: 2, .. }) => {}
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), CommandError>(())
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Pipeline {
    stages: Vec<(Command, Vec<OsString>)>,
}

impl Pipeline {
    pub(crate) fn new(command: Command, args: Vec<OsString>) -> Self {
        Self {
            stages: vec![(command, args)],
        }
    }

    /// Feeds this pipeline's output to `next`'s input.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let yes = Command::new("yes")?;
    /// let head = Command::new("head")?;
    /// let three = yes.with_args(["y"]).pipe(head.with_args(["-n", "3"]));
    /// assert_eq!(three.call(&CallOptions::new())?, b"y\ny\ny\n");  // yes's SIGPIPE is no failure
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn pipe(mut self, next: Pipeline) -> Self {
        self.stages.extend(next.stages);
        self
    }

    /// Runs the pipeline and returns the last stage's standard output.
    ///
    /// # Errors
    ///
    /// A stage's error, wrapped in [`CommandError::Stage`] when there is more than one stage.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let tr = Command::new("tr")?;
    /// let up = tr.with_args(["a-z", "A-Z"]).call(&CallOptions::new().input("hi"))?;
    /// assert_eq!(up, b"HI");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn call(&self, options: &CallOptions) -> Result<Vec<u8>, CommandError> {
        self.output(options).map(|output| output.stdout)
    }

    /// Runs the pipeline and returns the last stage's exit code and output, and every
    /// stage's standard error tail.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::call`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let grep = Command::new("grep")?;
    /// let none = grep.with_args(["x"]).output(&CallOptions::new().input("abc\n").success_codes([1]))?;
    /// assert_eq!(none.code, 1);
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn output(&self, options: &CallOptions) -> Result<Output, CommandError> {
        self.spawn(options)?.wait()
    }

    /// Starts the pipeline; the handle reads the last stage's output.
    ///
    /// # Errors
    ///
    /// The errors of [`Pipeline::call`] that can happen before the programs run.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let seq = Command::new("seq")?;
    /// let tail = Command::new("tail")?;
    /// let mut running = seq.with_args(["5"]).pipe(tail.with_args(["-n", "1"])).spawn(&CallOptions::new())?;
    /// assert_eq!(running.lines().next().unwrap()?, "5");
    /// running.wait()?;
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn spawn(&self, options: &CallOptions) -> Result<Running, CommandError> {
        let begun = Instant::now();
        Running::start(self.plans(options, begun)?, options, begun)
    }

    /// The processes to start, one per stage, for a call that began at `begun`.
    pub(crate) fn plans(
        &self,
        options: &CallOptions,
        begun: Instant,
    ) -> Result<Vec<Plan>, CommandError> {
        let count = self.stages.len();
        let deadline = options.deadline(begun);
        self.stages
            .iter()
            .enumerate()
            .map(|(index, (command, args))| {
                command
                    .plan(args, options, deadline)
                    .map_err(|error| error.in_stage(index, count))
            })
            .collect()
    }

    /// Whether planning a stage runs `sudo -l` (a bare name run through sudo), which blocks.
    #[cfg(feature = "tokio")]
    pub(crate) fn asks_sudo(&self) -> bool {
        self.stages.iter().any(|(command, _)| command.asks_sudo())
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn stage_count(&self) -> usize {
        self.stages.len()
    }
}
