//! Running a program as another user: directly when that user is us, otherwise through
//! `sudo -n -u USER -- [NAME=VALUE..] /absolute/program ARGS..`, and telling `sudo`'s own
//! refusals apart from the program's failures.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Access, CommandError, SudoRefusal};

/// The account a command runs as, and how it gets there.
#[derive(Clone, Debug)]
pub(crate) struct RunAs {
    pub(crate) user: String,
    uid: u32,
    gids: Vec<u32>,
    /// `None`: the user is the one running this process; the program runs directly.
    pub(crate) sudo: Option<PathBuf>,
}

impl RunAs {
    pub(crate) fn new(user: String, account: &nix::unistd::User, sudo: Option<PathBuf>) -> Self {
        Self {
            gids: groups_of(account),
            uid: account.uid.as_raw(),
            user,
            sudo,
        }
    }

    /// Whether `account` is the one this process runs as (really and effectively).
    pub(crate) fn is_current(account: &nix::unistd::User) -> bool {
        nix::unistd::getuid() == account.uid && nix::unistd::geteuid() == account.uid
    }

    /// Checks that the user can reach `path`: every directory above it searchable, and the
    /// path itself executable (a program) or searchable (a working directory), from its mode
    /// bits. Paths this process cannot inspect are left for the program's start to judge.
    pub(crate) fn check_access(&self, path: &Path, what: Access) -> Result<(), CommandError> {
        if self.uid == 0 || self.sudo.is_none() {
            return Ok(());
        }
        let denied = || CommandError::UserCannotAccess {
            user: self.user.clone(),
            what,
            path: path.to_path_buf(),
        };
        let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
        ancestors.reverse();
        for directory in ancestors {
            match std::fs::metadata(directory) {
                Ok(metadata) if !self.may(&metadata, 0o1) => return Err(denied()),
                Ok(_) => {}
                Err(_) => return Ok(()),
            }
        }
        match std::fs::metadata(path) {
            Ok(metadata) if !self.may(&metadata, 0o1) => Err(denied()),
            _ => Ok(()),
        }
    }

    /// Whether the user has permission `bit` (1 = execute/search) on a file, by its mode.
    fn may(&self, metadata: &std::fs::Metadata, bit: u32) -> bool {
        let mode = metadata.mode();
        let shift = if metadata.uid() == self.uid {
            6
        } else if self.gids.contains(&metadata.gid()) {
            3
        } else {
            0
        };
        mode >> shift & bit != 0
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn groups_of(account: &nix::unistd::User) -> Vec<u32> {
    let Ok(name) = std::ffi::CString::new(account.name.as_bytes()) else {
        return vec![account.gid.as_raw()];
    };
    nix::unistd::getgrouplist(&name, account.gid).map_or_else(
        |_| vec![account.gid.as_raw()],
        |groups| groups.into_iter().map(nix::unistd::Gid::as_raw).collect(),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn groups_of(account: &nix::unistd::User) -> Vec<u32> {
    vec![account.gid.as_raw()]
}

/// `sudo -n -u USER [NAME=VALUE..] [--] PROGRAM` in front of the arguments. Variables go on
/// sudo's command line, where its policy checks them (and logs the real program), never
/// through a helper such as `env` that sudo would see as the program. sudo reads variables
/// only before `--`; the program, an absolute path, cannot be taken for an option.
pub(crate) fn command(
    sudo: &Path,
    user: &str,
    program: &Path,
    variables: &[(OsString, OsString)],
) -> Result<std::process::Command, CommandError> {
    let mut command = std::process::Command::new(sudo);
    command.args(["-n", "-u", user]);
    if variables.is_empty() {
        command.arg("--");
    } else if program.as_os_str().as_bytes().contains(&b'=') {
        return Err(CommandError::InvalidArgument {
            argument: program.to_string_lossy().into_owned(),
            problem: super::ArgumentProblem::ProgramWithEqualsAsUser,
        });
    }
    for (name, value) in variables {
        if name.as_bytes().starts_with(b"-") {
            return Err(CommandError::InvalidArgument {
                argument: lossy(name),
                problem: super::ArgumentProblem::VariableNameWithDashAsUser,
            });
        }
        let mut entry = name.clone();
        entry.push("=");
        entry.push(value);
        command.arg(entry);
    }
    command.arg(program);
    Ok(command)
}

/// Whether what a program run through `sudo` left on stderr, as it exited with code 1, is
/// `sudo` refusing to run it (then: why). Recognised from sudo's own messages, which it
/// prints in the caller's language: in another language than English a refusal may be
/// reported as the program's exit code 1.
pub(crate) fn refusal(stderr: &str, program: &Path) -> Option<SudoRefusal> {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    if lines.is_empty()
        || !lines
            .iter()
            .all(|line| line.starts_with("sudo: ") || line.starts_with("Sorry, user "))
    {
        return None;
    }
    let text = stderr;
    let program = program.to_string_lossy();
    Some(if text.contains("a password is required") {
        SudoRefusal::PasswordRequired
    } else if text.contains("not allowed to set the following environment variables") {
        SudoRefusal::EnvironmentNotAllowed
    } else if text.starts_with("Sorry, user ") || text.contains("is not in the sudoers file") {
        SudoRefusal::NotAllowed
    } else if text.contains(&format!("unable to execute {program}"))
        || text.contains(&format!("{program}: command not found"))
    {
        SudoRefusal::CannotExecute
    } else {
        SudoRefusal::Other
    })
}

/// The name of an argument as given, for messages.
pub(crate) fn lossy(value: &OsStr) -> String {
    value.to_string_lossy().into_owned()
}
