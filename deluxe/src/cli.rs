//! A command line for a daemon: `PROGRAM [OPTIONS] start|stop|restart|status|reload|user1|user2`,
//! with the exit codes of LSB init scripts, so that a program is its own init script.
//!
//! ```no_run
//! #[deluxe::daemon(pidfile = "/run/worker.pid")]
//! #[derive(Default)]
//! struct Worker;
//!
//! #[deluxe::daemon]
//! impl Worker {
//!     fn run(&self) {
//!         deluxe::daemon::wait_for_stop(std::time::Duration::MAX);
//!     }
//! }
//!
//! fn main() {
//!     deluxe::cli::main(Worker::controller())
//! }
//! ```
//!
//! | action | prints | exit code ([`Exit`]) |
//! |---|---|---|
//! | `start` | `started (pid N)`, or `already running (pid N)` | 0; 1 on failure |
//! | `stop` | `stopped`, `stopped (killed ...)`, or `not running` | 0; 1 on failure |
//! | `restart` | `restarted (pid N)` | 0; 1 on failure |
//! | `status` | `running (pid N)` or `running outside this PID namespace (...)` / `not running (stale pidfile ...)` / `not running` | 0 / 1 / 3; 4 when it cannot tell |
//! | `reload` | `reloaded (log reopened, on_reload done)` | 0; 1 when `on_reload` failed (its error on stderr) or there is no answer; 7 when not running |
//! | `user1`, `user2` | `sent SIGUSR1 (on_user1)`; `sent SIGUSR1` when the daemon declares no such hook ([`Daemon::hooks`]) or is an [`Instance`] | 0; 1 on failure; 7 when not running |
//!
//! Failures print the error's message on stderr (`error: not running (...)` for the actions
//! that need the daemon running). Wrong arguments print the usage on stderr and exit 2;
//! `--help` prints it on stdout and exits 0.
//!
//! A program with flags of its own flattens deluxe's arguments into its clap parser (the
//! `clap` feature: [`Invocation`] is a `clap::Args`, `#[command(flatten)]` with clap's
//! derive), then hands them to [`execute`]:
//!
//! ```no_run
//! # #[cfg(feature = "clap")]
//! # fn main() -> deluxe::cli::Exit {
//! use clap::{Arg, Args, Command, FromArgMatches};
//! use deluxe::cli::Invocation;
//! # #[deluxe::daemon] #[derive(Default)] struct Worker;
//! # #[deluxe::daemon] impl Worker { fn run(&self) {} }
//!
//! // worker --config /etc/worker.toml [--pidfile PATH ...] start|stop|...
//! let command = Command::new("worker").arg(Arg::new("config").long("config"));
//! let matches = Invocation::augment_args(command).get_matches();
//! let invocation = Invocation::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
//! let config: Option<&String> = matches.get_one("config");
//! # let _ = config;
//! deluxe::cli::execute(Worker::controller(), &invocation)
//! # }
//! # #[cfg(not(feature = "clap"))]
//! # fn main() {}
//! ```
//!
//! The actions that need no daemon value (`status`, `stop`, `reload`, `user1`, `user2`) run on
//! an [`Instance`], known by its settings alone: a program that manages instances it did not
//! start (one per shard, say) needs no daemon value for them.
//!
//! ```
//! use deluxe::cli::{Action, Exit, Invocation};
//! use deluxe::daemon::{Config, Instance};
//!
//! let shard = Instance::new(Config::new("/nonexistent/shard-3.pid"));
//! let exit = deluxe::cli::execute_instance(&shard, &Invocation::new(Action::Status));
//! assert_eq!(exit, Exit::NotRunning); // printed: not running
//! ```
//!
//! Under a service manager ([`crate::daemon::supervised`]: systemd,
//! `start-stop-daemon --notify-await`, a container's pid 1), `start` runs the daemon in the
//! foreground ([`Controller::run_foreground`]) instead of forking, as daemon(7) recommends;
//! `--foreground` and `--background` force either way. As a container's pid 1 the foreground
//! daemon leaves pid 1 to a minimal init that reaps orphans and forwards signals
//! ([`Controller::run_foreground`]); `--no-init` keeps the daemon itself pid 1.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{ExitCode, Termination};
use std::time::Duration;

#[cfg(feature = "clap")]
mod clap_args;

use crate::daemon::{
    Config, Controller, Daemon, DaemonError, Instance, Status, StopOutcome, supervised,
};

/// How the command line exits: the exit codes of LSB init scripts. Converts into
/// [`ExitCode`] (and is a [`Termination`], so `main` may return it); [`Exit::code`] is the
/// number.
///
/// | variant | code | meaning |
/// |---|---|---|
/// | [`Success`](Exit::Success) | 0 | done; `status`: running |
/// | [`Failure`](Exit::Failure) | 1 | the action failed; `status`: dead, its pidfile left |
/// | [`Usage`](Exit::Usage) | 2 | wrong arguments |
/// | [`NotRunning`](Exit::NotRunning) | 3 | `status`: not running |
/// | [`Unknown`](Exit::Unknown) | 4 | `status`: cannot tell |
/// | [`NotRunningAction`](Exit::NotRunningAction) | 7 | `reload`, `user1`, `user2`: not running |
///
/// ```
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// use std::ffi::OsStr;
/// use deluxe::cli::Exit;
///
/// let pidfile = std::env::temp_dir().join("no-such-daemon.pid");
/// let args = [OsStr::new("worker"), OsStr::new("--pidfile"), pidfile.as_os_str(), OsStr::new("status")];
/// let exit = deluxe::cli::run(Worker::controller(), args);
/// assert_eq!(exit, Exit::NotRunning);
/// assert_eq!(exit.code(), 3);
/// let _: std::process::ExitCode = exit.into();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exit {
    /// 0, LSB "success": the action was done (`start` also when the daemon already runs,
    /// `stop` also when it does not); `status`: it runs.
    Success,
    /// 1, LSB "generic or unspecified error": the action failed, its error on stderr;
    /// `status`: the daemon is dead but its pidfile is left.
    Failure,
    /// 2, LSB "invalid or excess argument(s)": wrong arguments (a [`UsageError`]).
    Usage,
    /// 3, LSB "program is not running" (of `status`).
    NotRunning,
    /// 4, LSB "program or service status is unknown" (of `status`): the pidfile cannot be
    /// read.
    Unknown,
    /// 7, LSB "program is not running" (of an action that needs it running): `reload`,
    /// `user1` or `user2` found no daemon, so nothing was done.
    NotRunningAction,
}

