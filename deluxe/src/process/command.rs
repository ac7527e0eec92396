//! System commands: resolved once, never run through a shell, optionally as another user.
//!
//! Works on Unix and Windows. On Windows, names are looked up with `PATHEXT` (`cmd` finds
//! `cmd.exe`), [`Command::user`] is always an error, and a crashed program is a
//! [`CommandError::Crashed`] rather than a [`CommandError::Signal`].

#[cfg(feature = "tokio")]
mod asynchronous;
mod error;
#[cfg(unix)]
mod pump;
#[cfg(windows)]
mod windows;

use std::ffi::{OsStr, OsString};
use std::io;
#[cfg(unix)]
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

pub use error::{CommandError, STDERR_CAP};

#[cfg(unix)]
use crate::process::names::{check_program, check_user_name};
#[cfg(windows)]
pub use windows::{DEFAULT_PATH, DEFAULT_PATHEXT};
#[cfg(windows)]
use windows::{NoSignals as _, check_program, find_executable, pump, signal_name};

/// The search path used when `PATH` is not set.
///
/// ```
/// use deluxe::process::command::DEFAULT_PATH;
/// assert!(std::env::split_paths(DEFAULT_PATH).all(|dir| dir.is_absolute()));
/// ```
#[cfg(unix)]
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// No arguments, for [`Command::call`].
///
/// ```
/// use deluxe::process::{Command, NO_ARGS};
/// assert_eq!(Command::new("true")?.call(NO_ARGS)?, b"");
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
pub const NO_ARGS: [&str; 0] = [];

/// A system command, resolved to an absolute path when it is built.
///
/// A `Command` is never run through a shell: every argument reaches the program byte for byte,
/// whatever it contains. With [`Command::user`] it runs as another user, through
/// `sudo -n -u USER -- /absolute/program ARGS...`.
///
/// ```
/// use deluxe::process::Command;
///
/// let ls = Command::new("ls")?;
/// let listing = ls.call(["-a", "/"])?;
/// assert!(String::from_utf8_lossy(&listing).lines().any(|name| name == "tmp"));
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Command {
    name: OsString,
    program: PathBuf,
    run_as: Option<RunAs>,
}

/// The account a command runs as, with the helpers needed to get there.
#[derive(Clone, Debug)]
struct RunAs {
    user: String,
    sudo: PathBuf,
    env: PathBuf,
}

impl Command {
    /// Finds `name` on `PATH` (or checks it, when it is an absolute path).
    ///
    /// Relative directories in `PATH` are skipped: a command must not depend on the working
    /// directory of whoever runs it.
    ///
    /// # Errors
    ///
    /// [`CommandError::InvalidProgram`] when the name can name no program (empty, whitespace,
    /// shell syntax, relative path), [`CommandError::NotFound`] (naming every directory
    /// searched) or [`CommandError::NotExecutable`].
    ///
    /// ```
    /// use deluxe::process::{Command, CommandError};
    ///
    /// assert!(Command::new("ls")?.program().is_absolute());
    /// assert!(matches!(
    ///     Command::new("no-such-program-here"),
    ///     Err(CommandError::NotFound { .. })
    /// ));
    /// # Ok::<(), CommandError>(())
    /// ```
    pub fn new(name: impl AsRef<OsStr>) -> Result<Self, CommandError> {
        let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        let directories = std::env::split_paths(&path).filter(|dir| dir.is_absolute());
        Self::resolve(name.as_ref(), directories.collect())
    }

    /// Finds `name` in `path`: one directory, or a `PATH`-like list of them separated by `:`
    /// (`;` on Windows).
    ///
    /// # Errors
    ///
    /// As [`Command::new`], plus [`CommandError::InvalidSearchPath`] when a directory is not
    /// absolute.
    ///
    /// ```
    /// use deluxe::process::Command;
    ///
    /// let ls = Command::with_path("ls", "/usr/local/bin:/usr/bin:/bin")?;
    /// assert!(ls.program().ends_with("ls"));
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn with_path(
        name: impl AsRef<OsStr>,
        path: impl AsRef<OsStr>,
    ) -> Result<Self, CommandError> {
        let directories: Vec<PathBuf> = std::env::split_paths(path.as_ref()).collect();
        if let Some(relative) = directories.iter().find(|dir| !dir.is_absolute()) {
            return Err(CommandError::InvalidSearchPath {
                path: relative.clone(),
            });
        }
        Self::resolve(name.as_ref(), directories)
    }

