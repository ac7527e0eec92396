//! What `Command` does differently on Windows: `PATHEXT` look-up, Windows path rules for
//! program names, batch-file arguments, NTSTATUS crash codes, and no other user.

#[allow(unsafe_code)]
mod job;

pub(super) use job::Job;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::error::{is_crash, ntstatus};
use super::{ArgumentProblem, Command, CommandError};
use crate::command::names::{self, ProgramProblem};

/// The search path used when `PATH` is not set (on Windows).
///
/// ```
/// use deluxe::command::DEFAULT_PATH;
/// assert!(std::env::split_paths(DEFAULT_PATH).all(|dir| dir.is_absolute()));
/// ```
#[cfg_attr(docsrs, doc(cfg(windows)))]
pub const DEFAULT_PATH: &str = r"C:\Windows\System32;C:\Windows";

/// The extensions tried, in order, when `PATHEXT` is not set: a bare name such as `git` finds
/// `git.com`, `git.exe`, `git.bat` or `git.cmd`.
///
/// ```
/// use deluxe::command::DEFAULT_PATHEXT;
/// assert!(DEFAULT_PATHEXT.split(';').all(|extension| extension.starts_with('.')));
/// ```
#[cfg_attr(docsrs, doc(cfg(windows)))]
pub const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

impl Command {
    /// On Windows, always [`CommandError::UserUnsupported`]: Windows has no passwordless way
    /// for a program to run another as a different user (no `sudo`; `runas` asks for the
    /// password). `command!(.., user = ..)` is a compile error there for the same reason.
    ///
    /// # Errors
    ///
    /// Always [`CommandError::UserUnsupported`].
    ///
    /// ```
    /// use deluxe::command::{Command, CommandError};
    ///
    /// let error = Command::new("cmd")?.user("Administrator").unwrap_err();
    /// assert!(matches!(error, CommandError::UserUnsupported { .. }));
    /// # Ok::<(), CommandError>(())
    /// ```
    pub fn user(self, user: impl Into<String>) -> Result<Self, CommandError> {
        Err(CommandError::UserUnsupported { user: user.into() })
    }
}

/// The shared checks of [`names::check_program`], with Windows' path rules: `C:\..` and
/// `\\server\..` are absolute (and may hold spaces, as `C:\Program Files` does); a name
/// holding `\`, `/` or `:` that is not absolute (`bin\tool`, `\tool`, `C:tool`) is relative.
pub(super) fn check_program(name: &[u8]) -> Result<(), ProgramProblem> {
    let absolute = is_absolute(name);
    let portable: Vec<u8> = name
        .iter()
        .map(|&byte| match byte {
            b' ' if absolute => b'_',
            b'\\' => b'/',
            other => other,
        })
        .collect();
    match names::check_program(&portable) {
        Err(ProgramProblem::RelativePath) if absolute => Ok(()),
        Ok(()) if !absolute && (portable.contains(&b'/') || portable.contains(&b':')) => {
            Err(ProgramProblem::RelativePath)
        }
        other => other,
    }
}

/// `X:\..`, `X:/..` or a UNC path `\\server\share\..`.
fn is_absolute(name: &[u8]) -> bool {
    let separator = |byte: u8| byte == b'\\' || byte == b'/';
    match name {
        [drive, b':', slash, ..] => drive.is_ascii_alphabetic() && separator(*slash),
        [first, second, ..] => separator(*first) && separator(*second),
        _ => false,
    }
}

/// The extensions of `PATHEXT` (or [`DEFAULT_PATHEXT`]), each with its leading dot.
fn path_extensions() -> Vec<OsString> {
    let listed = std::env::var_os("PATHEXT").unwrap_or_default();
    let extensions: Vec<OsString> = listed
        .to_string_lossy()
        .split(';')
        .map(str::trim)
        .filter(|extension| extension.len() > 1 && extension.starts_with('.'))
        .map(OsString::from)
        .collect();
    if extensions.is_empty() {
        DEFAULT_PATHEXT.split(';').map(OsString::from).collect()
    } else {
        extensions
    }
}