impl Exit {
    /// The exit code's number.
    ///
    /// ```
    /// assert_eq!(deluxe::cli::Exit::NotRunningAction.code(), 7);
    /// ```
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::NotRunning => 3,
            Self::Unknown => 4,
            Self::NotRunningAction => 7,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

impl Termination for Exit {
    fn report(self) -> ExitCode {
        self.into()
    }
}

/// What a command line asks for: the result of [`parse`].
///
/// ```
/// use deluxe::cli::{Action, Request, parse};
///
/// match parse(["--pidfile", "/tmp/w.pid", "stop"])? {
///     Request::Act(invocation) => assert_eq!(invocation.action, Action::Stop),
///     Request::Help => unreachable!(),
/// }
/// # Ok::<(), deluxe::cli::UsageError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `-h` or `--help`: print the usage.
    Help,
    /// Perform an action.
    Act(Invocation),
}

/// An action and the settings the command line overrides.
///
/// With the `clap` feature it is a `clap::Args`: `#[command(flatten)]` it into your own
/// parser (without the feature, clap says ``the trait bound `Invocation: clap::Args` is not
/// satisfied``), then hand it to [`execute`] or [`execute_instance`].
///
/// ```
/// use std::time::Duration;
/// use deluxe::cli::{Request, parse};
///
/// let Request::Act(invocation) = parse(["start", "--stop-timeout=2.5", "--foreground"])? else {
///     unreachable!()
/// };
/// assert_eq!(invocation.stop_timeout, Some(Duration::from_millis(2500)));
/// assert_eq!(invocation.foreground, Some(true));
/// # Ok::<(), deluxe::cli::UsageError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Invocation {
    /// What to do.
    pub action: Action,
    /// `--pidfile PATH`: any path, as the API takes it (not necessarily UTF-8).
    pub pidfile: Option<PathBuf>,
    /// `--log PATH` (or `--log-file`): where the daemon's stdout and stderr go.
    pub log_file: Option<PathBuf>,
    /// `--stop-timeout SECS`: how long `stop` waits after `SIGTERM`.
    pub stop_timeout: Option<Duration>,
    /// `--reload-timeout SECS`: how long `reload` waits for the daemon's answer.
    pub reload_timeout: Option<Duration>,
    /// `Some(true)`: `--foreground`; `Some(false)`: `--background`; `None`: run in the
    /// foreground under a service manager ([`supervised`]), else fork.
    pub foreground: Option<bool>,
    /// `--no-init`: as pid 1, run the daemon itself as pid 1, without the init that reaps
    /// orphans ([`Config::container_init`](crate::daemon::Config::container_init)).
    pub no_init: bool,
}

impl Invocation {
    /// The action with no overrides: the controller's settings as they are.
    ///
    /// ```
    /// use deluxe::cli::{Action, Invocation};
    /// let invocation = Invocation::new(Action::Reload);
    /// assert_eq!(invocation.pidfile, None);
    /// ```
    pub fn new(action: Action) -> Self {
        Self {
            action,
            pidfile: None,
            log_file: None,
            stop_timeout: None,
            reload_timeout: None,
            foreground: None,
            no_init: false,
        }
    }

    /// `config` with this command line's overrides.
    fn apply(&self, mut config: Config) -> Config {
        if let Some(pidfile) = &self.pidfile {
            config.pidfile.clone_from(pidfile);
        }
        if let Some(log_file) = &self.log_file {
            config.log_file = Some(log_file.clone());
        }
        if let Some(timeout) = self.stop_timeout {
            config.stop_timeout = timeout;
        }
        if let Some(timeout) = self.reload_timeout {
            config.reload_timeout = timeout;
        }
        if self.no_init {
            config.container_init = false;
        }
        config
    }
}

/// The actions, one per command line.
///
/// ```
/// use deluxe::cli::{Action, Request, parse};
///
/// assert!(matches!(parse(["user1"]), Ok(Request::Act(i)) if i.action == Action::User1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `start`: start the daemon (exit 0 also when it already runs).
    Start,
    /// `stop`: stop it (exit 0 also when it does not run).
    Stop,
    /// `restart`: start a new daemon with the running one's sockets, then stop the old one
    /// (stop then start when it declared none).
    Restart,
    /// `status`: exit 0 running, 1 dead with a stale pidfile, 3 not running, 4 cannot tell.
    Status,
    /// `reload`: it reopens its log file and runs its `on_reload` hook, and says how that
    /// went ([`Controller::reload`]): exit 0 reloaded, 1 failed, 7 not running.
    Reload,
    /// `user1`: send it `SIGUSR1` (its `on_user1` hook).
    User1,
    /// `user2`: send it `SIGUSR2` (its `on_user2` hook).
    User2,
}

impl Action {
    const ALL: [(&'static str, Self); 7] = [
        ("start", Self::Start),
        ("stop", Self::Stop),
        ("restart", Self::Restart),
        ("status", Self::Status),
        ("reload", Self::Reload),
        ("user1", Self::User1),
        ("user2", Self::User2),
    ];

    fn parse(word: &OsStr) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(name, _)| OsStr::new(name) == word)
            .map(|&(_, action)| action)
    }

    /// The action's word on the command line.
    ///
    /// ```
    /// use deluxe::cli::Action;
    /// assert_eq!(Action::Reload.name(), "reload");
    /// ```
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, action)| *action == self)
            .map_or("", |(name, _)| name)
    }

    /// Every action's word, for a larger command line's own parser.
    ///
    /// ```
    /// assert!(deluxe::cli::Action::names().contains(&"status"));
    /// ```
    pub fn names() -> [&'static str; 7] {
        Self::ALL.map(|(name, _)| name)
    }
}

