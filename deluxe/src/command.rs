//! System commands: resolved once, never run through a shell, optionally as another user;
//! bounded in time, streamed or collected, alone or in pipelines, and leaving no process
//! behind when cancelled.
//!
//! ```
//! use std::time::Duration;
//! use deluxe::command::{CallOptions, Command};
//!
//! let sh = Command::new("sh")?;
//! let options = CallOptions::new().timeout(Duration::from_secs(30));
//! assert_eq!(sh.call_with(["-c", "echo hi"], &options)?, b"hi\n");
//! # Ok::<(), deluxe::command::CommandError>(())
//! ```
//!
//! Each call runs in a process group of its own, so that a timeout, a [`Running::kill`] or a
//! dropped call (or async future) terminates the program *and everything it started*, through
//! `sudo` too: `SIGTERM` to the group, then `SIGKILL` after a grace. The exception is a caller
//! that is the foreground job of a terminal: its programs stay in its group, so that a Ctrl-C at
//! the terminal still reaches them (and they can read the terminal), and cancelling signals
//! the program and its descendants, found through `/proc`, one by one. The tree is frozen
//! (`SIGSTOP`) while it is listed, and listed again before `SIGKILL`; a process that left
//! both the tree and the group before that (a double-forked daemon) is not reached, and
//! holding the pipes open it does not hold the call.
//!
//! Works on Unix and Windows. On Windows, names are looked up with `PATHEXT` (`cmd` finds
//! `cmd.exe`), [`Command::user`] is always an error, a crashed program is a
//! [`CommandError::Crashed`] rather than a [`CommandError::Signal`], and the calls are
//! bounded by timeouts, streamed ([`Command::spawn`]) and piped ([`Pipeline`]) there too, each
//! call in a Job Object that a timeout, a kill or a drop terminates with everything in it.

#[cfg(feature = "tokio")]
mod asynchronous;
mod error;
mod lines;
pub(crate) mod names;
mod options;
mod pipeline;
mod running;
#[cfg(unix)]
mod sudo;
#[cfg(unix)]
#[allow(unsafe_code)]
pub(crate) mod sys;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::ffi::{OsStr, OsString};
use std::io;
#[cfg(unix)]
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[cfg(feature = "tokio")]
pub use asynchronous::AsyncRunning;
pub use error::{
    Access, ArgumentProblem, CommandError, STDERR_CAP, SearchPathProblem, SudoRefusal,
};
pub use lines::Lines;
pub use names::{
    ProgramProblem, SHELL_SYNTAX, UserNameProblem, check_program, check_user_name, is_blank,
};
pub use options::{CallOptions, KILL_GRACE, LINGER, MAX_OUTPUT, Stderr};
pub use pipeline::Pipeline;
pub use running::Running;
#[cfg(windows)]
pub use windows::{DEFAULT_PATH, DEFAULT_PATHEXT};

#[cfg(unix)]
#[cfg(unix)]
use sudo::RunAs;
#[cfg(windows)]
use windows::{check_program as check_program_here, find_executable};

/// The search path used when `PATH` is not set.
///
/// ```
/// use deluxe::command::DEFAULT_PATH;
/// assert!(std::env::split_paths(DEFAULT_PATH).all(|dir| dir.is_absolute()));
/// ```
#[cfg(unix)]
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// No arguments, for [`Command::call`].
///
/// ```
/// use deluxe::command::{Command, NO_ARGS};
/// assert_eq!(Command::new("true")?.call(NO_ARGS)?, b"");
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
pub const NO_ARGS: [&str; 0] = [];

/// What a finished program produced: [`Command::output`]'s result.
///
/// ```
/// use deluxe::command::{CallOptions, Command};
/// let sh = Command::new("sh")?;
/// let output = sh.output(["-c", "echo out; echo warn >&2"], &CallOptions::new())?;
/// assert_eq!((output.code, &output.stdout[..], &output.stderr[..]), (0, &b"out\n"[..], &b"warn\n"[..]));
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// The exit code (0, or one of [`CallOptions::success_codes`]).
    pub code: i32,
    /// Standard output (empty when not captured).
    pub stdout: Vec<u8>,
    /// The end of standard error (the last 64 KiB of each stage; empty when not kept), as
    /// bytes, like `stdout`.
    pub stderr: Vec<u8>,
}

