//! Running a program as another user: directly when that user is us, otherwise through
//! `sudo -n -u USER [NAME=VALUE..] -- PROGRAM ARGS..`, and telling `sudo`'s own refusals
//! apart from the program's failures by what sudo did ([`trace`]), not only by what was
//! written on stderr, which the program can write too.
//!
//! `PROGRAM` is the bare name the program was asked by when `sudo -l` says sudo would run the
//! very file resolved here (so the program sees that name as its `argv[0]`), else the
//! absolute path: sudo never gets to pick another file of the same name.

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

/// `sudo -n [-l] -u USER [NAME=VALUE..] [--] WORD` in front of the arguments: `WORD` is the
/// program's absolute path, or its bare name once sudo is known to resolve it to the same
/// file; with `list`, sudo only says which file it would run (`sudo -l`), under the very
/// options, variables and environment that decide it for the real call. Variables go on
/// sudo's command line, where its policy checks them (and logs the real program), never
/// through a helper such as `env` that sudo would see as the program. sudo reads variables
/// only before `--`, so with variables `WORD` follows them directly: it holds no `=` (it would
/// be read as a variable), and the caller gives no bare name starting with `-` then (sudo
/// would read it as an option).
pub(crate) fn command(
    sudo: &Path,
    user: &str,
    word: &OsStr,
    variables: &[(OsString, OsString)],
    list: bool,
) -> Result<std::process::Command, CommandError> {
    let mut command = std::process::Command::new(sudo);
    command.arg("-n");
    if list {
        command.arg("-l");
    }
    command.args(["-u", user]);
    if variables.is_empty() {
        command.arg("--");
    } else if word.as_bytes().contains(&b'=') {
        return Err(CommandError::InvalidArgument {
            argument: word.to_string_lossy().into_owned(),
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
    command.arg(word);
    Ok(command)
}

/// The file `sudo -l -- NAME ARGS..` said it would run, from its standard output: the
/// fully-qualified path, then each argument after a space, then a newline. `None` when the
/// answer is not of that form, or the path is not absolute.
pub(crate) fn listed_program(stdout: &[u8], args: &[&OsStr]) -> Option<PathBuf> {
    let mut rest = stdout.strip_suffix(b"\n")?;
    for arg in args.iter().rev() {
        rest = rest.strip_suffix(arg.as_bytes())?.strip_suffix(b" ")?;
    }
    let path = Path::new(OsStr::from_bytes(rest));
    path.is_absolute().then(|| path.to_path_buf())
}

/// Whether two paths name the same file (device and inode, symbolic links followed): sudo
/// may name a file by another path (`/usr/bin/sh` for `/bin/sh` where `/bin` is a link).
pub(crate) fn same_file(one: &Path, other: &Path) -> bool {
    match (std::fs::metadata(one), std::fs::metadata(other)) {
        (Ok(one), Ok(other)) => one.dev() == other.dev() && one.ino() == other.ino(),
        _ => false,
    }
}

/// What the `sudo` process of a call did before it exited, from the kernel's record of it
/// (read while it is a zombie: exited, not yet reaped, so its pid cannot have been reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
// Without `/proc`, every trace is `Unknown`.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
pub(crate) enum Trace {
    /// It ran nothing: it never changed user (no `exec` of the program in its place) and
    /// reaped no child (no program started beside it). Its exit is sudo's own failure.
    Nothing,
    /// It reaped a child: the program ran in it, or failed to `exec` there (sudo then says
    /// "unable to execute"), or sudo ran its mailer (`mail_always`, `mail_no_perms`: a
    /// refusal it mails about is then taken for the program's exit code 1).
    Child,
    /// It became the program (`exec` in its place: it runs as the target user, under the
    /// program's name).
    Exec,
    /// Not known (no `/proc`: not Linux).
    Unknown,
}

/// What `sudo` (the program `sudo`), process `pid`, did before it exited (see [`Trace`]).
/// Call it once the process has exited and before it is reaped.
pub(crate) fn trace(pid: u32, sudo: &Path) -> Trace {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
        let (Ok(stat), Ok(status)) = (stat, status) else {
            return Trace::Unknown;
        };
        // After `comm)`: state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime: the `c` fields count the children it reaped.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let Some(children) = [8, 10, 13, 14]
            .iter()
            .map(|&index| fields.get(index)?.parse::<u64>().ok())
            .sum::<Option<u64>>()
        else {
            return Trace::Unknown;
        };
        // The name of the file it last executed (its first 15 bytes): sudo's, until it
        // becomes the program.
        let comm = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(comm, _)| comm.as_bytes());
        let name = sudo.file_name().map_or(&[][..], OsStr::as_bytes);
        if comm != Some(&name[..name.len().min(15)]) {
            return Trace::Exec;
        }
        let real_uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().next()?.parse::<u32>().ok());
        match real_uid {
            // sudo runs with the caller's real uid; the program it becomes, with the target's
            // (a target that is the caller never goes through sudo).
            Some(uid) if uid != nix::unistd::getuid().as_raw() => Trace::Exec,
            Some(_) if children > 0 => Trace::Child,
            Some(_) => Trace::Nothing,
            None => Trace::Unknown,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (pid, sudo);
        Trace::Unknown
    }
}

/// Whether a call through `sudo` that exited with code 1 is `sudo` refusing to run the
/// program (then: why), from what sudo did ([`trace`]) and what it said on stderr. `names` are
/// the words sudo's messages may name the program by (its path, the bare name given to sudo,
/// the path sudo resolved that name to).
///
/// Only sudo's own failures are sudo's: a program that ran, whatever it writes, is never
/// taken for a refusal. Where sudo ran nothing, its exit is its own failure, and its words
/// say which ([`SudoRefusal::Other`] when they are not recognised, in another language for
/// one). Where sudo reaped a child, only "unable to execute PROGRAM" (the child's `exec`
/// failed) as sudo's only words is a refusal. Without `/proc`, sudo's messages alone decide.
pub(crate) fn refusal(stderr: &str, names: &[OsString], trace: Trace) -> Option<SudoRefusal> {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let sudo_words = !lines.is_empty()
        && lines
            .iter()
            .all(|line| line.starts_with("sudo: ") || line.starts_with("Sorry, user "));
    let text = stderr;
    // sudo's message naming one of the program's names between `before` and `after`.
    let says = |before: &str, after: &str| {
        names
            .iter()
            .any(|name| text.contains(&format!("{before}{}{after}", name.to_string_lossy())))
    };
    let cannot_execute = says("sudo: unable to execute ", ": ");
    match trace {
        Trace::Exec => return None,
        Trace::Child => {
            return (lines.len() == 1 && cannot_execute).then_some(SudoRefusal::CannotExecute);
        }
        Trace::Unknown if !sudo_words => return None,
        Trace::Nothing | Trace::Unknown => {}
    }
    Some(if text.contains("a password is required") {
        SudoRefusal::PasswordRequired
    } else if text.contains("not allowed to set the following environment variables") {
        SudoRefusal::EnvironmentNotAllowed
    } else if text.starts_with("Sorry, user ") || text.contains("is not in the sudoers file") {
        SudoRefusal::NotAllowed
    } else if cannot_execute || says("", ": command not found") {
        SudoRefusal::CannotExecute
    } else {
        SudoRefusal::Other
    })
}

/// The name of an argument as given, for messages.
pub(crate) fn lossy(value: &OsStr) -> String {
    value.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> &OsStr {
        OsStr::new(text)
    }

    #[test]
    fn listed_programs_are_read_back_from_sudo_l() {
        let args = [os("-un"), os("a b"), os(""), os("c\nd")];
        assert_eq!(
            listed_program(b"/usr/bin/id -un a b  c\nd\n", &args),
            Some(PathBuf::from("/usr/bin/id"))
        );
        assert_eq!(
            listed_program(b"/opt/my tools/id\n", &[]),
            Some(PathBuf::from("/opt/my tools/id"))
        );
        // Not the arguments asked about, not a path, not sudo's answer at all.
        assert_eq!(listed_program(b"/usr/bin/id -un\n", &[os("-u")]), None);
        assert_eq!(listed_program(b"bin/id\n", &[]), None);
        assert_eq!(listed_program(b"", &[]), None);
        assert_eq!(listed_program(b"/usr/bin/id", &[]), None);
        assert_eq!(listed_program(b"\n", &[]), None);
    }

    #[test]
    fn the_same_file_by_another_path_is_the_same_file() {
        let dir = std::env::temp_dir().join(format!("deluxe-same-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tool"), b"").unwrap();
        std::fs::write(dir.join("copy"), b"").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("link")).unwrap();
        assert!(same_file(&dir.join("tool"), &dir.join("link/tool")));
        assert!(!same_file(&dir.join("tool"), &dir.join("copy")));
        assert!(!same_file(&dir.join("tool"), &dir.join("missing")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refusals_are_recognised_by_any_name_of_the_program() {
        let names = [OsString::from("/bin/sh"), OsString::from("sh")];
        let nothing = Trace::Nothing;
        assert_eq!(
            refusal("sudo: sh: command not found\n", &names, nothing),
            Some(SudoRefusal::CannotExecute)
        );
        assert_eq!(
            refusal(
                "sudo: unable to execute /bin/sh: Permission denied\n",
                &names,
                Trace::Child
            ),
            Some(SudoRefusal::CannotExecute)
        );
        assert_eq!(
            refusal("sudo: unable to execute /bin/other: x\n", &names, nothing),
            Some(SudoRefusal::Other)
        );
        assert_eq!(refusal("sh: 1: oops\n", &names, Trace::Unknown), None);
    }

    #[test]
    fn only_a_sudo_that_ran_nothing_refuses() {
        let names = [OsString::from("/bin/sh")];
        let words = "sudo: a password is required\n";
        assert_eq!(
            refusal(words, &names, Trace::Nothing),
            Some(SudoRefusal::PasswordRequired)
        );
        // The program ran (beside sudo, or in its place) and wrote sudo's words itself.
        assert_eq!(refusal(words, &names, Trace::Child), None);
        assert_eq!(refusal(words, &names, Trace::Exec), None);
        // sudo ran nothing: its failure, whatever its language.
        assert_eq!(
            refusal(
                "sudo: es wird ein Passwort benötigt\n",
                &names,
                Trace::Nothing
            ),
            Some(SudoRefusal::Other)
        );
    }
}
