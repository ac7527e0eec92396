//! The error of [`Command`](super::Command): one matchable variant per way a command can fail.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::process::names::{ProgramProblem, UserNameProblem};

/// How much of a failed command's standard error is kept in [`CommandError::Exit`] and
/// [`CommandError::Signal`]: the last 64 KiB.
///
/// ```
/// use deluxe::process::{command::STDERR_CAP, Command};
/// let sh = Command::new("sh")?;
/// let error = sh.call(["-c", "head -c 100000 /dev/zero | tr '\\0' x >&2; exit 1"]).unwrap_err();
/// assert_eq!(error.stderr().unwrap().len(), STDERR_CAP);
/// # Ok::<(), deluxe::process::CommandError>(())
/// ```
pub const STDERR_CAP: usize = 64 * 1024;

/// How many characters of standard error a [`CommandError`]'s one-line `Display` shows.
const DISPLAY_STDERR_CHARS: usize = 300;

/// Why a [`Command`](super::Command) could not be built or did not succeed.
///
/// Every variant carries what a person needs to act: the program, the places searched, the
/// exit code or signal, and the end of the program's standard error. The `Display` form is a
/// single line.
///
/// ```
/// use deluxe::process::{Command, CommandError};
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
        /// The name as given.
        program: String,
        /// What is wrong with it.
        problem: ProgramProblem,
    },
    /// A directory given to [`Command::with_path`](super::Command::with_path) is not absolute.
    InvalidSearchPath {
        /// The offending directory.
        path: PathBuf,
    },
    /// No executable file of that name exists in any of the places searched.
    NotFound {
        /// The name as given.
        program: String,
        /// Every directory searched, in order (or the absolute path checked).
        searched: Vec<PathBuf>,
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
    /// A command must run as another user but `sudo` is not installed.
    SudoMissing {
        /// Every directory searched for `sudo`.
        searched: Vec<PathBuf>,
    },
    /// An argument or environment entry cannot be passed to a program.
    InvalidArgument {
        /// The argument (lossily converted for display).
        argument: String,
        /// Why it cannot be passed.
        problem: &'static str,
    },
    /// The working directory asked for does not exist or cannot be entered.
    WorkingDirectory {
        /// The directory asked for.
        path: PathBuf,
        /// The error met checking it.
        source: io::Error,
    },
    /// The program ran and exited with a non-zero code.
    Exit {
        /// The program run.
        program: PathBuf,
        /// Its exit code.
        code: i32,
        /// The end of its standard error (the last 64 KiB).
        stderr: String,
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
        /// The end of its standard error (the last 64 KiB).
        stderr: String,
    },
    /// Starting the program or talking to it failed.
    Io {
        /// The program run.
        program: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl CommandError {
    /// The end of the failed program's standard error, when it ran.
    ///
    /// ```
    /// use deluxe::process::Command;
    ///
    /// let error = Command::new("ls")?.call(["/definitely/not/here"]).unwrap_err();
    /// assert!(error.stderr().unwrap().contains("/definitely/not/here"));
    /// # Ok::<(), deluxe::process::CommandError>(())
    /// ```
    pub fn stderr(&self) -> Option<&str> {
        match self {
            Self::Exit { stderr, .. } | Self::Signal { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProgram { program, problem } => {
                write!(f, "program name {program:?} {problem}")
            }
            Self::InvalidSearchPath { path } => write!(
                f,
                "search directory {} is not absolute; give absolute directories such as \
                 `/usr/bin`",
                path.display()
            ),
            Self::NotFound { program, searched } => {
                write!(f, "program `{program}` not found; searched ")?;
                write_paths(f, searched)
            }
            Self::NotExecutable { path } => {
                write!(f, "{} is not an executable file", path.display())
            }
            Self::InvalidUser { user, problem } => write!(f, "user name {user:?} {problem}"),
            Self::UnknownUser { user } => write!(f, "no user account named `{user}` exists"),
            Self::SudoMissing { searched } => {
                f.write_str("running a command as another user needs `sudo`, which is not installed; searched ")?;
                write_paths(f, searched)
            }
            Self::InvalidArgument { argument, problem } => {
                write!(f, "argument {argument:?} {problem}")
            }
            Self::WorkingDirectory { path, source } => {
                write!(
                    f,
                    "working directory {} cannot be used: {source}",
                    path.display()
                )
            }
            Self::Exit {
                program,
                code,
                stderr,
            } => {
                write!(f, "{} exited with code {code}", program.display())?;
                write_stderr(f, stderr)
            }
            Self::Signal {
                program,
                signal,
                signal_name,
                core_dumped,
                stderr,
            } => {
                write!(
                    f,
                    "{} was killed by {signal_name} (signal {signal}",
                    program.display()
                )?;
                f.write_str(if *core_dumped { ", core dumped)" } else { ")" })?;
                write_stderr(f, stderr)
            }
            Self::Io { program, source } => write!(f, "running {}: {source}", program.display()),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::WorkingDirectory { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn write_paths(f: &mut fmt::Formatter<'_>, paths: &[PathBuf]) -> fmt::Result {
    if paths.is_empty() {
        return f.write_str("nowhere (the search path is empty)");
    }
    for (index, path) in paths.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}", path.display())?;
    }
    Ok(())
}

/// Writes `: line; line; ...` with the non-empty lines of `stderr`, on one line, shortened.
fn write_stderr(f: &mut fmt::Formatter<'_>, stderr: &str) -> fmt::Result {
    let mut written = 0;
    for line in stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        f.write_str(if written == 0 { ": " } else { "; " })?;
        for c in line.chars() {
            if written == DISPLAY_STDERR_CHARS {
                return f.write_str("…");
            }
            f.write_str(c.encode_utf8(&mut [0; 4]))?;
            written += 1;
        }
    }
    Ok(())
}

/// The last [`STDERR_CAP`] bytes of a stream, kept while it is read.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Tail {
    /// The buffer to read into; call [`Tail::trim`] after each read.
    pub(crate) fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Drops what is older than the cap, in amortised constant time per byte.
    pub(crate) fn trim(&mut self) {
        if self.bytes.len() > 2 * STDERR_CAP {
            self.bytes.drain(..self.bytes.len() - STDERR_CAP);
            self.truncated = true;
        }
    }

    /// The kept text: at most the last 64 KiB, starting on a character boundary (bytes that
    /// are not UTF-8 are replaced, so binary output stays within the cap too).
    pub(crate) fn into_string(mut self) -> String {
        if self.bytes.len() > STDERR_CAP {
            self.bytes.drain(..self.bytes.len() - STDERR_CAP);
            self.truncated = true;
        }
        let start = if self.truncated {
            // Skip UTF-8 continuation bytes cut off from their character.
            self.bytes
                .iter()
                .take(3)
                .take_while(|&&byte| byte & 0xC0 == 0x80)
                .count()
        } else {
            0
        };
        let text = String::from_utf8_lossy(&self.bytes[start..]);
        let mut cut = text.len().saturating_sub(STDERR_CAP);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text[cut..].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_64_kib_on_a_char_boundary() {
        let mut tail = Tail::default();
        for _ in 0..100_000 {
            tail.buffer().extend_from_slice("é".as_bytes());
            tail.trim();
        }
        tail.buffer().extend_from_slice(b"end");
        let text = tail.into_string();
        assert!(text.len() <= STDERR_CAP);
        assert!(text.len() >= STDERR_CAP - 3);
        assert!(text.ends_with("éend"));
        assert!(!text.contains('\u{FFFD}'));
    }

    #[test]
    fn binary_stderr_stays_within_the_cap() {
        let mut tail = Tail::default();
        tail.buffer().extend((0..200_000).map(|i| (i % 251) as u8));
        tail.trim();
        let text = tail.into_string();
        assert!(text.len() <= STDERR_CAP);
        assert!(text.len() > STDERR_CAP - 4);
    }

    proptest::proptest! {
        /// However stderr arrives, what is kept is its end, within the cap.
        #[test]
        fn the_tail_is_the_end_of_the_stream(
            lengths in proptest::collection::vec(0..40_000usize, 0..6),
            offset in 0..4usize,
        ) {
            // Chunks of mixed one-, two- and three-byte characters, cut anywhere.
            let pattern: Vec<char> = "ab é€\n".chars().collect();
            let chunks: Vec<String> = lengths
                .iter()
                .enumerate()
                .map(|(i, len)| (0..*len).map(|j| pattern[(i + j + offset) % pattern.len()]).collect())
                .collect();
            let mut tail = Tail::default();
            for chunk in &chunks {
                tail.buffer().extend_from_slice(chunk.as_bytes());
                tail.trim();
            }
            let whole: String = chunks.concat();
            let kept = tail.into_string();
            proptest::prop_assert!(kept.len() <= STDERR_CAP);
            proptest::prop_assert!(whole.ends_with(&kept));
            proptest::prop_assert!(kept.len() + 3 >= whole.len().min(STDERR_CAP));
        }
    }

    #[test]
    fn display_is_one_line_and_short() {
        let error = CommandError::Exit {
            program: "/bin/tool".into(),
            code: 2,
            stderr: format!("first\n\n  second  \n{}\n", "x".repeat(1000)),
        };
        let text = error.to_string();
        assert!(!text.contains('\n'));
        assert!(text.starts_with("/bin/tool exited with code 2: first; second; xxx"));
        assert!(text.ends_with('…'));
        assert!(text.chars().count() < 400);
    }
}