/// A system command, resolved to an absolute path when it is built.
///
/// A `Command` is never run through a shell: every argument reaches the program byte for byte,
/// whatever it contains. With [`Command::user`] it runs as another user, through
/// `sudo -n -u USER -- PROGRAM ARGS...` (`PROGRAM`: the name asked by, or the absolute path;
/// see [`Command::user`]).
///
/// ```
/// use deluxe::command::Command;
///
/// let ls = Command::new("ls")?;
/// let listing = ls.call(["-a", "/"])?;
/// assert!(String::from_utf8_lossy(&listing).lines().any(|name| name == "tmp"));
/// # Ok::<(), deluxe::command::CommandError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Command {
    name: OsString,
    program: PathBuf,
    /// Arguments every call passes first ([`Command::args`]).
    args: Vec<OsString>,
    #[cfg(unix)]
    run_as: Option<RunAs>,
    /// An absolute program this process may not reach (a directory above it denies search,
    /// or the file denies execution): run as another user through `sudo`, that user's view
    /// decides; otherwise the call fails as [`Command::new`] would have.
    #[cfg(unix)]
    hidden: bool,
}

/// One process to start, and what is needed to judge how it ended.
pub(crate) struct Plan {
    pub(crate) command: std::process::Command,
    pub(crate) program: PathBuf,
    /// When the program runs through `sudo` (whose refusals are recognised): how.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) sudo: Option<SudoRun>,
}

/// A program started through `sudo`.
#[cfg_attr(windows, allow(dead_code))]
pub(crate) struct SudoRun {
    /// The `sudo` program run.
    pub(crate) sudo: PathBuf,
    /// The user it runs as.
    pub(crate) user: String,
    /// The words sudo's messages may name the program by: its path, and when sudo was given
    /// its bare name, that name and the path sudo resolved it to.
    pub(crate) names: Vec<OsString>,
}