/// Parses an action's word (`status`), as a larger command line's parser may ask.
///
/// ```
/// use deluxe::cli::{Action, UsageError};
/// assert_eq!("stop".parse::<Action>(), Ok(Action::Stop));
/// assert_eq!("strat".parse::<Action>(), Err(UsageError::UnknownAction { word: "strat".into() }));
/// ```
impl std::str::FromStr for Action {
    type Err = UsageError;

    fn from_str(word: &str) -> Result<Self, UsageError> {
        Self::parse(OsStr::new(word)).ok_or_else(|| UsageError::UnknownAction { word: word.into() })
    }
}

/// What is wrong with a command line: the program prints it with the usage and exits
/// [`Exit::Usage`] (2).
///
/// ```
/// use deluxe::cli::{UsageError, parse};
///
/// let error = parse(["--stop-timeout", "1e20", "stop"]).unwrap_err();
/// assert!(matches!(error, UsageError::InvalidValue { option: "--stop-timeout", .. }));
/// assert_eq!(
///     error.to_string(),
///     "--stop-timeout takes a number of seconds (0 or more, below 2^64), not \"1e20\""
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// No action was given.
    NoAction,
    /// A word that is not an action (`strat`).
    UnknownAction {
        /// The word.
        word: OsString,
    },
    /// A second action (`start stop`).
    SecondAction {
        /// The second action's word.
        word: OsString,
    },
    /// An option this command line does not know.
    UnknownOption {
        /// The option as given (without an `=VALUE`).
        option: OsString,
    },
    /// An option that takes a value was given twice (`--pidfile a --pidfile b`): which one
    /// was meant is not guessed.
    RepeatedOption {
        /// The option (`--pidfile`, `--log`, `--stop-timeout`, `--reload-timeout`).
        option: &'static str,
    },
    /// Two options that contradict each other: `--foreground` and `--background`.
    ConflictingOptions {
        /// The one given first.
        first: &'static str,
        /// The one given second.
        second: &'static str,
    },
    /// An option that needs a value came last.
    MissingValue {
        /// The option (`--pidfile`, `--log`, `--stop-timeout`).
        option: &'static str,
    },
    /// An option that takes no value was given one (`--foreground=yes`).
    UnexpectedValue {
        /// The option (`--foreground`, `--background`, `--no-init`, `--help`).
        option: &'static str,
        /// The value given.
        value: OsString,
    },
    /// An option's value is not one it takes (`--stop-timeout soon`, `--pidfile ""`).
    InvalidValue {
        /// The option (`--pidfile`, `--log`, `--stop-timeout`).
        option: &'static str,
        /// The value given.
        value: OsString,
        /// What the option takes, as the message says it.
        expected: &'static str,
    },
    /// `start` or `restart` asked of an [`Instance`] ([`execute_instance`]): starting needs
    /// the daemon value, which only a [`Controller`] has.
    NeedsDaemon {
        /// The action.
        action: Action,
    },
}

impl std::fmt::Display for UsageError {
    // Debug quotes a word or value, escaping bytes that are not UTF-8 rather than losing them.
    #[allow(clippy::unnecessary_debug_formatting)]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoAction => write!(f, "no action given; expected one of: {}", action_names()),
            Self::UnknownAction { word } => write!(
                f,
                "unknown action {word:?}; expected one of: {}",
                action_names()
            ),
            Self::SecondAction { word } => {
                write!(f, "one action at a time: {word:?} is a second one")
            }
            Self::UnknownOption { option } => write!(
                f,
                "unknown option {}; see --help for the options",
                option.display()
            ),
            Self::RepeatedOption { option } => {
                write!(f, "{option} was given twice; give it once")
            }
            Self::ConflictingOptions { first, second } => {
                write!(
                    f,
                    "{first} and {second} contradict each other; give one of them"
                )
            }
            Self::MissingValue { option } => write!(f, "{option} needs a value"),
            Self::UnexpectedValue { option, value } => {
                write!(f, "{option} takes no value, not {value:?}")
            }
            Self::InvalidValue {
                option,
                value,
                expected,
            } => write!(f, "{option} takes {expected}, not {value:?}"),
            Self::NeedsDaemon { action } => write!(
                f,
                "{} needs the daemon's program, and this command line knows only its pidfile: \
                 it can stop, reload, signal and tell the status; start the daemon with its \
                 own program",
                action.name()
            ),
        }
    }
}

impl std::error::Error for UsageError {}

fn action_names() -> String {
    Action::ALL.map(|(name, _)| name).join(", ")
}

/// Runs the command line `args` (the program's name first, as [`std::env::args_os`] gives it)
/// against `controller`, printing the outcome, and returns the exit code: the entry point for
/// a program that does more after it, and for tests. [`main`] is the same with this process's
/// command line, then exits.
///
/// ```no_run
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// use deluxe::cli::Exit;
///
/// let exit = deluxe::cli::run(Worker::controller(), ["worker", "--pidfile", "/tmp/w.pid", "status"]);
/// if exit == Exit::NotRunning {
///     println!("start it with: worker start");
/// }
/// ```
pub fn run<D, I, A>(controller: Controller<D>, args: I) -> Exit
where
    D: Daemon,
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let program = args.next().map_or_else(
        || "daemon".to_owned(),
        |name| {
            let name = PathBuf::from(name);
            let file = name.file_name().unwrap_or(name.as_os_str());
            file.to_string_lossy().into_owned()
        },
    );
    let invocation = match parse(args) {
        Ok(Request::Act(invocation)) => invocation,
        Ok(Request::Help) => {
            say(&usage(&program, controller.config()));
            return Exit::Success;
        }
        Err(problem) => {
            eprintln!(
                "{program}: {problem}\n\n{}",
                usage(&program, controller.config())
            );
            return Exit::Usage;
        }
    };
    execute(controller, &invocation)
}

