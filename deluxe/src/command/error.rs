//! The error of [`Command`](super::Command): one matchable variant per way a command can fail.
//!
//! Every variant prints what caused it in its one-line `Display` (an OS error included) and
//! returns nothing from `source()`, except [`CommandError::Stage`], which prints which stage of
//! a pipeline failed followed by that stage's error: so no message is ever printed twice by an
//! error reporter that walks the `source()` chain.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::names::{ProgramProblem, UserNameProblem};

/// How much of a failed command's standard error is kept in [`CommandError::Exit`] and
/// [`CommandError::Signal`]: the last 64 KiB. It is also all the call ever holds of it.
///
/// ```
/// use deluxe::command::{STDERR_CAP, Command};
/// let sh = Command::new("sh")?;
/// let error = sh.call(["-c", "head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1"]).unwrap_err();
/// assert_eq!(error.stderr().unwrap().len(), STDERR_CAP);
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
pub const STDERR_CAP: usize = 64 * 1024;

/// How many characters of standard error a [`CommandError`]'s one-line `Display` shows.
const DISPLAY_STDERR_CHARS: usize = 300;

/// What is wrong with the `path` given to [`Command::with_path`](super::Command::with_path).
///
/// ```
/// use deluxe::command::{Command, CommandError, SearchPathProblem};
/// assert!(matches!(
///     Command::with_path("ls", "/usr/bin::/bin"),
///     Err(CommandError::InvalidSearchPath { problem: SearchPathProblem::EmptyEntry, .. })
/// ));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearchPathProblem {
    /// `path` is empty.
    Empty,
    /// `path` is a list with an empty entry (`/usr/bin::/bin`, or a leading or trailing `:`).
    EmptyEntry,
    /// A directory of `path` is not absolute (the directory is in `path`).
    Relative,
    /// `path` names no file or directory.
    Missing,
    /// The program is an absolute path, so `path` would be ignored.
    AbsoluteProgram,
}

impl fmt::Display for SearchPathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty; give a directory such as `/usr/bin`, or the program's file",
            Self::EmptyEntry => {
                "has an empty entry (`::`, or `:` at an end), which a shell would take for \
                 the current directory; remove it (to search the current directory, name it \
                 by its absolute path)"
            }
            Self::Relative => "is not absolute; give absolute directories such as `/usr/bin`",
            Self::Missing => "does not exist; give an existing directory or the program's file",
            Self::AbsoluteProgram => {
                "is not searched for an absolute program; give the bare name, or no path"
            }
        })
    }
}

/// Why an argument or environment entry cannot be passed to a program.
///
/// ```
/// use deluxe::command::{CallOptions, Command, CommandError, ArgumentProblem};
/// let error = Command::new("echo")?.call(["a\0b"]).unwrap_err();
/// assert!(matches!(error, CommandError::InvalidArgument { problem: ArgumentProblem::Nul, .. }));
/// # Ok::<(), CommandError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgumentProblem {
    /// An argument holds a NUL byte.
    Nul,
    /// An environment variable name is empty.
    EmptyVariableName,
    /// An environment variable name holds `=`.
    VariableNameWithEquals,
    /// An environment variable's name or value holds a NUL byte.
    VariableWithNul,
    /// The program's path holds `=`, which `sudo` would read as a variable to set.
    ProgramWithEqualsAsUser,
    /// A variable name starting with `-` was to be passed through `sudo`, which would read it
    /// as an option.
    VariableNameWithDashAsUser,
    /// An exact environment ([`CallOptions::env`](super::CallOptions::env)) was asked for a
    /// command run as another user: `sudo` adds variables of its own.
    ExactEnvironmentAsUser,
    /// A variable removal ([`CallOptions::remove_env`](super::CallOptions::remove_env)) was
    /// asked for a command run as another user: sudo's policy decides what it keeps.
    RemoveVariableAsUser,
    /// An argument for a Windows batch file (`.bat`, `.cmd`) holds a line break, where
    /// `cmd.exe` would end the command line.
    LineBreakForBatchFile,
}

