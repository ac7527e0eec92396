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
        /// The end of its standard error (the last 64 KiB).
        stderr: String,
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
            Self::Exit { stderr, .. }
            | Self::Signal { stderr, .. }
            | Self::Crashed { stderr, .. } => Some(stderr),
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
            Self::UserUnsupported { user } => write!(
                f,
                "cannot run a command as user `{user}` on this platform: Windows has no \
                 passwordless way to switch user (no `sudo`; `runas` asks for the password); run \
                 the program as the current user, or as a service under that account"
            ),
            Self::Crashed {
                program,
                status,
                status_name,
                stderr,
            } => {
                write!(
                    f,
                    "{} crashed with {status_name} ({status:#010X}",
                    program.display()
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
            Self::WorkingDirectory { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
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
            stderr: "last words\n".into(),
        };
        assert_eq!(
            error.to_string(),
            r"C:\tool.exe crashed with STATUS_ACCESS_VIOLATION (0xC0000005: an invalid memory access): last words"
        );
        assert_eq!(error.stderr(), Some("last words\n"));
        let unknown = CommandError::Crashed {
            program: r"C:\tool.exe".into(),
            status: 0xC000_1234,
            status_name: "an unknown NTSTATUS".into(),
            stderr: String::new(),
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
            stderr: format!("first\n\n  second  \n{}\n", "x".repeat(1000)),
        };
        let text = error.to_string();
        assert!(!text.contains('\n'));
        assert!(text.starts_with("/bin/tool exited with code 2: first; second; xxx"));
        assert!(text.ends_with('…'));
        assert!(text.chars().count() < 400);
    }
}
