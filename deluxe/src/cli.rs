//! A command line for a daemon: `PROGRAM [OPTIONS] start|stop|restart|status|user1|user2`,
//! with the exit codes of LSB init scripts, so that a program is its own init script.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! #[deluxe::daemon(pidfile = "/run/worker.pid")]
//! #[derive(Default)]
//! struct Worker;
//!
//! #[deluxe::daemon]
//! impl Worker {
//!     fn run(&self) {
//!         deluxe::process::daemon::wait_for_stop(std::time::Duration::MAX);
//!     }
//! }
//!
//! fn main() -> ExitCode {
//!     Worker::controller().cli()
//! }
//! ```
//!
//! | action | prints | exit code |
//! |---|---|---|
//! | `start` | `started (pid N)`, or `already running (pid N)` | 0; 1 on failure |
//! | `stop` | `stopped`, `stopped (killed ...)`, or `not running` | 0; 1 on failure |
//! | `restart` | `restarted (pid N)` | 0; 1 on failure |
//! | `status` | `running (pid N)` / `not running (stale pidfile ...)` / `not running` | 0 / 1 / 3; 4 when it cannot tell |
//! | `user1`, `user2` | `sent SIGUSR1 (on_user1)` | 0; 1 when not running or on failure |
//!
//! Failures print the error's message on stderr. Wrong arguments print the usage on stderr
//! and exit 2; `--help` prints it on stdout and exits 0.
//!
//! Under a service manager ([`crate::process::daemon::supervised`]: systemd,
//! `start-stop-daemon --notify-await`, a container's pid 1), `start` runs the daemon in the
//! foreground ([`Controller::run_foreground`]) instead of forking, as daemon(7) recommends;
//! `--foreground` and `--background` force either way.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::process::daemon::{Controller, Daemon, DaemonError, Status, StopOutcome, supervised};

/// Exit code: success.
///
/// ```
/// assert_eq!(deluxe::cli::SUCCESS, 0);
/// ```
pub const SUCCESS: u8 = 0;
/// Exit code: the action failed (and, for `status`: the daemon is dead but its pidfile exists).
///
/// ```
/// assert_eq!(deluxe::cli::FAILURE, 1);
/// ```
pub const FAILURE: u8 = 1;
/// Exit code: wrong arguments.
///
/// ```
/// assert_eq!(deluxe::cli::USAGE, 2);
/// ```
pub const USAGE: u8 = 2;
/// Exit code of `status`: the daemon is not running.
///
/// ```
/// assert_eq!(deluxe::cli::NOT_RUNNING, 3);
/// ```
pub const NOT_RUNNING: u8 = 3;
/// Exit code of `status`: the status cannot be told (the pidfile cannot be read).
///
/// ```
/// assert_eq!(deluxe::cli::UNKNOWN, 4);
/// ```
pub const UNKNOWN: u8 = 4;

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Help,
    Act {
        action: Action,
        pidfile: Option<PathBuf>,
        log_file: Option<PathBuf>,
        stop_timeout: Option<Duration>,
        /// `Some(true)`: `--foreground`; `Some(false)`: `--background`; `None`: detect.
        foreground: Option<bool>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Start,
    Stop,
    Restart,
    Status,
    User1,
    User2,
}

impl Action {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "start" => Self::Start,
            "stop" => Self::Stop,
            "restart" => Self::Restart,
            "status" => Self::Status,
            "user1" => Self::User1,
            "user2" => Self::User2,
            _ => return None,
        })
    }
}