impl fmt::Display for ArgumentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nul => "contains a NUL byte, which no argument can hold",
            Self::EmptyVariableName => "is an empty environment variable name",
            Self::VariableNameWithEquals => {
                "contains `=`, which no environment variable name can hold"
            }
            Self::VariableWithNul => "contains a NUL byte, which no environment entry can hold",
            Self::ProgramWithEqualsAsUser => {
                "holds `=`, so `sudo` would read it as a variable to set; run it from a path \
                 without `=`"
            }
            Self::VariableNameWithDashAsUser => {
                "starts with `-`, which `sudo` would read as an option; rename the variable"
            }
            Self::ExactEnvironmentAsUser => {
                "is an exact environment, which `sudo` cannot guarantee (it adds HOME, USER, \
                 SUDO_USER, ...); set variables with `CallOptions::set_env` instead"
            }
            Self::RemoveVariableAsUser => {
                "cannot be removed through `sudo` (its policy decides what is kept); set it \
                 to a value with `CallOptions::set_env` instead"
            }
            Self::LineBreakForBatchFile => {
                "holds a line break, which cannot be passed to a batch file (.bat or .cmd): \
                 cmd.exe would end the command line there"
            }
        })
    }
}

/// Why `sudo` refused to run a program as another user (the program never started).
///
/// ```
/// use deluxe::command::SudoRefusal;
/// assert_eq!(SudoRefusal::PasswordRequired.to_string(), "a password is required");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SudoRefusal {
    /// The policy wants a password, and commands never prompt (`sudo -n`).
    PasswordRequired,
    /// The policy does not allow this user to run this program as that user.
    NotAllowed,
    /// The policy does not allow the environment variables given with `set_env`.
    EnvironmentNotAllowed,
    /// `sudo` could not execute the program (as the other user).
    CannotExecute,
    /// Another refusal; `sudo`'s message says which.
    Other,
}

impl fmt::Display for SudoRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PasswordRequired => "a password is required",
            Self::NotAllowed => "the sudoers policy does not allow it",
            Self::EnvironmentNotAllowed => {
                "the sudoers policy does not allow setting those variables"
            }
            Self::CannotExecute => "sudo cannot execute the program",
            Self::Other => "sudo refused",
        })
    }
}

/// What the user a command runs as cannot reach.
///
/// ```
/// use deluxe::command::Access;
/// assert_eq!(Access::WorkingDirectory.to_string(), "working directory");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// The program's file (every directory above it must be searchable, the file executable).
    Program,
    /// The working directory asked for.
    WorkingDirectory,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Program => "program",
            Self::WorkingDirectory => "working directory",
        })
    }
}