/// Performs an action already parsed, by this module ([`parse`]) or by a larger command line
/// (clap, say: with the `clap` feature [`Invocation`] is a flattenable `clap::Args`), with
/// its overrides; prints the outcome as [`run`] does and returns the exit code, for that
/// program to pass on. [`execute_instance`] does the same without a daemon value.
///
/// ```no_run
/// use deluxe::cli::{Action, Invocation};
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
///
/// // `tool worker status`, where `tool` parsed `worker status` itself.
/// let mut invocation = Invocation::new("status".parse::<Action>()?);
/// invocation.pidfile = Some("/run/tool/worker.pid".into());
/// let exit = deluxe::cli::execute(Worker::controller(), &invocation);
/// std::process::exit(exit.code().into()); // 0 running, 3 not running, ...
/// # Ok::<(), deluxe::cli::UsageError>(())
/// ```
pub fn execute<D: Daemon>(controller: Controller<D>, invocation: &Invocation) -> Exit {
    let controller = controller.configure(|config| invocation.apply(config));
    match invocation.action {
        Action::Start if invocation.foreground.unwrap_or_else(supervised) => {
            let Err(error) = controller.run_foreground();
            finish(match error {
                DaemonError::AlreadyRunning { pid, .. } => {
                    Ok(format!("already running (pid {pid})"))
                }
                error => Err(error),
            })
        }
        Action::Start => finish(match controller.start() {
            Ok(pid) => Ok(format!("started (pid {pid})")),
            Err(DaemonError::AlreadyRunning { pid, .. }) => {
                Ok(format!("already running (pid {pid})"))
            }
            Err(error) => Err(error),
        }),
        Action::Restart => finish(
            controller
                .restart()
                .map(|pid| format!("restarted (pid {pid})")),
        ),
        action => act(&controller.instance(), action, D::hooks()),
    }
}

/// Performs an action on an [`Instance`], a daemon known by its settings alone, without the
/// daemon value: `status`, `stop`, `reload`, `user1` and `user2`, printed and exiting as
/// [`execute`] does (`user1` says `sent SIGUSR1`: an instance does not know the daemon's
/// hooks). `start` and `restart` need the daemon value: they print
/// [`UsageError::NeedsDaemon`] and exit [`Exit::Usage`].
///
/// ```
/// use deluxe::cli::{Action, Exit, Invocation};
/// use deluxe::daemon::{Config, Instance};
///
/// let instance = Instance::new(Config::new("/nonexistent/shard-3.pid"));
/// let exit = deluxe::cli::execute_instance(&instance, &Invocation::new(Action::Status));
/// assert_eq!(exit, Exit::NotRunning);
/// let exit = deluxe::cli::execute_instance(&instance, &Invocation::new(Action::Start));
/// assert_eq!(exit, Exit::Usage);
/// ```
pub fn execute_instance(instance: &Instance, invocation: &Invocation) -> Exit {
    let action = invocation.action;
    if matches!(action, Action::Start | Action::Restart) {
        eprintln!("error: {}", UsageError::NeedsDaemon { action });
        return Exit::Usage;
    }
    let instance = Instance::new(invocation.apply(instance.config().clone()));
    act(&instance, action, &[])
}

/// Runs this process's command line against `controller` ([`run`] with
/// [`std::env::args_os`]), then exits with its code: the whole of a program's `main`.
///
/// ```no_run
/// #[deluxe::daemon(pidfile = "/run/worker.pid")]
/// #[derive(Default)]
/// struct Worker;
///
/// #[deluxe::daemon]
/// impl Worker {
///     fn run(&self) {
///         deluxe::daemon::wait_for_stop(std::time::Duration::MAX);
///     }
/// }
///
/// fn main() {
///     deluxe::cli::main(Worker::controller())
/// }
/// ```
pub fn main<D: Daemon>(controller: Controller<D>) -> ! {
    std::process::exit(run(controller, std::env::args_os()).code().into())
}

/// Parses a command line's arguments (without the program's name): options and one action,
/// in any order; `--name=value` and `--name value` alike.
///
/// # Errors
///
/// A [`UsageError`] for anything but one known action among known options with valid values,
/// each option that takes a value given once, and not both `--foreground` and `--background`
/// (as the `clap` feature's [`Invocation`] refuses them too).
///
/// ```
/// use deluxe::cli::{Request, UsageError, parse};
///
/// assert!(matches!(parse(["--log", "/tmp/w.log", "start"]), Ok(Request::Act(_))));
/// assert_eq!(parse(["status", "--help"]), Ok(Request::Help));
/// assert_eq!(parse(["start", "stop"]), Err(UsageError::SecondAction { word: "stop".into() }));
/// ```
pub fn parse<I, A>(args: I) -> Result<Request, UsageError>
where
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut action = None;
    let (mut pidfile, mut log_file, mut stop_timeout, mut foreground) = (None, None, None, None);
    let mut reload_timeout = None;
    let mut no_init = false;
    let mut given: Vec<Flag> = Vec::new();
    while let Some(arg) = args.next() {
        let (name, inline) = split_option(&arg);
        let Some(option) = Flag::parse(name) else {
            if name.as_bytes().starts_with(b"-") {
                return Err(UsageError::UnknownOption {
                    option: name.to_owned(),
                });
            }
            match (Action::parse(&arg), action) {
                (Some(parsed), None) => action = Some(parsed),
                (Some(_), Some(_)) => return Err(UsageError::SecondAction { word: arg }),
                (None, _) => return Err(UsageError::UnknownAction { word: arg }),
            }
            continue;
        };
        if let Some(value) = inline.filter(|_| !option.takes_value()) {
            return Err(UsageError::UnexpectedValue {
                option: option.name(),
                value: value.to_owned(),
            });
        }
        if option.takes_value() && given.contains(&option) {
            return Err(UsageError::RepeatedOption {
                option: option.name(),
            });
        }
        if let Some(&first) = given.iter().find(|&&flag| option.contradicts(flag)) {
            return Err(UsageError::ConflictingOptions {
                first: first.name(),
                second: option.name(),
            });
        }
        given.push(option);
        let mut value = || match inline {
            Some(value) => Ok(value.to_owned()),
            None => args.next().ok_or(UsageError::MissingValue {
                option: option.name(),
            }),
        };
        match option {
            Flag::Help => return Ok(Request::Help),
            Flag::Foreground => foreground = Some(true),
            Flag::Background => foreground = Some(false),
            Flag::NoInit => no_init = true,
            Flag::Pidfile => pidfile = Some(path(option, value()?)?),
            Flag::Log => log_file = Some(path(option, value()?)?),
            Flag::StopTimeout => stop_timeout = Some(seconds(option, value()?)?),
            Flag::ReloadTimeout => reload_timeout = Some(seconds(option, value()?)?),
        }
    }
    let action = action.ok_or(UsageError::NoAction)?;
    Ok(Request::Act(Invocation {
        pidfile,
        log_file,
        stop_timeout,
        reload_timeout,
        foreground,
        no_init,
        ..Invocation::new(action)
    }))
}