impl Command {
    /// Finds `name` on `PATH` (or checks it, when it is an absolute path).
    ///
    /// Relative directories in `PATH` are skipped: a command must not depend on the working
    /// directory of whoever runs it.
    ///
    /// An absolute path this process may not reach, behind a directory it may not search or
    /// a file it may not execute but another account may (a tool in another account's private
    /// directory), is taken as given: run as that account with [`Command::user`], its view decides (sudo says if it
    /// cannot run the program); run otherwise, the call fails as `new` would have
    /// ([`CommandError::NotFound`] naming the directory denied, or
    /// [`CommandError::NotExecutable`]).
    ///
    /// # Errors
    ///
    /// [`CommandError::InvalidProgram`] when the name can name no program (empty, whitespace,
    /// shell syntax, relative path), [`CommandError::NotFound`] (naming every directory
    /// searched, and those this process may not search) or [`CommandError::NotExecutable`].
    ///
    /// ```
    /// use deluxe::command::{Command, CommandError};
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
        let (directories, skipped): (Vec<PathBuf>, Vec<PathBuf>) =
            std::env::split_paths(&path).partition(|dir| dir.is_absolute());
        Self::resolve(name.as_ref(), directories).map_err(|error| match error {
            CommandError::NotFound {
                program,
                searched,
                denied,
                ..
            } => CommandError::NotFound {
                program,
                searched,
                denied,
                skipped,
            },
            other => other,
        })
    }

    /// The program `name` from `path`: the program's own file when `path` names a file (as
    /// Python's `Command(name, path=...)`), else the first executable `name` in `path`, one
    /// directory or a `PATH`-like list of them separated by `:`. The program sees `name` as its
    /// `argv[0]`.
    ///
    /// # Errors
    ///
    /// As [`Command::new`], plus [`CommandError::InvalidSearchPath`] when `path` is empty, has an
    /// empty entry, holds a relative directory, does not exist (one entry: there is no silent
    /// fall back to `PATH`), or is given with an absolute program (it would be ignored).
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let ls = Command::with_path("ls", "/usr/local/bin:/usr/bin:/bin")?;
    /// assert!(ls.program().ends_with("ls"));
    /// let true_ = Command::with_path("true", "/bin/true")?;       // the file itself
    /// assert_eq!(true_.program(), std::path::Path::new("/bin/true"));
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn with_path(
        name: impl AsRef<OsStr>,
        path: impl AsRef<OsStr>,
    ) -> Result<Self, CommandError> {
        let (name, path) = (name.as_ref(), path.as_ref());
        check_name(name)?;
        let invalid = |path: &Path, problem| CommandError::InvalidSearchPath {
            path: path.to_path_buf(),
            problem,
        };
        if path.is_empty() {
            return Err(invalid(Path::new(path), SearchPathProblem::Empty));
        }
        let entries: Vec<PathBuf> = std::env::split_paths(path).collect();
        if entries.iter().any(|entry| entry.as_os_str().is_empty()) {
            return Err(invalid(Path::new(path), SearchPathProblem::EmptyEntry));
        }
        if let Some(relative) = entries.iter().find(|dir| !dir.is_absolute()) {
            return Err(invalid(relative, SearchPathProblem::Relative));
        }
        if Path::new(name).is_absolute() {
            return Err(invalid(Path::new(path), SearchPathProblem::AbsoluteProgram));
        }
        if let [only] = entries.as_slice() {
            match std::fs::metadata(only) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(invalid(only, SearchPathProblem::Missing));
                }
                Ok(metadata) if !metadata.is_dir() => {
                    // The program's own file.
                    if !is_executable_file(only) {
                        return Err(CommandError::NotExecutable { path: only.clone() });
                    }
                    return Ok(Self {
                        name: name.to_owned(),
                        program: only.clone(),
                        args: Vec::new(),
                        #[cfg(unix)]
                        run_as: None,
                        #[cfg(unix)]
                        hidden: false,
                    });
                }
                _ => {}
            }
        }
        Self::resolve(name, entries)
    }

    fn resolve(name: &OsStr, directories: Vec<PathBuf>) -> Result<Self, CommandError> {
        check_name(name)?;
        #[cfg(unix)]
        let (program, hidden) = match find_executable(name, directories) {
            // Absolute, behind a directory we may not search or a file we may not execute:
            // perhaps one only the user given to `Command::user` can reach; that user's view
            // decides (see `Command::new`).
            Err(CommandError::NotFound { denied, .. })
                if !denied.is_empty() && Path::new(name).is_absolute() =>
            {
                (PathBuf::from(name), true)
            }
            Err(CommandError::NotExecutable { path })
                if std::fs::metadata(&path).is_ok_and(|metadata| {
                    use std::os::unix::fs::PermissionsExt;
                    // A file someone may execute (not a text file such as /etc/passwd).
                    metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
                }) =>
            {
                (path, true)
            }
            found => (found?, false),
        };
        #[cfg(windows)]
        let program = find_executable(name, directories)?;
        Ok(Self {
            name: name.to_owned(),
            program,
            args: Vec::new(),
            #[cfg(unix)]
            run_as: None,
            #[cfg(unix)]
            hidden,
        })
    }

    /// Makes the command run as `user`: directly when `user` is the account this process runs
    /// as, else through `sudo -n -u USER --` (never prompting for a password: where `sudo`
    /// would need one, the call fails with [`CommandError::Sudo`]).
    ///
    /// Through `sudo` the program sees the name it was asked by as its `argv[0]`, as when it
    /// runs directly, whenever that is safe: for a program named by a bare name (`"id"`,
    /// found on `PATH` or by [`Command::with_path`]), each call first asks
    /// `sudo -n -l -u USER -- NAME ARGS..` which file sudo would run for that name, and passes
    /// sudo the bare name only when that is the very file resolved here (same device and
    /// inode). Otherwise (sudo's own search, its `secure_path` or the caller's `PATH`, finds
    /// another file of that name, or sudo will not say) sudo is given the absolute path: the
    /// program then sees that path as its `argv[0]`, and sudo never runs another file than
    /// [`Command::program`]. A program given by its path (`"/usr/bin/id"`) sees that path, with
    /// no question asked. The question costs one short run of sudo per call (measured: 6-7 ms
    /// on a call of `true` that otherwise takes 9 ms), counted in the call's time limit; a
    /// listing sudo refuses is not taken as the call refused (sudo may pick another file for
    /// the name, or want a password to list but not to run), so the call then goes ahead with
    /// the absolute path and sudo's own verdict is the call's.
    ///
    /// # Errors
    ///
    /// [`CommandError::InvalidUser`] when the name can name no account (so it can never reach
    /// `sudo` as an option), [`CommandError::UnknownUser`] when no such account exists,
    /// [`CommandError::UserLookup`] when the user database fails, [`CommandError::SudoMissing`]
    /// when `sudo` is needed and not installed.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let me = nix::unistd::User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
    /// let whoami = Command::new("whoami")?.user(me.clone())?;   // no sudo needed for oneself
    /// assert_eq!(whoami.call(deluxe::command::NO_ARGS)?, format!("{me}\n").into_bytes());
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[cfg(unix)]
    pub fn user(mut self, user: impl Into<String>) -> Result<Self, CommandError> {
        let user = user.into();
        if let Err(problem) = check_user_name(user.as_bytes()) {
            return Err(CommandError::InvalidUser { user, problem });
        }
        let account = match nix::unistd::User::from_name(&user) {
            Ok(Some(account)) => account,
            Ok(None) => return Err(CommandError::UnknownUser { user }),
            Err(errno) => {
                return Err(CommandError::UserLookup {
                    user,
                    error: errno.into(),
                });
            }
        };
        let sudo = if RunAs::is_current(&account) {
            None
        } else {
            match Self::new("sudo") {
                Ok(sudo) => Some(sudo.program),
                Err(CommandError::NotFound { searched, .. }) => {
                    return Err(CommandError::SudoMissing { searched });
                }
                Err(other) => return Err(other),
            }
        };
        self.run_as = Some(RunAs::new(user, &account, sudo));
        Ok(self)
    }

    /// This command with `args` fixed as its leading arguments: every call passes them first,
    /// then its own (as a base command, `git -C repo`, called many times). Called again, it
    /// adds to them.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let repo = std::env::temp_dir();
    /// let ls = Command::new("ls")?.args(["-d", "--"]);        // a base, kept
    /// assert_eq!(ls.read([&repo])?, repo.display().to_string());
    /// assert_eq!(ls.read(["/"])?, "/");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Runs the command with `args` and returns its standard output as text, trailing
    /// newlines (`\n`, `\r\n`) trimmed and nothing else, as duct's `read()`: the short form of
    /// `String::from_utf8(command.call(args)?)` for the common case.
    ///
    /// # Errors
    ///
    /// As [`Command::call`], plus [`CommandError::InvalidUtf8`] (carrying the bytes) when the
    /// output is not UTF-8.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let branch = String::from("main");
    /// let echo = Command::new("echo")?;
    /// assert_eq!(echo.read(["  on", &branch])?, "  on main");   // only the newline goes
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn read<I, S>(&self, args: I) -> Result<String, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let stdout = self.call(args)?;
        let mut text = String::from_utf8(stdout).map_err(|error| CommandError::InvalidUtf8 {
            program: self.program.clone(),
            valid_up_to: error.utf8_error().valid_up_to(),
            stdout: error.into_bytes(),
        })?;
        while text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(text)
    }

    /// The absolute path of the program.
    ///
    /// ```
    /// let sh = deluxe::command::Command::new("sh")?;
    /// assert!(sh.program().is_absolute() && sh.program().ends_with("sh"));
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The program's name as given to [`Command::new`]; the program sees it as its `argv[0]`
    /// (through `sudo`, when sudo would run the very same file for that name: see
    /// [`Command::user`]).
    ///
    /// ```
    /// let ls = deluxe::command::Command::new("ls")?;
    /// assert_eq!(ls.name(), "ls");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// The user the command runs as, when one was set with [`Command::user`].
    ///
    /// ```
    /// let ls = deluxe::command::Command::new("ls")?;
    /// assert_eq!(ls.run_as(), None);
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn run_as(&self) -> Option<&str> {
        #[cfg(unix)]
        return self.run_as.as_ref().map(|run_as| run_as.user.as_str());
        #[cfg(windows)]
        None
    }

    /// Runs the command with `args` and returns its standard output.
    ///
    /// Standard input is empty (`/dev/null`); standard error is kept (its end) for the error.
    ///
    /// # Errors
    ///
    /// [`CommandError::Exit`] (with what the program wrote) or [`CommandError::Signal`] when
    /// the program fails, [`CommandError::Sudo`] when `sudo` refuses to run it,
    /// [`CommandError::InvalidArgument`] for an argument holding a NUL byte,
    /// [`CommandError::Io`] when it cannot be started.
    ///
    /// ```
    /// use deluxe::command::Command;
    ///
    /// let echo = Command::new("echo")?;
    /// assert_eq!(echo.call(["$HOME", "; rm -rf /"])?, b"$HOME ; rm -rf /\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn call<I, S>(&self, args: I) -> Result<Vec<u8>, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.call_with(args, &CallOptions::new())
    }

    /// Runs the command with `args` and the given options and returns its standard output
    /// (empty when not captured).
    ///
    /// Input is written while both output streams are read, so a program writing a lot to
    /// both while reading its input never deadlocks. The call returns once the program has
    /// exited and its output is read: a background process it started that keeps the pipes
    /// open is not waited for (its output is read for [`LINGER`] more).
    ///
    /// # Errors
    ///
    /// As [`Command::call`], plus [`CommandError::WorkingDirectory`] and
    /// [`CommandError::UserCannotAccess`] when the working directory cannot be used,
    /// [`CommandError::Timeout`] when the time limit passes, [`CommandError::OutputLimit`]
    /// when the program writes more than [`CallOptions::max_output`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    ///
    /// let tr = Command::new("tr")?;
    /// let options = CallOptions::new().input("hello").cwd("/tmp").env([("LC_ALL", "C")]);
    /// assert_eq!(tr.call_with(["a-z", "A-Z"], &options)?, b"HELLO");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn call_with<I, S>(&self, args: I, options: &CallOptions) -> Result<Vec<u8>, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.output(args, options).map(|output| output.stdout)
    }

    /// Runs the command and returns its exit code, standard output and the end of its
    /// standard error: for programs whose non-zero codes are answers
    /// ([`CallOptions::success_codes`]), or to see a successful program's warnings.
    ///
    /// # Errors
    ///
    /// As [`Command::call_with`].
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let diff = Command::new("diff")?;
    /// let output = diff.output(["/etc/hostname", "/etc/hostname"], &CallOptions::new().success_codes([1]))?;
    /// assert_eq!(output.code, 0);
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn output<I, S>(&self, args: I, options: &CallOptions) -> Result<Output, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn(args, options)?.wait()
    }

    /// Starts the command and returns a handle to it, running: read its output line by line
    /// as it is produced, wait for it, or kill it (with everything it started).
    ///
    /// # Errors
    ///
    /// The errors of [`Command::call_with`] that can happen before the program runs.
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    ///
    /// let mut ping = Command::new("sh")?.spawn(["-c", "echo ready; sleep 1000"], &CallOptions::new())?;
    /// assert_eq!(ping.lines().next().unwrap()?, "ready");
    /// ping.kill();                                      // the shell and its sleep
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn spawn<I, S>(&self, args: I, options: &CallOptions) -> Result<Running, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let begun = Instant::now();
        let deadline = options.deadline(begun);
        Running::start(vec![self.plan(args, options, deadline)?], options, begun)
    }

    /// This command with `args`, as the first stage of a [`Pipeline`] (to keep arguments on
    /// the command itself for every call, see [`Command::args`]).
    ///
    /// ```
    /// use deluxe::command::{CallOptions, Command};
    /// let printf = Command::new("printf")?;
    /// let sort = Command::new("sort")?;
    /// let sorted = printf.with_args(["b\na\n"]).pipe(sort.with_args(deluxe::command::NO_ARGS));
    /// assert_eq!(sorted.call(&CallOptions::new())?, b"a\nb\n");
    /// # Ok::<(), deluxe::command::CommandError>(())
    /// ```
    pub fn with_args<I, S>(&self, args: I) -> Pipeline
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Pipeline::new(
            self.clone(),
            args.into_iter()
                .map(|arg| arg.as_ref().to_owned())
                .collect(),
        )
    }

    /// The process to start for `args` under `options` (its stdio is set by [`Running`]);
    /// `deadline` is the end of the call's time limit, which bounds sudo's check too.
    pub(crate) fn plan<I, S>(
        &self,
        args: I,
        options: &CallOptions,
        #[cfg_attr(windows, allow(unused_variables))] deadline: Option<Instant>,
    ) -> Result<Plan, CommandError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        // Run as this process: its own view decides after all (as when it was built).
        #[cfg(unix)]
        if self.hidden && !matches!(&self.run_as, Some(RunAs { sudo: Some(_), .. })) {
            find_executable(&self.name, Vec::new())?;
        }
        let mut checked: Vec<OsString> = Vec::with_capacity(self.args.len());
        let mut check = |arg: &OsStr| {
            if arg.as_encoded_bytes().contains(&0) {
                return Err(CommandError::InvalidArgument {
                    argument: arg.to_string_lossy().into_owned(),
                    problem: ArgumentProblem::Nul,
                });
            }
            #[cfg(windows)]
            windows::check_argument(&self.program, arg)?;
            checked.push(arg.to_owned());
            Ok(())
        };
        for arg in &self.args {
            check(arg)?;
        }
        for arg in args {
            check(arg.as_ref())?;
        }
        if let Some(env) = &options.env {
            check_environment(env.iter().map(|(name, value)| (name, Some(value))))?;
        }
        check_environment(
            options
                .env_changes
                .iter()
                .map(|(name, value)| (name, value.as_ref())),
        )?;
        if let Some(cwd) = &options.cwd {
            match std::fs::metadata(cwd) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => {
                    return Err(CommandError::WorkingDirectory {
                        path: cwd.clone(),
                        error: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                    });
                }
                Err(error) => {
                    return Err(CommandError::WorkingDirectory {
                        path: cwd.clone(),
                        error,
                    });
                }
            }
        }
        #[cfg(windows)]
        let (mut command, sudo) = {
            let mut command = std::process::Command::new(&self.program);
            apply_environment(&mut command, options);
            (command, None)
        };
        #[cfg(unix)]
        let (mut command, sudo) = match &self.run_as {
            Some(
                run_as @ RunAs {
                    sudo: Some(sudo), ..
                },
            ) => {
                if options.env.is_some() {
                    return Err(CommandError::InvalidArgument {
                        argument: "env".to_owned(),
                        problem: ArgumentProblem::ExactEnvironmentAsUser,
                    });
                }
                let mut variables: Vec<(OsString, OsString)> = Vec::new();
                for (name, value) in &options.env_changes {
                    let Some(value) = value else {
                        return Err(CommandError::InvalidArgument {
                            argument: sudo::lossy(name),
                            problem: ArgumentProblem::RemoveVariableAsUser,
                        });
                    };
                    variables.retain(|(known, _)| known != name);
                    variables.push((name.clone(), value.clone()));
                }
                run_as.check_access(&self.program, Access::Program)?;
                if let Some(cwd) = &options.cwd {
                    run_as.check_access(cwd, Access::WorkingDirectory)?;
                }
                let mut names = vec![self.program.clone().into_os_string()];
                let word = match self
                    .sudo_resolves_name(sudo, run_as, &variables, &checked, options, deadline)?
                {
                    Some(listed) => {
                        names.extend([self.name.clone(), listed.into_os_string()]);
                        self.name.as_os_str()
                    }
                    None => self.program.as_os_str(),
                };
                let command = sudo::command(sudo, &run_as.user, word, &variables, false)?;
                let user = run_as.user.clone();
                let sudo = sudo.clone();
                (command, Some(SudoRun { sudo, user, names }))
            }
            _ => {
                // The program sees the name it was asked by, as when a shell runs it
                // (`ls: cannot access ..`, not `/usr/bin/ls: cannot access ..`).
                let mut command = std::process::Command::new(&self.program);
                command.arg0(&self.name);
                apply_environment(&mut command, options);
                (command, None)
            }
        };
        command.args(&checked);
        if let Some(cwd) = &options.cwd {
            command.current_dir(cwd);
        }
        Ok(Plan {
            command,
            program: self.program.clone(),
            sudo,
        })
    }

    /// Whether planning a call asks `sudo -l` (see [`Command::sudo_resolves_name`]).
    #[cfg(feature = "tokio")]
    pub(crate) fn asks_sudo(&self) -> bool {
        #[cfg(unix)]
        return matches!(&self.run_as, Some(RunAs { sudo: Some(_), .. }))
            && !self.name.as_encoded_bytes().contains(&b'/');
        #[cfg(windows)]
        false
    }

    /// Whether `sudo` given the program's bare name would run the very file resolved here
    /// (then the program sees that name as its `argv[0]`): `Some(the path sudo names it by)`.
    /// Asked with `sudo -n -l`, under the options, variables, environment and working
    /// directory of the real call, and compared by device and inode. `None` when the program
    /// was not named by a bare name, or sudo would run another file, or cannot say (it
    /// refuses the listing, does not find the name): the real call then passes the absolute
    /// path, and its own outcome, refusal included, is the call's. A listing refused is not
    /// the call refused: sudo's pick for the name may be another file than ours, and a policy
    /// may want a password to list but not to run.
    #[cfg(unix)]
    fn sudo_resolves_name(
        &self,
        sudo: &Path,
        run_as: &RunAs,
        variables: &[(OsString, OsString)],
        args: &[OsString],
        options: &CallOptions,
        deadline: Option<Instant>,
    ) -> Result<Option<PathBuf>, CommandError> {
        let name = self.name.as_encoded_bytes();
        // After variables there is no `--`, and sudo would read a leading `-` as an option.
        if name.contains(&b'/') || (name.starts_with(b"-") && !variables.is_empty()) {
            return Ok(None);
        }
        let mut list = sudo::command(sudo, &run_as.user, &self.name, variables, true)?;
        list.args(args);
        if let Some(cwd) = &options.cwd {
            list.current_dir(cwd);
        }
        let mut list_options = CallOptions::new();
        if let Some(deadline) = deadline {
            list_options = list_options.timeout(deadline.saturating_duration_since(Instant::now()));
        }
        let plan = Plan {
            command: list,
            program: sudo.to_path_buf(),
            sudo: None,
        };
        let listed =
            Running::start(vec![plan], &list_options, Instant::now()).and_then(Running::wait);
        Ok(match listed {
            Ok(output) => {
                let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
                sudo::listed_program(&output.stdout, &args)
                    .filter(|listed| sudo::same_file(listed, &self.program))
            }
            Err(CommandError::Timeout { .. }) => {
                return Err(CommandError::Timeout {
                    program: self.program.clone(),
                    timeout: options.timeout.unwrap_or_default(),
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                });
            }
            Err(_) => None,
        })
    }
}