/// Runs the command line `args` (the program's name first, as `std::env::args_os` gives it)
/// against `controller`, printing the outcome; returns the exit code.
///
/// ```no_run
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// let code = deluxe::cli::run(Worker::controller(), ["worker", "--pidfile", "/tmp/w.pid", "status"]);
/// ```
pub fn run<D, I, A>(controller: Controller<D>, args: I) -> ExitCode
where
    D: Daemon,
    I: IntoIterator<Item = A>,
    A: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let program = args
        .next()
        .map(|name| {
            Path::new(&name).file_name().map_or_else(
                || name.to_string_lossy().into_owned(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .unwrap_or_else(|| "daemon".to_owned());
    let request = match parse(args) {
        Ok(request) => request,
        Err(problem) => {
            eprintln!("{program}: {problem}\n\n{}", usage(&program, &controller));
            return ExitCode::from(USAGE);
        }
    };
    let Request::Act {
        action,
        pidfile,
        log_file,
        stop_timeout,
        foreground,
    } = request
    else {
        println!("{}", usage(&program, &controller));
        return ExitCode::from(SUCCESS);
    };
    let mut controller = controller;
    if let Some(pidfile) = pidfile {
        controller = controller.pidfile(pidfile);
    }
    if let Some(log_file) = log_file {
        controller = controller.log_file(log_file);
    }
    if let Some(timeout) = stop_timeout {
        controller = controller.stop_timeout(timeout);
    }
    if action == Action::Start && foreground.unwrap_or_else(supervised) {
        let Err(error) = controller.run_foreground();
        return match error {
            DaemonError::AlreadyRunning { pid, .. } => {
                say(&format!("already running (pid {pid})"));
                ExitCode::from(SUCCESS)
            }
            error => {
                eprintln!("error: {error}");
                ExitCode::from(FAILURE)
            }
        };
    }
    ExitCode::from(act(&controller, action))
}

/// [`run`] with this process's command line.
///
/// ```no_run
/// # #[deluxe::daemon] #[derive(Default)] struct Worker;
/// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
/// fn main() -> std::process::ExitCode {
///     deluxe::cli::main(Worker::controller())
/// }
/// ```
pub fn main<D: Daemon>(controller: Controller<D>) -> ExitCode {
    run(controller, std::env::args_os())
}

impl<D: Daemon> Controller<D> {
    /// Runs this process's command line against the daemon: `start`, `stop`, `restart`,
    /// `status`, `user1`, `user2`, with `--pidfile`, `--log` and `--stop-timeout` overrides,
    /// and LSB init-script exit codes. See [`crate::cli`].
    ///
    /// ```no_run
    /// # #[deluxe::daemon] #[derive(Default)] struct Worker;
    /// # #[deluxe::daemon] impl Worker { fn run(&self) {} }
    /// fn main() -> std::process::ExitCode {
    ///     Worker::controller().cli()
    /// }
    /// ```
    pub fn cli(self) -> ExitCode {
        main(self)
    }
}

fn parse(args: impl Iterator<Item = OsString>) -> Result<Request, String> {
    let mut args = args.map(|arg| {
        arg.into_string()
            .map_err(|arg| format!("argument {arg:?} is not UTF-8"))
    });
    let mut action = None;
    let (mut pidfile, mut log_file, mut stop_timeout, mut foreground) = (None, None, None, None);
    while let Some(arg) = args.next() {
        let arg = arg?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline.clone() {
                Some(value) => Ok(value),
                None => args
                    .next()
                    .unwrap_or_else(|| Err(format!("{name} needs a value"))),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Request::Help),
            "--pidfile" => pidfile = Some(PathBuf::from(value("--pidfile")?)),
            "--foreground" => foreground = Some(true),
            "--background" => foreground = Some(false),
            "--log" | "--log-file" => log_file = Some(PathBuf::from(value("--log")?)),
            "--stop-timeout" => {
                let text = value("--stop-timeout")?;
                let seconds: f64 = text
                    .parse()
                    .ok()
                    .filter(|secs: &f64| secs.is_finite() && *secs >= 0.0)
                    .ok_or_else(|| format!("--stop-timeout takes seconds, not {text:?}"))?;
                stop_timeout = Some(Duration::from_secs_f64(seconds));
            }
            word if word.starts_with('-') => return Err(format!("unknown option {word}")),
            word => match (Action::parse(word), action) {
                (Some(parsed), None) => action = Some(parsed),
                (Some(_), Some(_)) => {
                    return Err(format!("one action at a time: {word:?} is a second one"));
                }
                (None, _) => return Err(format!("unknown action {word:?}")),
            },
        }
    }
    let action = action.ok_or("no action given")?;
    Ok(Request::Act {
        action,
        pidfile,
        log_file,
        stop_timeout,
        foreground,
    })
}

/// Performs the action, prints the outcome, returns the exit code.
fn act<D: Daemon>(controller: &Controller<D>, action: Action) -> u8 {
    let pidfile = &controller.config().pidfile;
    let outcome: Result<String, DaemonError> = match action {
        Action::Start => match controller.start() {
            Ok(pid) => Ok(format!("started (pid {pid})")),
            Err(DaemonError::AlreadyRunning { pid, .. }) => {
                Ok(format!("already running (pid {pid})"))
            }
            Err(error) => Err(error),
        },
        Action::Stop => controller.stop().map(|outcome| match outcome {
            StopOutcome::Graceful => "stopped".to_owned(),
            StopOutcome::Killed => format!(
                "stopped (killed with SIGKILL after ignoring SIGTERM for {:?})",
                controller.config().stop_timeout
            ),
            StopOutcome::NotRunning => "not running".to_owned(),
        }),
        Action::Restart => controller
            .restart()
            .map(|pid| format!("restarted (pid {pid})")),
        Action::User1 => controller
            .signal_user1()
            .map(|()| "sent SIGUSR1 (on_user1)".to_owned()),
        Action::User2 => controller
            .signal_user2()
            .map(|()| "sent SIGUSR2 (on_user2)".to_owned()),
        Action::Status => {
            let (line, code) = match controller.status() {
                Ok(Status::Running { pid }) => (format!("running (pid {pid})"), SUCCESS),
                Ok(Status::Stale { pid }) => (
                    format!(
                        "not running (stale pidfile {}{})",
                        pidfile.display(),
                        pid.map(|pid| format!(", pid {pid}")).unwrap_or_default()
                    ),
                    FAILURE,
                ),
                Ok(Status::Stopped) => ("not running".to_owned(), NOT_RUNNING),
                Err(error) => {
                    eprintln!("error: status unknown: {error}");
                    return UNKNOWN;
                }
            };
            say(&line);
            return code;
        }
    };
    match outcome {
        Ok(line) => {
            say(&line);
            SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            FAILURE
        }
    }
}

fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

fn usage<D: Daemon>(program: &str, controller: &Controller<D>) -> String {
    let config = controller.config();
    let log = config
        .log_file
        .as_ref()
        .map_or_else(|| "/dev/null".to_owned(), |path| path.display().to_string());
    format!(
        "usage: {program} [OPTIONS] ACTION

actions:
  start    start the daemon; returns once it is ready (exit 0, also when it already runs);
           under a service manager (NOTIFY_SOCKET set, parent or self pid 1) it runs in the
           foreground instead, telling the manager READY=1
  stop     stop it: SIGTERM, then SIGKILL after the stop timeout (exit 0, also when not running)
  restart  stop it if it runs, then start it
  status   tell whether it runs: exit 0 running, 1 dead with a stale pidfile, 3 not running,
           4 cannot tell
  user1    send it SIGUSR1 (its on_user1 hook)
  user2    send it SIGUSR2 (its on_user2 hook)

options:
  --pidfile PATH         its pidfile (default {pidfile})
  --log PATH             append its stdout and stderr to PATH (default {log})
  --stop-timeout SECS    how long stop waits after SIGTERM (default {timeout:?})
  --foreground           start: run in this process, for a supervisor (the default under one)
  --background           start: fork a daemon even under a supervisor
  -h, --help             this text

exit codes, as for init scripts: 0 success, 1 failure (the error is printed on stderr),
2 wrong arguments, 3 not running (status), 4 status unknown",
        pidfile = config.pidfile.display(),
        timeout = config.stop_timeout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<Request, String> {
        parse(args.iter().map(OsString::from))
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
                "2.5"
            ]),
            Ok(Request::Act {
                action: Action::Start,
                pidfile: Some("/tmp/p".into()),
                log_file: Some("/tmp/l".into()),
                stop_timeout: Some(Duration::from_millis(2500)),
                foreground: None,
            })
        );
        assert!(matches!(
            parsed(&["start", "--foreground"]),
            Ok(Request::Act {
                foreground: Some(true),
                ..
            })
        ));
        assert!(matches!(
            parsed(&["--background", "start"]),
            Ok(Request::Act {
                foreground: Some(false),
                ..
            })
        ));
        assert_eq!(parsed(&["status", "--help"]), Ok(Request::Help));
    }

    proptest::proptest! {
        #[test]
        fn any_arguments_parse_without_panic(args in proptest::collection::vec(".{0,12}", 0..6)) {
            let _ = parse(args.into_iter().map(OsString::from));
        }

        #[test]
        fn one_action_among_known_options_always_parses(
            action in proptest::sample::select(vec!["start", "stop", "restart", "status", "user1", "user2"]),
            before in proptest::collection::vec(proptest::sample::select(vec!["--foreground", "--background", "--log=/tmp/l", "--pidfile=/tmp/p"]), 0..3),
            after in proptest::collection::vec(proptest::sample::select(vec!["--stop-timeout=1.5", "--log", "/tmp/x"]), 0..1),
        ) {
            let mut args: Vec<&str> = before;
            args.push(action);
            args.extend(after.iter().filter(|a| a.starts_with("--stop")));
            let request = parsed(&args);
            proptest::prop_assert!(
                matches!(request, Ok(Request::Act { action: parsed, .. }) if Some(parsed) == Action::parse(action)),
                "{args:?}: {request:?}"
            );
        }
    }

    #[test]
    fn mistakes_are_usage_errors() {
        assert_eq!(parsed(&[]), Err("no action given".into()));
        assert_eq!(parsed(&["strat"]), Err("unknown action \"strat\"".into()));
        assert_eq!(
            parsed(&["start", "stop"]),
            Err("one action at a time: \"stop\" is a second one".into())
        );
        assert_eq!(
            parsed(&["--pidfile"]),
            Err("--pidfile needs a value".into())
        );
        assert_eq!(
            parsed(&["--frobnicate", "start"]),
            Err("unknown option --frobnicate".into())
        );
        assert_eq!(
            parsed(&["--stop-timeout", "soon", "stop"]),
            Err("--stop-timeout takes seconds, not \"soon\"".into())
        );
    }
}