/// The options.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flag {
    Help,
    Pidfile,
    Log,
    StopTimeout,
    ReloadTimeout,
    Foreground,
    Background,
    NoInit,
}

impl Flag {
    fn parse(name: &OsStr) -> Option<Self> {
        Some(match name.as_bytes() {
            b"-h" | b"--help" => Self::Help,
            b"--pidfile" => Self::Pidfile,
            b"--log" | b"--log-file" => Self::Log,
            b"--stop-timeout" => Self::StopTimeout,
            b"--reload-timeout" => Self::ReloadTimeout,
            b"--foreground" => Self::Foreground,
            b"--background" => Self::Background,
            b"--no-init" => Self::NoInit,
            _ => return None,
        })
    }

    /// The name errors give it.
    fn name(self) -> &'static str {
        match self {
            Self::Help => "--help",
            Self::Pidfile => "--pidfile",
            Self::Log => "--log",
            Self::StopTimeout => "--stop-timeout",
            Self::ReloadTimeout => "--reload-timeout",
            Self::Foreground => "--foreground",
            Self::Background => "--background",
            Self::NoInit => "--no-init",
        }
    }

    /// Whether `self` and `other` ask for opposite things.
    fn contradicts(self, other: Self) -> bool {
        matches!(
            (self, other),
            (Self::Foreground, Self::Background) | (Self::Background, Self::Foreground)
        )
    }

    fn takes_value(self) -> bool {
        matches!(
            self,
            Self::Pidfile | Self::Log | Self::StopTimeout | Self::ReloadTimeout
        )
    }
}

/// `--name=value` as the name and the value; anything else as itself, without a value.
fn split_option(arg: &OsStr) -> (&OsStr, Option<&OsStr>) {
    let bytes = arg.as_bytes();
    match bytes.iter().position(|&b| b == b'=') {
        Some(at) if bytes.starts_with(b"--") => (
            OsStr::from_bytes(&bytes[..at]),
            Some(OsStr::from_bytes(&bytes[at + 1..])),
        ),
        _ => (arg, None),
    }
}

/// A path option's value: any bytes but none.
fn path(option: Flag, value: OsString) -> Result<PathBuf, UsageError> {
    if value.is_empty() {
        return Err(UsageError::InvalidValue {
            option: option.name(),
            value,
            expected: "a path",
        });
    }
    Ok(PathBuf::from(value))
}