/// Why a [`Command`](super::Command) could not be built or did not succeed.
///
/// Every variant carries what a person needs to act: the program, the places searched, the
/// exit code or signal, what the program wrote. The `Display` form is a single line, with
/// control characters escaped, and includes the cause: `source()` returns nothing but a
/// pipeline stage's own cause.
///
/// ```
/// use deluxe::command::{Command, CommandError};
///
/// match Command::new("false")?.call(["--ignored"]) {
///     Err(CommandError::Exit { code, .. }) => assert_eq!(code, 1),
///     other => panic!("unexpected: {other:?}"),
/// }
/// # Ok::<(), CommandError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum CommandError {
    /// The program name can never name a program (empty, whitespace, shell syntax, ...).
    InvalidProgram {
        /// The name as given (lossily converted for display).
        program: String,
        /// What is wrong with it.
        problem: ProgramProblem,
    },
    /// The `path` given to [`Command::with_path`](super::Command::with_path) cannot be used.
    InvalidSearchPath {
        /// The `path` (or its offending entry).
        path: PathBuf,
        /// What is wrong with it.
        problem: SearchPathProblem,
    },
    /// No executable file of that name exists in any of the places searched.
    NotFound {
        /// The name as given.
        program: String,
        /// Every directory searched, in order, once each (or the absolute path checked).
        searched: Vec<PathBuf>,
        /// The directories among them this process was not allowed to search.
        denied: Vec<PathBuf>,
        /// The entries of `PATH` that were not searched because they are relative (`bin`,
        /// `.`, or empty: the current directory), in order: a command never depends on the
        /// working directory of whoever runs it.
        skipped: Vec<PathBuf>,
    },
    /// The program exists but is not an executable file.
    NotExecutable {
        /// The path found.
        path: PathBuf,
    },
    /// The user name can never name an account (empty, leading `-`, whitespace, ...).
    InvalidUser {
        /// The name as given.
        user: String,
        /// What is wrong with it.
        problem: UserNameProblem,
    },
    /// The user name is well formed but no such account exists.
    UnknownUser {
        /// The name as given.
        user: String,
    },
    /// The user database could not be read to look the user up.
    UserLookup {
        /// The name as given.
        user: String,
        /// The error the lookup met.
        error: io::Error,
    },
    /// A command must run as another user but `sudo` is not installed.
    SudoMissing {
        /// Every directory searched for `sudo`.
        searched: Vec<PathBuf>,
    },
    /// `sudo` refused to run the program as the user; the program did not run. Only sudo's
    /// own failures are reported so: on Linux, a program that ran (sudo exec'd it or reaped
    /// it) is an [`Exit`](Self::Exit) whatever it wrote, sudo's words included.
    Sudo {
        /// The user asked for.
        user: String,
        /// The program that was to run.
        program: PathBuf,
        /// Why, as a value.
        refusal: SudoRefusal,
        /// sudo's own words.
        message: String,
    },
    /// The user the command runs as cannot reach the program or the working directory.
    UserCannotAccess {
        /// The user.
        user: String,
        /// What it cannot reach.
        what: Access,
        /// The path it cannot reach.
        path: PathBuf,
    },
    /// An argument or environment entry cannot be passed to a program.
    InvalidArgument {
        /// The argument or variable name (lossily converted for display).
        argument: String,
        /// Why it cannot be passed.
        problem: ArgumentProblem,
    },
    /// The working directory asked for does not exist or cannot be entered.
    WorkingDirectory {
        /// The directory asked for.
        path: PathBuf,
        /// The error met checking it.
        error: io::Error,
    },
    /// The file standard error was to go to cannot be opened.
    StderrFile {
        /// The file asked for.
        path: PathBuf,
        /// The error met opening it.
        error: io::Error,
    },
    /// The program ran and exited with a code not counted as success.
    Exit {
        /// The program run.
        program: PathBuf,
        /// Its exit code.
        code: i32,
        /// What it wrote on standard output (empty when not captured).
        stdout: Vec<u8>,
        /// The end of its standard error (the last 64 KiB), as bytes: `Display` shows them
        /// lossily.
        stderr: Vec<u8>,
    },
    /// The program was killed by a signal.
    Signal {
        /// The program run.
        program: PathBuf,
        /// The signal number.
        signal: i32,
        /// The signal's name, such as `SIGKILL`.
        signal_name: String,
        /// Whether the program dumped core.
        core_dumped: bool,
        /// What it wrote on standard output (empty when not captured).
        stdout: Vec<u8>,
        /// The end of its standard error (the last 64 KiB), as bytes: `Display` shows them
        /// lossily.
        stderr: Vec<u8>,
    },
    /// The call's time limit passed: the program and everything it started were terminated.
    Timeout {
        /// The program run.
        program: PathBuf,
        /// The limit.
        timeout: Duration,
        /// What it wrote on standard output until then.
        stdout: Vec<u8>,
        /// The end of its standard error until then, as bytes.
        stderr: Vec<u8>,
    },
    /// The program succeeded but its output, asked for as text
    /// ([`Command::read`](super::Command::read)), is not UTF-8.
    InvalidUtf8 {
        /// The program run.
        program: PathBuf,
        /// Its standard output, as written.
        stdout: Vec<u8>,
        /// How many bytes from the start are valid UTF-8.
        valid_up_to: usize,
    },
    /// The program wrote more on standard output than the call keeps
    /// ([`CallOptions::max_output`](super::CallOptions::max_output)): it and everything it
    /// started were terminated, as on a time limit.
    OutputLimit {
        /// The program run.
        program: PathBuf,
        /// The limit, in bytes.
        limit: usize,
        /// The first `limit` bytes it wrote (for [`Running::lines`](super::Running::lines),
        /// the output read but not yet taken as lines).
        stdout: Vec<u8>,
        /// The end of its standard error until then, as bytes.
        stderr: Vec<u8>,
    },
    /// The call was cancelled (a time limit, the output limit, [`Running::kill`](super::Running::kill)),
    /// and some of its processes could not be ended: a caller that is not root running a
    /// command as another user through `sudo` may not signal that user's processes, and no
    /// sudoers rule let it run `kill` as that user. They are still running.
    NotEnded {
        /// The user they run as.
        user: String,
        /// Their process ids.
        pids: Vec<u32>,
        /// How the call ended otherwise ([`CommandError::Timeout`], say).
        error: Box<CommandError>,
    },
    /// One stage of a pipeline failed (the rightmost failing one, as `set -o pipefail`).
    Stage {
        /// Which stage, counted from 1.
        stage: usize,
        /// How many stages the pipeline has.
        stages: usize,
        /// That stage's error.
        error: Box<CommandError>,
    },
    /// Starting the program or talking to it failed.
    Io {
        /// The program run.
        program: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// [`Command::user`](super::Command::user) on a platform with no passwordless way to run
    /// a program as another user: Windows (no `sudo`; `runas` asks for the password).
    UserUnsupported {
        /// The user asked for.
        user: String,
    },
    /// The program crashed: on Windows, it ended with an NTSTATUS error code such as
    /// `0xC0000005` (`STATUS_ACCESS_VIOLATION`), the counterpart of [`CommandError::Signal`].
    /// Never produced on Unix.
    Crashed {
        /// The program run.
        program: PathBuf,
        /// The NTSTATUS code it ended with, such as `0xC0000005`.
        status: u32,
        /// The code's name, such as `STATUS_ACCESS_VIOLATION` (`an unknown NTSTATUS` for a
        /// code deluxe does not know).
        status_name: String,
        /// What it wrote on standard output (empty when not captured).
        stdout: Vec<u8>,
        /// The end of its standard error (the last 64 KiB), as bytes: `Display` shows them
        /// lossily.
        stderr: Vec<u8>,
    },
}

