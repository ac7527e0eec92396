//! [`CallOptions`]: how one call runs (input, output, environment, limits).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::time;

/// How long a call keeps reading output after its program has exited (or after a timeout,
/// a kill or the output limit terminated it), for output written by processes it left running
/// in the background (`sh -c 'sleep 30 & echo hi'`) or that escaped the kill: the call does
/// not wait for them to close the pipes.
///
/// ```
/// use deluxe::command::{LINGER, Command};
/// let start = std::time::Instant::now();
/// assert_eq!(Command::new("sh")?.call(["-c", "sleep 30 & echo hi"])?, b"hi\n");
/// assert!(start.elapsed() < std::time::Duration::from_secs(30));
/// assert!(LINGER < std::time::Duration::from_secs(1));
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
pub const LINGER: Duration = Duration::from_millis(100);

/// How long a cancelled call gives its processes to exit after `SIGTERM` before `SIGKILL`,
/// unless [`CallOptions::kill_grace`] says otherwise.
///
/// ```
/// assert_eq!(deluxe::command::KILL_GRACE.as_secs(), 1);
/// ```
pub const KILL_GRACE: Duration = Duration::from_secs(1);

/// How many bytes of a program's standard output a call keeps, unless
/// [`CallOptions::max_output`] says otherwise: 256 MiB. Past it the program is ended as on a
/// time limit and the call fails with [`CommandError::OutputLimit`](super::CommandError::OutputLimit).
///
/// ```
/// assert_eq!(deluxe::command::MAX_OUTPUT, 256 << 20);
/// ```
pub const MAX_OUTPUT: usize = 256 << 20;

/// Where a program's standard input comes from.
#[derive(Clone, Debug, Default)]
pub(crate) enum Input {
    /// `/dev/null`.
    #[default]
    Null,
    /// These bytes, written while the output is read.
    Bytes(Arc<[u8]>),
    /// The caller's own standard input (an interactive program).
    Inherit,
}

/// Where a program's standard error goes.
///
/// ```
/// use deluxe::command::{CallOptions, Command, Stderr};
/// let sh = Command::new("sh")?;
/// let both = sh.call_with(["-c", "echo out; echo err >&2"], &CallOptions::new().stderr(Stderr::Merge))?;
/// assert_eq!(both, b"out\nerr\n");
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stderr {
    /// Read by the call; its last 64 KiB are kept for the error or the [`Output`](super::Output).
    #[default]
    Tail,
    /// Into the same pipe as standard output, in the order written (`2>&1`).
    Merge,
    /// Into this file, created or truncated (`2>FILE`).
    File(PathBuf),
    /// Through to the caller's own standard error.
    Inherit,
}