fn check_name(name: &OsStr) -> Result<(), CommandError> {
    // Windows adds its own path rules to the shared checks.
    #[cfg(unix)]
    let check_program_here = check_program;
    check_program_here(name.as_encoded_bytes()).map_err(|problem| CommandError::InvalidProgram {
        program: name.to_string_lossy().into_owned(),
        problem,
    })
}

fn check_environment<'a>(
    entries: impl Iterator<Item = (&'a OsString, Option<&'a OsString>)>,
) -> Result<(), CommandError> {
    for (key, value) in entries {
        let problem = if key.is_empty() {
            Some(ArgumentProblem::EmptyVariableName)
        } else if key.as_encoded_bytes().contains(&b'=') {
            Some(ArgumentProblem::VariableNameWithEquals)
        } else if key.as_encoded_bytes().contains(&0)
            || value.is_some_and(|v| v.as_encoded_bytes().contains(&0))
        {
            Some(ArgumentProblem::VariableWithNul)
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
    let path = Path::new(name);
    if path.is_absolute() {
        return match std::fs::metadata(path) {
            Ok(_) if is_executable_file(path) => Ok(path.to_path_buf()),
            Ok(_) => Err(CommandError::NotExecutable {
                path: path.to_path_buf(),
            }),
            Err(error) => Err(CommandError::NotFound {
                program: name.to_string_lossy().into_owned(),
                searched: vec![path.to_path_buf()],
                denied: if error.kind() == io::ErrorKind::PermissionDenied {
                    path.parent().map(Path::to_path_buf).into_iter().collect()
                } else {
                    Vec::new()
                },
                skipped: Vec::new(),
            }),
        };
    }
    let mut searched: Vec<PathBuf> = Vec::with_capacity(directories.len());
    let mut denied = Vec::new();
    for directory in directories {
        if searched.contains(&directory) {
            continue;
        }
        let candidate = directory.join(name);
        match std::fs::metadata(&candidate) {
            Ok(metadata) if metadata.is_file() && is_executable_file(&candidate) => {
                return Ok(candidate);
            }
            Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
                denied.push(directory.clone());
            }
            _ => {}
        }
        searched.push(directory);
    }
    Err(CommandError::NotFound {
        program: name.to_string_lossy().into_owned(),
        searched,
        denied,
        skipped: Vec::new(),
    })
}

fn is_executable_file(path: &Path) -> bool {
    #[cfg(unix)]
    return std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
        && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    #[cfg(windows)]
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
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

/// The environment `options` ask for, on a program started directly (not through `sudo`):
/// the whole environment replaced, then the changes on top.
fn apply_environment(command: &mut std::process::Command, options: &CallOptions) {
    if let Some(env) = &options.env {
        command
            .env_clear()
            .envs(env.iter().map(|(key, value)| (key, value)));
    }
    for (name, value) in &options.env_changes {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
}