impl CommandError {
    /// This error as stage `index` (from 0) of a pipeline of `count` programs: wrapped in
    /// [`CommandError::Stage`], unless the "pipeline" is one program.
    pub(crate) fn in_stage(self, index: usize, count: usize) -> Self {
        if count > 1 {
            CommandError::Stage {
                stage: index + 1,
                stages: count,
                error: Box::new(self),
            }
        } else {
            self
        }
    }

    /// The end of the failed program's standard error, when it ran: the bytes it wrote, UTF-8
    /// or not.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let error = Command::new("sh")?.call(["-c", "printf 'bad \\377\\376' >&2; exit 1"]).unwrap_err();
    /// assert_eq!(error.stderr(), Some(&b"bad \xff\xfe"[..]));
    /// assert!(error.to_string().ends_with(": bad \u{fffd}\u{fffd}"));   // shown lossily
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn stderr(&self) -> Option<&[u8]> {
        match self {
            Self::Exit { stderr, .. }
            | Self::Signal { stderr, .. }
            | Self::Timeout { stderr, .. }
            | Self::OutputLimit { stderr, .. }
            | Self::Crashed { stderr, .. } => Some(stderr),
            Self::Stage { error, .. } | Self::NotEnded { error, .. } => error.stderr(),
            _ => None,
        }
    }