    fn resolve(name: &OsStr, directories: Vec<PathBuf>) -> Result<Self, CommandError> {
        check_program(name.as_encoded_bytes()).map_err(|problem| CommandError::InvalidProgram {
            program: name.to_string_lossy().into_owned(),
            problem,
        })?;
        let program = find_executable(name, directories)?;
        Ok(Self {
            name: name.to_owned(),
            program,
            run_as: None,
        })
    }

    /// Makes the command run as `user`, through `sudo -n -u USER --` (never prompting for a
    /// password: where `sudo` would need one, the command fails with `sudo`'s message).
    ///
    /// # Errors
    ///
    /// [`CommandError::InvalidUser`] when the name can name no account (so it can never reach
    /// `sudo` as an option), [`CommandError::UnknownUser`] when no such account exists,
    /// [`CommandError::SudoMissing`] when `sudo` is not installed.
    ///
    /// On Windows this is always [`CommandError::UserUnsupported`]: Windows has no
    /// passwordless way to run a program as another user.
    ///
    /// ```no_run
    /// use deluxe::process::Command;
    ///
    /// let whoami = Command::new("whoami")?.user("nobody")?;
    /// assert_eq!(whoami.call(deluxe::process::NO_ARGS)?, b"nobody\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    #[cfg(unix)]
    pub fn user(mut self, user: impl Into<String>) -> Result<Self, CommandError> {
        let user = user.into();
        if let Err(problem) = check_user_name(user.as_bytes()) {
            return Err(CommandError::InvalidUser { user, problem });
        }
        match nix::unistd::User::from_name(&user) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(CommandError::UnknownUser { user }),
            Err(errno) => {
                return Err(CommandError::Io {
                    program: self.program,
                    source: io::Error::new(
                        io::Error::from(errno).kind(),
                        format!("looking up user `{user}`: {errno}"),
                    ),
                });
            }
        }
        let sudo = match Self::new("sudo") {
            Ok(sudo) => sudo.program,
            Err(CommandError::NotFound { searched, .. }) => {
                return Err(CommandError::SudoMissing { searched });
            }
            Err(other) => return Err(other),
        };
        let env = Self::new("env")?.program;
        self.run_as = Some(RunAs { user, sudo, env });
        Ok(self)
    }

    /// The absolute path of the program.
    ///
    /// ```
    /// let sh = deluxe::process::Command::new("sh")?;
    /// assert!(sh.program().is_absolute() && sh.program().ends_with("sh"));
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The program's name as given to [`Command::new`]; the program sees it as its `argv[0]`.
    ///
    /// ```
    /// let ls = deluxe::process::Command::new("ls")?;
    /// assert_eq!(ls.name(), "ls");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// The user the command runs as, when one was set with [`Command::user`].
    ///
    /// ```
    /// let ls = deluxe::process::Command::new("ls")?;
    /// assert_eq!(ls.run_as(), None);
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_ref().map(|run_as| run_as.user.as_str())
    }

    /// Runs the command with `args` and returns its standard output.
    ///
    /// Standard input is empty (`/dev/null`); standard error is kept (its end) for the error.
    ///
    /// # Errors
    ///
    /// [`CommandError::Exit`] or [`CommandError::Signal`] when the program fails,
    /// [`CommandError::InvalidArgument`] for an argument holding a NUL byte,
    /// [`CommandError::Io`] when it cannot be started.
    ///
    /// ```
    /// use deluxe::process::Command;
    ///
    /// let echo = Command::new("echo")?;
    /// assert_eq!(echo.call(["$HOME", "; rm -rf /"])?, b"$HOME ; rm -rf /\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn call<I, S>(&self, args: I) -> Result<Vec<u8>, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.call_with(args, &CallOptions::new())
    }

    /// Runs the command with `args` and the given options (input, capture, working directory,
    /// environment) and returns its standard output (empty when not captured).
    ///
    /// Input is written while both output streams are read, so a program writing a lot to
    /// both while reading its input never deadlocks.
    ///
    /// # Errors
    ///
    /// As [`Command::call`], plus [`CommandError::WorkingDirectory`] when the working
    /// directory cannot be used.
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    ///
    /// let tr = Command::new("tr")?;
    /// let options = CallOptions::new().input("hello").cwd("/tmp").env([("LC_ALL", "C")]);
    /// assert_eq!(tr.call_with(["a-z", "A-Z"], &options)?, b"HELLO");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn call_with<I, S>(&self, args: I, options: &CallOptions) -> Result<Vec<u8>, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.prepare(args, options)?;
        let mut child = command.spawn().map_err(|error| self.spawn_error(error))?;
        let output = match pump::communicate(&mut child, options.input_bytes()) {
            Ok(output) => output,
            Err(error) => {
                // Leave no process behind: the child cannot be talked to any more.
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.io_error(error));
            }
        };
        let status = child.wait().map_err(|error| self.io_error(error))?;
        self.outcome(status, output.stdout, output.stderr.into_string())
    }

    /// The `std::process::Command` that runs this command: the program itself, or `sudo`
    /// (then `env -i`, when an environment is given) in front of it.
    fn prepare<I, S>(
        &self,
        args: I,
        options: &CallOptions,
    ) -> Result<std::process::Command, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        if let Some(env) = &options.env {
            check_environment(env)?;
        }
        let mut command = match &self.run_as {
            None => {
                // The program sees the name it was asked by, as when a shell runs it
                // (`ls: cannot access ..`, not `/usr/bin/ls: cannot access ..`).
                let mut command = std::process::Command::new(&self.program);
                #[cfg(unix)]
                command.arg0(&self.name);
                if let Some(env) = &options.env {
                    command
                        .env_clear()
                        .envs(env.iter().map(|(key, value)| (key, value)));
                }
                command
            }
            Some(run_as) => {
                // sudo resets the environment; `env -i NAME=VALUE..` run as the target user
                // sets exactly the one asked for, whatever sudo's policy keeps.
                let mut command = std::process::Command::new(&run_as.sudo);
                command.args(["-n", "-u", &run_as.user, "--"]);
                if let Some(env) = &options.env {
                    if self.program.as_os_str().as_encoded_bytes().contains(&b'=') {
                        return Err(CommandError::InvalidArgument {
                            argument: self.program.to_string_lossy().into_owned(),
                            problem: "holds `=` and so cannot be run with an environment as \
                                      another user (`env` would read it as a variable)",
                        });
                    }
                    command.arg(&run_as.env).args(["-i", "--"]);
                    for (key, value) in env {
                        let mut entry = key.clone();
                        entry.push("=");
                        entry.push(value);
                        command.arg(entry);
                    }
                }
                command.arg(&self.program);
                command
            }
        };
        for arg in args {
            let arg = arg.as_ref();
            if arg.as_encoded_bytes().contains(&0) {
                return Err(CommandError::InvalidArgument {
                    argument: arg.to_string_lossy().into_owned(),
                    problem: "contains a NUL byte, which no argument can hold",
                });
            }
            #[cfg(windows)]
            windows::check_argument(&self.program, arg)?;
            command.arg(arg);
        }
        if let Some(cwd) = &options.cwd {
            match std::fs::metadata(cwd) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return Err(CommandError::WorkingDirectory {
                        path: cwd.clone(),
                        source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                    });
                }
                Err(source) => {
                    return Err(CommandError::WorkingDirectory {
                        path: cwd.clone(),
                        source,
                    });
                }
            }
            command.current_dir(cwd);
        }
        command
            .stdin(if options.input_bytes().is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(if options.capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .stderr(Stdio::piped());
        Ok(command)
    }

    fn spawn_error(&self, error: io::Error) -> CommandError {
        if error.kind() == io::ErrorKind::NotFound {
            // The program was there when the command was built; it has gone since.
            return CommandError::NotFound {
                program: self.name.to_string_lossy().into_owned(),
                searched: vec![self.program.clone()],
            };
        }
        self.io_error(error)
    }

    fn io_error(&self, source: io::Error) -> CommandError {
        CommandError::Io {
            program: self.program.clone(),
            source,
        }
    }

    /// The program's stdout, or the error its exit status calls for.
    fn outcome(
        &self,
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: String,
    ) -> Result<Vec<u8>, CommandError> {
        if status.success() {
            return Ok(stdout);
        }
        let program = self.program.clone();
        #[cfg(windows)]
        if let Some(crash) = windows::crash(&program, status, &stderr) {
            return Err(crash);
        }
        if let Some(code) = status.code() {
            return Err(CommandError::Exit {
                program,
                code,
                stderr,
            });
        }
        let signal = status.signal().unwrap_or_default();
        Err(CommandError::Signal {
            program,
            signal,
            signal_name: signal_name(signal),
            core_dumped: status.core_dumped(),
            stderr,
        })
    }
}