/// A duration option's value: seconds, a fraction allowed, as long as a `Duration` holds.
fn seconds(option: Flag, value: OsString) -> Result<Duration, UsageError> {
    value
        .to_str()
        .and_then(|text| text.parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or(UsageError::InvalidValue {
            option: option.name(),
            value,
            expected: "a number of seconds (0 or more, below 2^64)",
        })
}

/// Performs an action that needs no daemon value on `instance`, prints the outcome, returns
/// the exit code. `hooks` are the daemon's ([`Daemon::hooks`]): a signal's line names its
/// hook only when the daemon declared one.
fn act(instance: &Instance, action: Action, hooks: &[&str]) -> Exit {
    let config = instance.config();
    let signalled = |sent: Result<(), DaemonError>, signal: &str, hook: &str| {
        sent.map(|()| {
            if hooks.contains(&hook) {
                format!("sent {signal} ({hook})")
            } else {
                format!("sent {signal}")
            }
        })
    };
    let outcome = match action {
        Action::Start | Action::Restart => {
            unreachable!("start and restart need the daemon value")
        }
        Action::Stop => instance.stop().map(|outcome| match outcome {
            StopOutcome::Graceful => "stopped".to_owned(),
            StopOutcome::GraceExpired => format!(
                "stopped (run did not return within the stop grace of {:?}; atexit ran)",
                config.grace()
            ),
            StopOutcome::Killed => format!(
                "stopped (killed with SIGKILL after ignoring SIGTERM for {:?})",
                config.stop_timeout
            ),
            StopOutcome::NotRunning => "not running".to_owned(),
            StopOutcome::Requested => "stopping (asked from inside the daemon)".to_owned(),
        }),
        Action::Reload => instance
            .reload()
            .map(|()| "reloaded (log reopened, on_reload done)".to_owned()),
        Action::User1 => signalled(instance.signal_user1(), "SIGUSR1", "on_user1"),
        Action::User2 => signalled(instance.signal_user2(), "SIGUSR2", "on_user2"),
        Action::Status => return status(instance),
    };
    finish(outcome)
}

/// Prints an action's line, or its error on stderr; the exit code: not running is
/// [`Exit::NotRunningAction`] (only the actions that need the daemon running fail so).
fn finish(outcome: Result<String, DaemonError>) -> Exit {
    match outcome {
        Ok(line) => {
            say(&line);
            Exit::Success
        }
        Err(error) => {
            eprintln!("error: {error}");
            match error {
                DaemonError::NotRunning { .. } => Exit::NotRunningAction,
                _ => Exit::Failure,
            }
        }
    }
}

/// `status`: prints the daemon's state, returns its exit code.
fn status(instance: &Instance) -> Exit {
    let (line, exit) = match instance.status() {
        Ok(status @ Status::Running { .. }) => (status.to_string(), Exit::Success),
        Ok(Status::Stale { pid }) => (
            format!(
                "not running (stale pidfile {}{})",
                instance.config().pidfile.display(),
                pid.map(|pid| format!(", pid {pid}")).unwrap_or_default()
            ),
            Exit::Failure,
        ),
        Ok(status @ Status::Stopped) => (status.to_string(), Exit::NotRunning),
        Ok(status @ Status::RunningElsewhere { .. }) => (status.to_string(), Exit::Success),
        Err(error) => {
            eprintln!("error: status unknown: {error}");
            return Exit::Unknown;
        }
    };
    say(&line);
    exit
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn usage(program: &str, config: &Config) -> String {
    let log = config
        .log_file
        .as_ref()
        .map_or_else(|| "/dev/null".to_owned(), |path| path.display().to_string());
    format!(
        "usage: {program} [OPTIONS] ACTION

actions:
  start    start the daemon; returns once it is ready (exit 0, also when it already runs);
           under a service manager (NOTIFY_SOCKET set, or this process is pid 1) it runs in the
           foreground instead, telling the manager READY=1
  stop     stop it: SIGTERM, then SIGKILL after the stop timeout (exit 0, also when not running)
  restart  start a new one with its sockets, then stop the old one
  status   tell whether it runs: exit 0 running, 1 dead with a stale pidfile, 3 not running,
           4 cannot tell
  reload   it reopens its log file and runs its on_reload hook; waits for the outcome
           (exit 1 with the hook's error when it failed, 7 when not running)
  user1    send it SIGUSR1 (its on_user1 hook; exit 7 when not running)
  user2    send it SIGUSR2 (its on_user2 hook; exit 7 when not running)

options:
  --pidfile PATH         its pidfile (default {pidfile})
  --log PATH             append its stdout and stderr to PATH (default {log})
  --stop-timeout SECS    how long stop waits after SIGTERM (default {timeout:?})
  --reload-timeout SECS  how long reload waits for the daemon's answer (default {reload:?})
  --foreground           start: run in this process, for a supervisor (the default under one)
  --background           start: fork a daemon even under a supervisor
  --no-init              start as pid 1 (a container): be pid 1 itself, without the
                         init that reaps orphans and forwards signals to the daemon
  -h, --help             this text

exit codes, as for init scripts: 0 success, 1 failure (the error is printed on stderr),
2 wrong arguments, 3 not running (status), 4 status unknown, 7 not running (reload, user1,
user2)",
        pidfile = config.pidfile.display(),
        timeout = config.stop_timeout,
        reload = config.reload_timeout,
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    fn parsed(args: &[&str]) -> Result<Request, UsageError> {
        parse(args)
    }

    fn invocation(action: Action) -> Invocation {
        Invocation::new(action)
    }

    /// A daemon the tests never start: they only parse, and read pidfiles.
    struct Never;

    impl Daemon for Never {
        fn run(&self) -> Result<(), crate::daemon::HookError> {
            unreachable!("the cli tests start no daemon")
        }
    }

    fn code(args: &[&OsStr]) -> Exit {
        let pidfile = std::env::temp_dir().join(format!("deluxe-cli-{}.pid", std::process::id()));
        let controller = Controller::with_config(Never, crate::daemon::Config::new(pidfile));
        run(
            controller,
            [OsStr::new("never")].iter().chain(args).copied(),
        )
    }

    #[test]
    fn actions_and_options_in_any_order() {
        assert_eq!(
            parsed(&[
                "--pidfile",
                "/tmp/p",
                "start",
                "--log=/tmp/l",
                "--stop-timeout",
                "2.5",
                "--reload-timeout=90"
            ]),
            Ok(Request::Act(Invocation {
                pidfile: Some("/tmp/p".into()),
                log_file: Some("/tmp/l".into()),
                stop_timeout: Some(Duration::from_millis(2500)),
                reload_timeout: Some(Duration::from_secs(90)),
                ..invocation(Action::Start)
            }))
        );
        assert_eq!(
            parsed(&["start", "--foreground"]),
            Ok(Request::Act(Invocation {
                foreground: Some(true),
                ..invocation(Action::Start)
            }))
        );
        assert_eq!(
            parsed(&["--background", "start"]),
            Ok(Request::Act(Invocation {
                foreground: Some(false),
                ..invocation(Action::Start)
            }))
        );
        assert_eq!(
            parsed(&["--no-init", "start"]),
            Ok(Request::Act(Invocation {
                no_init: true,
                ..invocation(Action::Start)
            }))
        );
        assert_eq!(parsed(&["status", "--help"]), Ok(Request::Help));
    }

    /// An option as its arguments, and what it sets.
    type Given = (Vec<&'static str>, fn(&mut Invocation));

    /// The options a command line may give.
    fn option() -> impl Strategy<Value = Given> {
        let options: Vec<Given> = vec![
            (vec!["--foreground"], |i| i.foreground = Some(true)),
            (vec!["--background"], |i| i.foreground = Some(false)),
            (vec!["--no-init"], |i| i.no_init = true),
            (vec!["--pidfile=/tmp/p"], |i| {
                i.pidfile = Some("/tmp/p".into());
            }),
            (vec!["--pidfile", "/tmp/q"], |i| {
                i.pidfile = Some("/tmp/q".into());
            }),
            (vec!["--log=/tmp/l"], |i| i.log_file = Some("/tmp/l".into())),
            (vec!["--log", "/tmp/x"], |i| {
                i.log_file = Some("/tmp/x".into());
            }),
            (vec!["--log-file", "/tmp/y"], |i| {
                i.log_file = Some("/tmp/y".into());
            }),
            (vec!["--stop-timeout=1.5"], |i| {
                i.stop_timeout = Some(Duration::from_millis(1500));
            }),
            (vec!["--stop-timeout", "0"], |i| {
                i.stop_timeout = Some(Duration::ZERO);
            }),
        ];
        proptest::sample::select(options)
    }

    proptest! {
        #[test]
        fn any_arguments_parse_without_panic(
            args in proptest::collection::vec(
                prop_oneof![
                    ".{0,12}".prop_map(OsString::from),
                    proptest::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
                    proptest::sample::select(vec!["--pidfile", "--log", "--stop-timeout", "--foreground", "start"]).prop_map(OsString::from),
                ],
                0..6,
            )
        ) {
            let _ = parse(args);
        }

        #[test]
        fn every_stop_timeout_parses_or_is_a_usage_error(
            value in prop_oneof![
                any::<f64>().prop_map(|seconds| seconds.to_string()),
                (0u32..400).prop_map(|exponent| format!("1e{exponent}")),
                ".{0,12}",
            ]
        ) {
            match parse(["--stop-timeout", value.as_str(), "stop"]) {
                Ok(Request::Act(Invocation { stop_timeout: Some(timeout), .. })) => {
                    let seconds: f64 = value.parse().unwrap();
                    prop_assert!((timeout.as_secs_f64() - seconds).abs() <= seconds * 1e-9 + 1e-9);
                }
                Err(UsageError::InvalidValue { option: "--stop-timeout", .. }) => {}
                other => prop_assert!(false, "{value:?}: {other:?}"),
            }
        }

        #[test]
        fn one_action_among_known_options_always_parses(
            action in proptest::sample::select(Action::ALL.to_vec()),
            before in proptest::collection::vec(option(), 0..4),
            after in proptest::collection::vec(option(), 0..4),
        ) {
            let (word, action) = action;
            let mut expected = invocation(action);
            let mut args = Vec::new();
            // Each setting once: a second value, or both modes, is a usage error.
            let mut given = Vec::new();
            let mut once = |option_args: &[&'static str]| {
                let setting = match option_args[0].split('=').next().unwrap() {
                    "--background" => "--foreground",
                    "--log-file" => "--log",
                    name => name,
                };
                let new = !given.contains(&setting);
                given.push(setting);
                new
            };
            for (option_args, set) in before.iter().filter(|(option_args, _)| once(option_args)) {
                args.extend(option_args.iter().copied());
                set(&mut expected);
            }
            args.push(word);
            for (option_args, set) in after.iter().filter(|(option_args, _)| once(option_args)) {
                args.extend(option_args.iter().copied());
                set(&mut expected);
            }
            prop_assert_eq!(parsed(&args), Ok(Request::Act(expected)), "{:?}", args);
        }
    }

    #[test]
    fn mistakes_are_typed_usage_errors() {
        let os = OsString::from;
        for (args, error) in [
            (&[][..], UsageError::NoAction),
            (&["strat"], UsageError::UnknownAction { word: os("strat") }),
            (
                &["start", "stop"],
                UsageError::SecondAction { word: os("stop") },
            ),
            (
                &["--pidfile"],
                UsageError::MissingValue {
                    option: "--pidfile",
                },
            ),
            (
                &["stop", "--stop-timeout"],
                UsageError::MissingValue {
                    option: "--stop-timeout",
                },
            ),
            (
                &["--frobnicate", "start"],
                UsageError::UnknownOption {
                    option: os("--frobnicate"),
                },
            ),
            (
                &["--frob=1", "start"],
                UsageError::UnknownOption {
                    option: os("--frob"),
                },
            ),
            (&["-h=1"], UsageError::UnknownOption { option: os("-h=1") }),
            (
                &["--foreground=yes", "start"],
                UsageError::UnexpectedValue {
                    option: "--foreground",
                    value: os("yes"),
                },
            ),
            (
                &["--help=me"],
                UsageError::UnexpectedValue {
                    option: "--help",
                    value: os("me"),
                },
            ),
            (
                &["--pidfile=", "start"],
                UsageError::InvalidValue {
                    option: "--pidfile",
                    value: os(""),
                    expected: "a path",
                },
            ),
            (
                &["--log", "", "start"],
                UsageError::InvalidValue {
                    option: "--log",
                    value: os(""),
                    expected: "a path",
                },
            ),
            (
                &["--foreground", "--background", "start"],
                UsageError::ConflictingOptions {
                    first: "--foreground",
                    second: "--background",
                },
            ),
            (
                &["start", "--background", "--foreground"],
                UsageError::ConflictingOptions {
                    first: "--background",
                    second: "--foreground",
                },
            ),
            (
                &["--pidfile=/a", "stop", "--pidfile", "/b"],
                UsageError::RepeatedOption {
                    option: "--pidfile",
                },
            ),
            (
                &["--log", "/a", "--log-file=/b", "start"],
                UsageError::RepeatedOption { option: "--log" },
            ),
        ] {
            assert_eq!(parsed(args), Err(error), "{args:?}");
        }
        for value in ["soon", "-1", "NaN", "inf", "1e20", "", " 1"] {
            assert!(
                matches!(
                    parsed(&["--stop-timeout", value, "stop"]),
                    Err(UsageError::InvalidValue {
                        option: "--stop-timeout",
                        ..
                    })
                ),
                "{value:?}"
            );
        }
    }

    #[test]
    fn usage_errors_say_what_is_wrong_on_one_line() {
        let said = |args: &[&str]| parsed(args).unwrap_err().to_string();
        assert_eq!(
            said(&[]),
            "no action given; expected one of: start, stop, restart, status, reload, user1, user2"
        );
        assert_eq!(
            said(&["strat"]),
            "unknown action \"strat\"; expected one of: start, stop, restart, status, reload, user1, user2"
        );
        assert_eq!(
            said(&["start", "stop"]),
            "one action at a time: \"stop\" is a second one"
        );
        assert_eq!(said(&["--pidfile"]), "--pidfile needs a value");
        assert_eq!(
            said(&["--frobnicate"]),
            "unknown option --frobnicate; see --help for the options"
        );
        assert_eq!(
            said(&["--background=1"]),
            "--background takes no value, not \"1\""
        );
        assert_eq!(
            said(&["--stop-timeout", "1e20", "stop"]),
            "--stop-timeout takes a number of seconds (0 or more, below 2^64), not \"1e20\""
        );
        assert_eq!(
            said(&["--pidfile=", "stop"]),
            "--pidfile takes a path, not \"\""
        );
        let not_utf8 = parse([OsString::from_vec(b"st\xffrt".to_vec())]).unwrap_err();
        assert_eq!(
            not_utf8.to_string(),
            "unknown action \"st\\xFFrt\"; expected one of: start, stop, restart, status, reload, user1, user2"
        );
        for error in [not_utf8, parsed(&["--log"]).unwrap_err()] {
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }

    #[test]
    fn a_stop_timeout_too_large_for_a_duration_exits_2_not_101() {
        assert_eq!(
            code(&[
                OsStr::new("--stop-timeout"),
                OsStr::new("1e20"),
                OsStr::new("stop")
            ]),
            Exit::Usage
        );
        assert_eq!(
            code(&[OsStr::new("--foreground=no"), OsStr::new("start")]),
            Exit::Usage
        );
    }

    #[test]
    fn exit_codes_are_lsb_numbers_and_exit_codes() {
        for (exit, code) in [
            (Exit::Success, 0),
            (Exit::Failure, 1),
            (Exit::Usage, 2),
            (Exit::NotRunning, 3),
            (Exit::Unknown, 4),
            (Exit::NotRunningAction, 7),
        ] {
            assert_eq!(exit.code(), code);
            assert_eq!(ExitCode::from(exit), ExitCode::from(code));
            assert_eq!(exit.report(), ExitCode::from(code));
        }
    }

    #[test]
    fn actions_that_need_it_running_exit_7_alike_through_a_controller_and_an_instance() {
        let pidfile = std::env::temp_dir().join(format!("deluxe-cli-7-{}.pid", std::process::id()));
        let instance = Instance::new(crate::daemon::Config::new(&pidfile));
        for action in [Action::Reload, Action::User1, Action::User2] {
            let word = OsStr::new(action.name());
            assert_eq!(code(&[word]), Exit::NotRunningAction, "{word:?}");
            let invocation = Invocation::new(action);
            assert_eq!(
                execute_instance(&instance, &invocation),
                Exit::NotRunningAction,
                "{word:?}"
            );
        }
        let status = Invocation::new(Action::Status);
        assert_eq!(execute_instance(&instance, &status), Exit::NotRunning);
        // The command line's overrides apply to an instance too.
        let elsewhere = Invocation {
            pidfile: Some(pidfile.with_extension("other")),
            ..Invocation::new(Action::Stop)
        };
        assert_eq!(execute_instance(&instance, &elsewhere), Exit::Success);
    }

    #[test]
    fn starting_an_instance_is_a_usage_error() {
        let instance = Instance::new(crate::daemon::Config::new("/nonexistent/x.pid"));
        for action in [Action::Start, Action::Restart] {
            assert_eq!(
                execute_instance(&instance, &Invocation::new(action)),
                Exit::Usage
            );
            let error = UsageError::NeedsDaemon { action }.to_string();
            assert!(
                error.starts_with(&format!("{} needs the daemon's program", action.name())),
                "{error}"
            );
        }
    }

    /// A program with its own `--config` flag, deluxe's arguments flattened into it.
    #[cfg(feature = "clap")]
    #[test]
    fn the_arguments_flatten_into_a_clap_command_with_its_own_flags() {
        use clap::{Arg, Args, FromArgMatches};

        let command = Invocation::augment_args(
            clap::Command::new("worker").arg(Arg::new("config").long("config")),
        );
        let parse = |args: &[&str]| {
            command
                .clone()
                .try_get_matches_from([&"worker"].into_iter().chain(args))
                .and_then(|matches| {
                    let invocation = Invocation::from_arg_matches(&matches)?;
                    let config = matches.get_one::<String>("config").cloned();
                    Ok((config, invocation))
                })
        };
        let (config, got) = parse(&[
            "--config",
            "/etc/w.toml",
            "--pidfile=/tmp/p",
            "stop",
            "--stop-timeout",
            "2.5",
            "--log-file",
            "/tmp/l",
        ])
        .unwrap();
        assert_eq!(config.as_deref(), Some("/etc/w.toml"));
        assert_eq!(
            got,
            Invocation {
                pidfile: Some("/tmp/p".into()),
                log_file: Some("/tmp/l".into()),
                stop_timeout: Some(Duration::from_millis(2500)),
                ..invocation(Action::Stop)
            }
        );
        let (_, got) = parse(&["--background", "--no-init", "start"]).unwrap();
        assert_eq!((got.foreground, got.no_init), (Some(false), true));
        let (_, got) = parse(&["--reload-timeout", "0", "reload", "--foreground"]).unwrap();
        assert_eq!(got.reload_timeout, Some(Duration::ZERO));
        assert_eq!(got.foreground, Some(true));
        for wrong in [
            &["strat"][..],
            &[],
            &["stop", "--stop-timeout", "1e20"],
            &["stop", "--pidfile="],
            &["start", "--foreground", "--background"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn a_pidfile_that_is_not_utf8_is_used_as_given() {
        let dir = std::env::temp_dir().join(format!("deluxe-cli-utf8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut name = b"caf\xe9-".to_vec();
        name.extend_from_slice(std::process::id().to_string().as_bytes());
        let pidfile = dir.join(OsString::from_vec(name));
        assert_eq!(
            parse([
                OsStr::new("--pidfile"),
                pidfile.as_os_str(),
                OsStr::new("status")
            ]),
            Ok(Request::Act(Invocation {
                pidfile: Some(pidfile.clone()),
                ..invocation(Action::Status)
            }))
        );
        let status = |pidfile: &Path| {
            code(&[
                OsStr::new("--pidfile"),
                pidfile.as_os_str(),
                OsStr::new("status"),
            ])
        };
        assert_eq!(status(&pidfile), Exit::NotRunning);
        // A pidfile nobody holds, at exactly that path: status finds it (a lossy path would
        // not), and says "stale".
        std::fs::write(&pidfile, "999999\n").unwrap();
        assert_eq!(status(&pidfile), Exit::Failure);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