    /// What the failed program wrote on standard output, when it ran.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let error = Command::new("sh")?.call(["-c", "echo partial; exit 2"]).unwrap_err();
    /// assert_eq!(error.stdout(), Some(&b"partial\n"[..]));
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn stdout(&self) -> Option<&[u8]> {
        match self {
            Self::Exit { stdout, .. }
            | Self::Signal { stdout, .. }
            | Self::Timeout { stdout, .. }
            | Self::OutputLimit { stdout, .. }
            | Self::InvalidUtf8 { stdout, .. }
            | Self::Crashed { stdout, .. } => Some(stdout),
            Self::Stage { error, .. } | Self::NotEnded { error, .. } => error.stdout(),
            _ => None,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProgram { program, problem } => {
                write!(f, "program name \"{}\" {problem}", Escaped(program))
            }
            Self::InvalidSearchPath { path, problem } => {
                write!(f, "search path \"{}\" {problem}", EscapedPath(path))
            }
            Self::NotFound {
                program,
                searched,
                denied,
                skipped,
            } => {
                if program.contains('/') || program.contains('\\') {
                    write!(f, "program `{}` does not exist", Escaped(program))?;
                } else {
                    write!(f, "program `{}` not found; searched ", Escaped(program))?;
                    if searched.is_empty() && !skipped.is_empty() {
                        f.write_str("nowhere")?;
                    } else {
                        write_paths(f, searched)?;
                    }
                }
                if !skipped.is_empty() {
                    f.write_str("; skipped the relative entries of PATH ")?;
                    for (index, entry) in skipped.iter().enumerate() {
                        f.write_str(if index == 0 { "" } else { ", " })?;
                        write!(f, "\"{}\"", EscapedPath(entry))?;
                    }
                    f.write_str(
                        " (a command must not depend on the working directory of whoever runs \
                         it)",
                    )?;
                }
                if !denied.is_empty() {
                    f.write_str("; permission denied searching ")?;
                    write_paths(f, denied)?;
                }
                f.write_str(
                    "; install it, or name it by its full path or with `Command::with_path`",
                )
            }
            Self::NotExecutable { path } => {
                write!(
                    f,
                    "{} is not an executable file (a directory, or a file without execute \
                     permission); name the program's file itself",
                    EscapedPath(path)
                )
            }
            Self::InvalidUser { user, problem } => {
                write!(f, "user name \"{}\" {problem}", Escaped(user))
            }
            Self::UnknownUser { user } => {
                write!(
                    f,
                    "no user account named `{}` exists; check the name (`getent passwd` lists \
                     the accounts)",
                    Escaped(user)
                )
            }
            Self::UserLookup { user, error } => write!(
                f,
                "looking up user `{}` in the user database: {error}",
                Escaped(user)
            ),
            Self::SudoMissing { searched } => {
                f.write_str(
                    "running a command as another user needs `sudo`, which is not installed; \
                     searched ",
                )?;
                write_paths(f, searched)
            }
            Self::Sudo {
                user,
                program,
                refusal,
                message,
            } => {
                write!(
                    f,
                    "sudo refused to run {} as `{}`: {refusal}",
                    EscapedPath(program),
                    Escaped(user)
                )?;
                if *refusal == SudoRefusal::PasswordRequired {
                    f.write_str(" (commands never prompt: allow it with a NOPASSWD rule)")?;
                }
                // sudo's words, where they say more than the refusal already said.
                let said = refusal.to_string();
                let more: Vec<&str> = message
                    .lines()
                    .map(|line| line.trim().strip_prefix("sudo: ").unwrap_or(line.trim()))
                    .filter(|line| *line != said)
                    .collect();
                write_stderr(f, more.join("\n").as_bytes())
            }
            Self::UserCannotAccess { user, what, path } => write!(
                f,
                "user `{}` cannot reach the {what} {}: permission denied to that user",
                Escaped(user),
                EscapedPath(path)
            ),
            Self::InvalidArgument { argument, problem } => {
                write!(f, "argument \"{}\" {problem}", Escaped(argument))
            }
            Self::WorkingDirectory { path, error } => {
                write!(
                    f,
                    "working directory {} cannot be used: {error}",
                    EscapedPath(path)
                )?;
                if path.is_relative() {
                    f.write_str(" (a relative path, taken from the caller's working directory)")?;
                }
                f.write_str("; give an existing directory the program may enter")
            }
            Self::StderrFile { path, error } => write!(
                f,
                "standard error file {} cannot be opened: {error}",
                EscapedPath(path)
            ),
            Self::Exit {
                program,
                code,
                stderr,
                ..
            } => {
                write!(f, "{} exited with code {code}", EscapedPath(program))?;
                write_stderr(f, stderr)
            }
            Self::Signal {
                program,
                signal,
                signal_name,
                core_dumped,
                stderr,
                ..
            } => {
                write!(
                    f,
                    "{} was killed by {signal_name} (signal {signal}",
                    EscapedPath(program)
                )?;
                f.write_str(if *core_dumped { ", core dumped)" } else { ")" })?;
                write_stderr(f, stderr)
            }
            Self::Timeout {
                program,
                timeout,
                stderr,
                ..
            } => {
                write!(
                    f,
                    "{} did not finish within {timeout:?} and was terminated with everything \
                     it started",
                    EscapedPath(program)
                )?;
                write_stderr_so_far(f, stderr)
            }
            Self::OutputLimit {
                program,
                limit,
                stderr,
                ..
            } => {
                write!(
                    f,
                    "{} wrote more than {limit} bytes of output and was terminated with \
                     everything it started; raise the limit with `CallOptions::max_output`, or \
                     read the output as it comes with `Command::spawn` and `Running::lines`",
                    EscapedPath(program)
                )?;
                write_stderr_so_far(f, stderr)
            }
            Self::InvalidUtf8 {
                program,
                valid_up_to,
                ..
            } => write!(
                f,
                "{} wrote output that is not UTF-8 (from byte {valid_up_to}); take it as bytes \
                 with `call`",
                EscapedPath(program)
            ),
            Self::Stage {
                stage,
                stages,
                error,
            } => write!(f, "pipeline stage {stage} of {stages}: {error}"),
            Self::NotEnded { user, pids, error } => {
                write!(f, "{error}; but ")?;
                let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "process{} {} of it still run{} as `{}`, which this process may not \
                     signal: let it run `kill` as that user through sudo (a sudoers rule such \
                     as `CALLER ALL=({}) NOPASSWD: /usr/bin/kill`), or make the call as root",
                    if pids.len() == 1 { "" } else { "es" },
                    pids.join(", "),
                    if pids.len() == 1 { "s" } else { "" },
                    Escaped(user),
                    Escaped(user),
                )
            }
            Self::Io { program, error } => {
                write!(f, "running {}: {error}", EscapedPath(program))
            }
            Self::UserUnsupported { user } => write!(
                f,
                "cannot run a command as user `{}` on this platform: Windows has no \
                 passwordless way to switch user (no `sudo`; `runas` asks for the password); run \
                 the program as the current user, or as a service under that account",
                Escaped(user)
            ),
            Self::Crashed {
                program,
                status,
                status_name,
                stderr,
                ..
            } => {
                write!(
                    f,
                    "{} crashed with {status_name} ({status:#010X}",
                    EscapedPath(program)
                )?;
                match ntstatus(*status) {
                    Some((_, meaning)) => write!(f, ": {meaning})")?,
                    None => f.write_str(")")?,
                }
                write_stderr(f, stderr)
            }
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The inner error is printed in this Display; its own cause (none today) is next.
            Self::Stage { error, .. } | Self::NotEnded { error, .. } => error.source(),
            _ => None,
        }
    }
}