/// The files `base` may stand for: itself when its extension is listed in `PATHEXT`,
/// otherwise `base` with each listed extension appended, in order.
fn candidates(base: &Path, extensions: &[OsString]) -> Vec<PathBuf> {
    let listed = base.extension().is_some_and(|extension| {
        extensions.iter().any(|listed| {
            listed
                .to_string_lossy()
                .trim_start_matches('.')
                .eq_ignore_ascii_case(&extension.to_string_lossy())
        })
    });
    if listed {
        return vec![base.to_path_buf()];
    }
    extensions
        .iter()
        .map(|extension| {
            let mut candidate = base.as_os_str().to_owned();
            candidate.push(extension);
            PathBuf::from(candidate)
        })
        .collect()
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|metadata| metadata.is_file())
}

/// The first program `name` stands for in `directories`, trying the `PATHEXT` extensions in
/// each directory in turn (or `name` itself when absolute). Never the current directory.
pub(super) fn find_executable(
    name: &OsStr,
    directories: Vec<PathBuf>,
) -> Result<PathBuf, CommandError> {
    let not_found = |searched| CommandError::NotFound {
        program: name.to_string_lossy().into_owned(),
        searched,
        denied: Vec::new(),
        skipped: Vec::new(),
    };
    let extensions = path_extensions();
    let path = Path::new(name);
    if is_absolute(name.as_encoded_bytes()) {
        if let Some(found) = candidates(path, &extensions)
            .into_iter()
            .find(|candidate| is_file(candidate))
        {
            return Ok(found);
        }
        return Err(if is_file(path) {
            // There, but not a program: its extension is not one `PATHEXT` lists.
            CommandError::NotExecutable {
                path: path.to_path_buf(),
            }
        } else {
            not_found(vec![path.to_path_buf()])
        });
    }
    directories
        .iter()
        .flat_map(|directory| candidates(&directory.join(name), &extensions))
        .find(|candidate| is_file(candidate))
        .ok_or_else(|| not_found(directories))
}

/// Whether Windows runs `program` through `cmd.exe`: a `.bat` or `.cmd` file (trailing dots
/// and spaces are ignored, as Windows ignores them).
fn is_batch_file(program: &Path) -> bool {
    let name = program.as_os_str().to_string_lossy();
    let name = name.trim_end_matches(['.', ' ']);
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".bat") || lower.ends_with(".cmd")
}

/// Refuses an argument that cannot reach a batch file intact.
///
/// Windows runs a `.bat`/`.cmd` file through `cmd.exe`, which reads the command line with its
/// own rules (`%VAR%`, `&`, `|`, `^`; the BatBadBut class of bug). Rust's standard library
/// quotes and escapes every argument for `cmd.exe` (since 1.77.2), except those holding a line
/// break, where `cmd.exe` would end the command; those are refused here, by name, before
/// anything runs.
pub(super) fn check_argument(program: &Path, argument: &OsStr) -> Result<(), CommandError> {
    let bytes = argument.as_encoded_bytes();
    if is_batch_file(program) && (bytes.contains(&b'\n') || bytes.contains(&b'\r')) {
        return Err(CommandError::InvalidArgument {
            argument: argument.to_string_lossy().into_owned(),
            problem: ArgumentProblem::LineBreakForBatchFile,
        });
    }
    Ok(())
}

/// The error for a program that ended with an NTSTATUS crash code, if it did.
pub(super) fn crash(
    program: &Path,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: &[u8],
) -> Option<CommandError> {
    // Windows exit codes are unsigned 32-bit; std hands them over as `i32`.
    let status = status.code()?.cast_unsigned();
    if !is_crash(status) {
        return None;
    }
    let status_name = match ntstatus(status) {
        Some((name, _)) => name.to_owned(),
        None => "an unknown NTSTATUS".to_owned(),
    };
    Some(CommandError::Crashed {
        program: program.to_path_buf(),
        status,
        status_name,
        stdout,
        stderr: stderr.to_vec(),
    })
}