/// How to run a command: its input, where its output goes, where and with which environment
/// it runs, how long it may take and which exit codes count as success.
///
/// ```
/// use std::time::Duration;
/// use deluxe::command::{CallOptions, Command};
///
/// let options = CallOptions::new()
///     .input("b\na\n")
///     .set_env("LC_ALL", "C")
///     .timeout(Duration::from_secs(10));
/// assert_eq!(Command::new("sort")?.call_with(deluxe::command::NO_ARGS, &options)?, b"a\nb\n");
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CallOptions {
    pub(crate) input: Input,
    pub(crate) capture: bool,
    pub(crate) stderr: Stderr,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) env: Option<Vec<(OsString, OsString)>>,
    pub(crate) env_changes: Vec<(OsString, Option<OsString>)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) kill_grace: Duration,
    pub(crate) max_output: usize,
    pub(crate) success_codes: Vec<i32>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl CallOptions {
    /// No input, output captured (up to [`MAX_OUTPUT`]), stderr's tail kept, the caller's
    /// working directory and environment, no time limit, only exit code 0 is success.
    ///
    /// ```
    /// let options = deluxe::command::CallOptions::new();
    /// assert!(options.captures());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            input: Input::Null,
            capture: true,
            stderr: Stderr::Tail,
            cwd: None,
            env: None,
            env_changes: Vec::new(),
            timeout: None,
            kill_grace: KILL_GRACE,
            max_output: MAX_OUTPUT,
            success_codes: vec![0],
        }
    }

    /// Bytes written to the command's standard input (otherwise it reads `/dev/null`). A
    /// program that exits before reading them all is not an error, and never makes the caller
    /// die of `SIGPIPE`.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let wc = Command::new("wc")?;
    /// let lines = wc.call_with(["-l"], &CallOptions::new().input("a\nb\n"))?;
    /// assert_eq!(String::from_utf8_lossy(&lines).trim(), "2");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Input::Bytes(input.into().into());
        self
    }

    /// Gives the program the caller's own standard input, for interactive programs (an editor,
    /// a password prompt).
    ///
    /// ```no_run
    /// use deluxe::command::{CallOptions, Command};
    /// Command::new("vi")?.call_with(["/tmp/notes"], &CallOptions::new().inherit_stdin().capture(false))?;
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn inherit_stdin(mut self) -> Self {
        self.input = Input::Inherit;
        self
    }

    /// Whether standard output is captured and returned (`true`, the default) or goes
    /// through to this process's standard output (`false`; the call then returns no bytes).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let echo = Command::new("echo")?;
    /// let returned = echo.call_with(["printed, not returned"], &CallOptions::new().capture(false))?;
    /// assert!(returned.is_empty());
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn capture(mut self, capture: bool) -> Self {
        self.capture = capture;
        self
    }

    /// Where standard error goes: see [`Stderr`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command, Stderr};
    /// let log = std::env::temp_dir().join(format!("deluxe-doc-stderr-{}", std::process::id()));
    /// let options = CallOptions::new().stderr(Stderr::File(log.clone()));
    /// Command::new("sh")?.call_with(["-c", "echo oops >&2"], &options)?;
    /// assert_eq!(std::fs::read_to_string(&log).unwrap(), "oops\n");
    /// # std::fs::remove_file(log).unwrap();
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn stderr(mut self, stderr: Stderr) -> Self {
        self.stderr = stderr;
        self
    }

    /// The working directory of the command (it must exist, and the user the command runs as
    /// must be able to enter it).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let pwd = Command::new("pwd")?;
    /// assert_eq!(pwd.call_with(deluxe::command::NO_ARGS, &CallOptions::new().cwd("/"))?, b"/\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// The command's whole environment: it replaces, not extends, the caller's. Changes made
    /// with [`set_env`](Self::set_env) and [`remove_env`](Self::remove_env) apply on top.
    ///
    /// A command run as another user cannot be given an exact environment (`sudo` adds
    /// variables of its own): use `set_env` there; this one makes the call fail with
    /// [`ArgumentProblem::ExactEnvironmentAsUser`](super::ArgumentProblem::ExactEnvironmentAsUser).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let env = Command::new("env")?;
    /// let options = CallOptions::new().env([("ONLY", "this")]);
    /// assert_eq!(env.call_with(deluxe::command::NO_ARGS, &options)?, b"ONLY=this\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn env<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env = Some(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// Sets one variable on top of the inherited environment (or of [`env`](Self::env)). As
    /// another user it is passed to `sudo` as `NAME=VALUE`, which sudo's policy must allow.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let sh = Command::new("sh")?;
    /// let options = CallOptions::new().set_env("GREETING", "hello");
    /// assert_eq!(sh.call_with(["-c", "echo $GREETING from $HOME"], &options)?,
    ///            format!("hello from {}\n", std::env::var("HOME").unwrap_or_default()).into_bytes());
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn set_env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env_changes.push((name.into(), Some(value.into())));
        self
    }

    /// Removes one variable from the inherited environment (or from [`env`](Self::env)). Not
    /// possible for a command run as another user (sudo's policy decides what it keeps).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let sh = Command::new("sh")?;
    /// let options = CallOptions::new().set_env("A", "1").remove_env("A");
    /// assert_eq!(sh.call_with(["-c", "echo ${A-unset}"], &options)?, b"unset\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn remove_env(mut self, name: impl Into<OsString>) -> Self {
        self.env_changes.push((name.into(), None));
        self
    }

    /// A time limit: when it passes, the program and everything it started are terminated
    /// (`SIGTERM`, then `SIGKILL` after [`kill_grace`](Self::kill_grace)), and the call fails
    /// with [`CommandError::Timeout`](super::CommandError::Timeout), carrying what was read.
    /// The limit counts from the call, including the start (and, under `sudo`, its check);
    /// `Duration::ZERO` has passed already: the call ends as `Timeout` at once; any longer
    /// duration is accepted (`Duration::MAX` is no limit at all).
    ///
    /// ```
    /// use std::time::Duration;
    /// use deluxe::command::{CallOptions, Command, CommandError};
    /// let sh = Command::new("sh")?;
    /// let options = CallOptions::new().timeout(Duration::from_millis(200));
    /// match sh.call_with(["-c", "echo started; sleep 30"], &options) {
    ///     Err(CommandError::Timeout { stdout, .. }) => assert_eq!(stdout, b"started\n"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), CommandError>(())
    /// ```
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long a cancelled call waits after `SIGTERM` before `SIGKILL` ([`KILL_GRACE`] by
    /// default). Any duration is accepted: `Duration::MAX` waits as long as the processes
    /// take to obey `SIGTERM`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = deluxe::command::CallOptions::new().kill_grace(Duration::from_millis(100));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The most bytes of standard output the call keeps ([`MAX_OUTPUT`] by default); with
    /// [`Stderr::Merge`] standard error counts too, and for [`Running::lines`](super::Running::lines)
    /// it bounds the output read but not yet taken, so one line longer than that fails too.
    /// Past it, the program and everything it started are terminated as on a
    /// [`timeout`](Self::timeout), and the call fails with
    /// [`CommandError::OutputLimit`](super::CommandError::OutputLimit), carrying the first
    /// `max_output` bytes.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command, CommandError};
    /// let yes = Command::new("yes")?;
    /// match yes.call_with(deluxe::command::NO_ARGS, &CallOptions::new().max_output(10)) {
    ///     Err(CommandError::OutputLimit { stdout, limit: 10, .. }) => assert_eq!(stdout, b"y\ny\ny\ny\ny\n"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), CommandError>(())
    /// ```
    #[must_use]
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// When a call that began at `begun` must end: `None` without a time limit, or when the
    /// limit is too long to be represented (it never passes).
    pub(crate) fn deadline(&self, begun: Instant) -> Option<Instant> {
        self.timeout
            .and_then(|timeout| time::deadline_from(begun, timeout))
    }

    /// Exit codes that count as success besides 0, for programs whose non-zero codes are
    /// answers (`diff` and `grep` exit 1 for "differ" and "no match").
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let grep = Command::new("grep")?;
    /// let options = CallOptions::new().input("apple\n").success_codes([1]);
    /// let output = grep.output(["pear"], &options)?;
    /// assert_eq!((output.code, output.stdout.as_slice()), (1, &b""[..]));
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn success_codes(mut self, codes: impl IntoIterator<Item = i32>) -> Self {
        self.success_codes.extend(codes);
        self
    }

    /// Whether standard output is captured.
    ///
    /// ```
    /// let options = deluxe::command::CallOptions::new().capture(false);
    /// assert!(!options.captures());
    /// ```
    pub fn captures(&self) -> bool {
        self.capture
    }
}