/// A string written with control characters (ESC, newlines, ...) escaped, so that a name
/// cannot drive a terminal or split a log line; other characters are written as they are.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_str(c.encode_utf8(&mut [0; 4]))?;
            }
        }
        Ok(())
    }
}

/// A path written as [`Escaped`] text (bytes that are not UTF-8 are replaced).
pub(crate) struct EscapedPath<'a>(pub(crate) &'a Path);

impl fmt::Display for EscapedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Escaped(&self.0.to_string_lossy()).fmt(f)
    }
}

/// The NTSTATUS codes a crashed Windows program commonly ends with: name and meaning.
const NTSTATUS: &[(u32, &str, &str)] = &[
    (
        0x8000_0002,
        "STATUS_DATATYPE_MISALIGNMENT",
        "a misaligned memory access",
    ),
    (
        0x8000_0003,
        "STATUS_BREAKPOINT",
        "a breakpoint was hit with no debugger attached",
    ),
    (
        0xC000_0005,
        "STATUS_ACCESS_VIOLATION",
        "an invalid memory access",
    ),
    (
        0xC000_0006,
        "STATUS_IN_PAGE_ERROR",
        "a page of memory could not be read in",
    ),
    (
        0xC000_0008,
        "STATUS_INVALID_HANDLE",
        "an invalid handle was used",
    ),
    (0xC000_0017, "STATUS_NO_MEMORY", "out of memory"),
    (
        0xC000_001D,
        "STATUS_ILLEGAL_INSTRUCTION",
        "an illegal instruction",
    ),
    (
        0xC000_0025,
        "STATUS_NONCONTINUABLE_EXCEPTION",
        "a fatal exception",
    ),
    (
        0xC000_008C,
        "STATUS_ARRAY_BOUNDS_EXCEEDED",
        "an array index out of bounds",
    ),
    (
        0xC000_0094,
        "STATUS_INTEGER_DIVIDE_BY_ZERO",
        "an integer division by zero",
    ),
    (
        0xC000_0095,
        "STATUS_INTEGER_OVERFLOW",
        "an integer overflow",
    ),
    (
        0xC000_0096,
        "STATUS_PRIVILEGED_INSTRUCTION",
        "a privileged instruction",
    ),
    (0xC000_00FD, "STATUS_STACK_OVERFLOW", "a stack overflow"),
    (
        0xC000_0135,
        "STATUS_DLL_NOT_FOUND",
        "a DLL the program needs is missing",
    ),
    (
        0xC000_0139,
        "STATUS_ENTRYPOINT_NOT_FOUND",
        "a DLL lacks a function the program needs",
    ),
    (
        0xC000_013A,
        "STATUS_CONTROL_C_EXIT",
        "interrupted by Ctrl+C",
    ),
    (
        0xC000_0142,
        "STATUS_DLL_INIT_FAILED",
        "a DLL failed to initialise",
    ),
    (
        0xC000_0374,
        "STATUS_HEAP_CORRUPTION",
        "the heap was corrupted",
    ),
    (
        0xC000_0409,
        "STATUS_STACK_BUFFER_OVERRUN",
        "the program aborted itself (a fail-fast exit, as Rust's `abort` does)",
    ),
    (
        0xC000_0420,
        "STATUS_ASSERTION_FAILURE",
        "an assertion failed",
    ),
];