/// How to run a command: its input, whether its output is captured, where and with which
/// environment it runs. The options of the reference's `async_call`.
///
/// ```
/// use deluxe::process::CallOptions;
///
/// let options = CallOptions::new()
///     .input(b"data".to_vec())
///     .capture(false)
///     .cwd("/")
///     .env([("LANG", "C")]);
/// assert!(!options.captures());
/// ```
#[derive(Clone, Debug)]
pub struct CallOptions {
    input: Option<Vec<u8>>,
    capture: bool,
    cwd: Option<PathBuf>,
    env: Option<Vec<(OsString, OsString)>>,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl CallOptions {
    /// No input, output captured, the caller's working directory and environment.
    ///
    /// ```
    /// let options = deluxe::process::CallOptions::new();
    /// assert!(options.captures());
    /// ```
    pub fn new() -> Self {
        Self {
            input: None,
            capture: true,
            cwd: None,
            env: None,
        }
    }

    /// Bytes written to the command's standard input (otherwise it reads `/dev/null`).
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// let wc = Command::new("wc")?;
    /// let lines = wc.call_with(["-l"], &CallOptions::new().input("a\nb\n"))?;
    /// assert_eq!(String::from_utf8_lossy(&lines).trim(), "2");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// Whether standard output is captured and returned (`true`, the default) or goes
    /// through to this process's standard output (`false`; the call then returns no bytes).
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// let echo = Command::new("echo")?;
    /// let returned = echo.call_with(["printed, not returned"], &CallOptions::new().capture(false))?;
    /// assert!(returned.is_empty());
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn capture(mut self, capture: bool) -> Self {
        self.capture = capture;
        self
    }

    /// The working directory of the command (it must exist).
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// let pwd = Command::new("pwd")?;
    /// assert_eq!(pwd.call_with(deluxe::process::NO_ARGS, &CallOptions::new().cwd("/"))?, b"/\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// The command's whole environment: it replaces, not extends, the caller's.
    ///
    /// ```
    /// use deluxe::process::{CallOptions, Command};
    /// let env = Command::new("env")?;
    /// let options = CallOptions::new().env([("ONLY", "this")]);
    /// assert_eq!(env.call_with(deluxe::process::NO_ARGS, &options)?, b"ONLY=this\n");
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn env<I, K, V>(mut self, env: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env = Some(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// Whether standard output is captured.
    ///
    /// ```
    /// let options = deluxe::process::CallOptions::new().capture(false);
    /// assert!(!options.captures());
    /// ```
    pub fn captures(&self) -> bool {
        self.capture
    }

    fn input_bytes(&self) -> &[u8] {
        self.input.as_deref().unwrap_or_default()
    }
}

fn check_environment(env: &[(OsString, OsString)]) -> Result<(), CommandError> {
    for (key, value) in env {
        let problem = if key.is_empty() {
            Some("is an empty environment variable name")
        } else if key.as_encoded_bytes().contains(&b'=') {
            Some("contains `=`, which no environment variable name can hold")
        } else if key.as_encoded_bytes().contains(&0) || value.as_encoded_bytes().contains(&0) {
            Some("contains a NUL byte, which no environment entry can hold")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(CommandError::InvalidArgument {
                argument: key.to_string_lossy().into_owned(),
                problem,
            });
        }
    }
    Ok(())
}

/// The first executable file named `name` in `directories` (or `name` itself when absolute).
#[cfg(unix)]
fn find_executable(name: &OsStr, directories: Vec<PathBuf>) -> Result<PathBuf, CommandError> {
    let not_found = |searched| CommandError::NotFound {
        program: name.to_string_lossy().into_owned(),
        searched,
    };
    let path = Path::new(name);
    if path.is_absolute() {
        return match std::fs::metadata(path) {
            Ok(_) if is_executable_file(path) => Ok(path.to_path_buf()),
            Ok(_) => Err(CommandError::NotExecutable {
                path: path.to_path_buf(),
            }),
            Err(_) => Err(not_found(vec![path.to_path_buf()])),
        };
    }
    directories
        .iter()
        .map(|directory| directory.join(name))
        .find(|candidate| is_executable_file(candidate))
        .ok_or_else(|| not_found(directories))
}

#[cfg(unix)]
fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
        && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
}

/// The name of signal `signal`: `SIGKILL`, `SIGRTMIN+3`, or `signal 99` for an unknown one.
#[cfg(unix)]
pub(crate) fn signal_name(signal: i32) -> String {
    if let Ok(known) = nix::sys::signal::Signal::try_from(signal) {
        return known.as_str().to_owned();
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
        return format!("SIGRTMIN+{}", signal - libc::SIGRTMIN());
    }
    format!("signal {signal}")
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(libc::SIGRTMIN() + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(999), "signal 999");
    }
}