/// The name and meaning of a known NTSTATUS code.
pub(crate) fn ntstatus(status: u32) -> Option<(&'static str, &'static str)> {
    NTSTATUS
        .iter()
        .find(|(code, _, _)| *code == status)
        .map(|&(_, name, meaning)| (name, meaning))
}

/// Whether a Windows exit code is a crash: a known exception code, or any NTSTATUS error of
/// the system (`0xC000xxxx`). Other codes with the top bit set, such as `exit(-1)`'s
/// `0xFFFFFFFF`, are exit codes.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn is_crash(status: u32) -> bool {
    status & 0xFFFF_0000 == 0xC000_0000 || ntstatus(status).is_some()
}

fn write_paths(f: &mut fmt::Formatter<'_>, paths: &[PathBuf]) -> fmt::Result {
    if paths.is_empty() {
        return f.write_str("nowhere (the search path is empty)");
    }
    for (index, path) in paths.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", EscapedPath(path))?;
    }
    Ok(())
}

/// `; its stderr so far: ...` for a program a bound ended, when it wrote any.
fn write_stderr_so_far(f: &mut fmt::Formatter<'_>, stderr: &[u8]) -> fmt::Result {
    if stderr.trim_ascii().is_empty() {
        return Ok(());
    }
    f.write_str("; its stderr so far")?;
    write_stderr(f, stderr)
}

/// Writes `: line; line; ...` with the non-empty lines of `stderr`, on one line, shortened,
/// control characters escaped, bytes that are not UTF-8 replaced.
fn write_stderr(f: &mut fmt::Formatter<'_>, stderr: &[u8]) -> fmt::Result {
    let mut written = 0;
    for line in String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        f.write_str(if written == 0 { ": " } else { "; " })?;
        for c in line.chars() {
            if written == DISPLAY_STDERR_CHARS {
                return f.write_str("…");
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_str(c.encode_utf8(&mut [0; 4]))?;
            }
            written += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crashes_are_named_and_explained() {
        assert!(is_crash(0xC000_0005));
        assert!(is_crash(0xC000_1234));
        assert!(is_crash(0x8000_0003));
        assert!(!is_crash(0xFFFF_FFFF));
        assert!(!is_crash(300));
        let error = CommandError::Crashed {
            program: r"C:\tool.exe".into(),
            status: 0xC000_0005,
            status_name: "STATUS_ACCESS_VIOLATION".into(),
            stdout: Vec::new(),
            stderr: b"last words\n".to_vec(),
        };
        assert_eq!(
            error.to_string(),
            r"C:\tool.exe crashed with STATUS_ACCESS_VIOLATION (0xC0000005: an invalid memory access): last words"
        );
        assert_eq!(error.stderr(), Some(&b"last words\n"[..]));
        let unknown = CommandError::Crashed {
            program: r"C:\tool.exe".into(),
            status: 0xC000_1234,
            status_name: "an unknown NTSTATUS".into(),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        assert_eq!(
            unknown.to_string(),
            r"C:\tool.exe crashed with an unknown NTSTATUS (0xC0001234)"
        );
    }

    #[test]
    fn user_unsupported_says_why() {
        let text = CommandError::UserUnsupported {
            user: "Administrator".into(),
        }
        .to_string();
        assert!(text.contains("`Administrator`"), "{text}");
        assert!(text.contains("no passwordless way"), "{text}");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn display_is_one_line_and_short() {
        let error = CommandError::Exit {
            program: "/bin/tool".into(),
            code: 2,
            stdout: Vec::new(),
            stderr: format!("first\n\n  second  \n{}\n", "x".repeat(1000)).into_bytes(),
        };
        let text = error.to_string();
        assert!(!text.contains('\n'));
        assert!(text.starts_with("/bin/tool exited with code 2: first; second; xxx"));
        assert!(text.ends_with('…'));
        assert!(text.chars().count() < 400);
    }
}
