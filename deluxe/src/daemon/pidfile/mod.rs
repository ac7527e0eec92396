//! Everything about the pidfile: reading it and its lock (the controller), locking and
//! holding it (the daemon), removing it, and the pid text.
//!
//! The pidfile lock is the truth: the daemon locks its pidfile for its whole life, so a
//! pidfile nobody holds means "not running", whatever pid it contains. The daemon makes its
//! pidfile under a private name in the same directory, locks and fills it, and only then
//! renames it into place: no other process ever sees it unlocked, and none can take a lock
//! on it first. Readers only look at the locks, without taking them, and read locks (which
//! anyone who may read the file can take) never count. Controllers never remove a pidfile:
//! a starting daemon replaces a stale one by renaming over it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::sys::{self, CPath, Holder, Identity};
use super::{DaemonError, Pid, PidfileRisk};

mod held;
pub(crate) use held::{
    Held, LockError, Restore, lock, lock_private, own, reclaim_later, set_handing_over,
    take_reclaim,
};

/// What a daemon writes after its pid in its pidfile as it exits because the stop grace
/// expired before `run` returned.
pub(crate) const GRACE_EXPIRED: &str = "grace-expired";

/// How many times the daemon retries a pidfile that another process holds without having
/// written a pid yet, or that was replaced while being looked at; a millisecond apart.
const LOCK_ATTEMPTS: usize = 2000;

/// The pidfile's path as a C string, or the error a pidfile path with a NUL deserves.
pub(crate) fn c_path(path: &Path) -> Result<CPath, DaemonError> {
    CPath::new(path.to_path_buf()).map_err(|source| DaemonError::Pidfile {
        path: path.to_path_buf(),
        source,
    })
}

/// The error for a pidfile operation that failed with `errno`.
pub(crate) fn pidfile_error(path: &Path, errno: Errno) -> DaemonError {
    DaemonError::Pidfile {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// Opens the pidfile, `None` when it does not exist.
fn open(path: &Path, flags: libc::c_int) -> Result<Option<OwnedFd>, DaemonError> {
    match sys::open(
        c_path(path)?.c(),
        flags | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(pidfile_error(path, errno)),
    }
}

/// An open pidfile: what is read through it is about this very file, whatever happens to the
/// path meanwhile.
pub(crate) struct Observed {
    pub(crate) fd: OwnedFd,
    pub(crate) identity: Identity,
    /// The file's owner.
    pub(crate) owner: u32,
}

/// Opens the pidfile (never through a symbolic link); `None` when there is none.
pub(crate) fn observe(path: &Path) -> Result<Option<Observed>, DaemonError> {
    let Some(fd) = open(path, libc::O_RDONLY)? else {
        return Ok(None);
    };
    let error = |errno| pidfile_error(path, errno);
    let (identity, regular) = sys::fstat(fd.as_fd()).map_err(error)?;
    regular.map_err(error)?;
    let owner = nix::sys::stat::fstat(&fd).map_err(error)?.st_uid;
    Ok(Some(Observed {
        fd,
        identity,
        owner,
    }))
}

impl Observed {
    /// Who holds the lock, and the pid written in the file, as they are now.
    pub(crate) fn look(&self, path: &Path) -> Result<(Holder, Option<Pid>), DaemonError> {
        let fd = self.fd.as_fd();
        let error = |errno| pidfile_error(path, errno);
        let holder = sys::holder(fd).map_err(error)?;
        Ok((holder, read_pid(fd).map_err(error)?))
    }

    /// Whether `path` still names this file.
    pub(crate) fn is_named_by(&self, path: &Path) -> bool {
        c_path(path).is_ok_and(|c_path| sys::lstat(c_path.c()) == Ok(self.identity))
    }
}

fn read_pid(fd: BorrowedFd<'_>) -> Result<Option<Pid>, Errno> {
    let mut buf = [0u8; 32];
    let len = sys::read_start(fd, &mut buf)?;
    Ok(parse_pid(&buf[..len]).map(Pid))
}

/// The private directory of a user's default pidfiles when there is no usable
/// `XDG_RUNTIME_DIR`: `deluxe-UID` in the temporary directory (`TMPDIR` when it is an
/// absolute path, `/tmp` otherwise: an empty or relative `TMPDIR` would give each working
/// directory a "singleton" of its own), created `0700` by `start`.
pub(crate) fn private_directory(uid: u32) -> PathBuf {
    let temp = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    temp.join(format!("deluxe-{uid}"))
}

/// Checks that the pidfile at `path` is not another user's forgery. In the private directory
/// of default pidfiles: that directory is this user's, a real directory, closed to others
/// (`starting`: made first if missing). `starting`, in a world-writable directory: the
/// pidfile, if any, belongs to this user, root or the daemon's user (`daemon_user`), so that
/// another user cannot make a start find "its" daemon running. (The other calls need not
/// refuse such a file: they signal only its lock holder, and only if it runs as this user or
/// as the file's owner.) Other directories are trusted: their owner decides who writes there.
pub(crate) fn check_place(
    path: &Path,
    daemon_user: Option<u32>,
    starting: bool,
) -> Result<(), DaemonError> {
    let unsafe_pidfile = |risk| DaemonError::UnsafePidfile {
        path: path.to_path_buf(),
        risk,
    };
    let me = nix::unistd::geteuid().as_raw();
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if directory == private_directory(me) {
        if starting {
            match nix::unistd::mkdir(directory, nix::sys::stat::Mode::S_IRWXU) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(pidfile_error(path, errno)),
            }
        }
        let stat = match nix::sys::stat::lstat(directory) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(()),
            Err(errno) => return Err(pidfile_error(path, errno)),
        };
        #[allow(clippy::useless_conversion)] // `mode_t` is `u16` on some systems.
        let mode = u32::from(stat.st_mode);
        #[allow(clippy::useless_conversion)]
        let (kind, directory) = (u32::from(libc::S_IFMT), u32::from(libc::S_IFDIR));
        return if mode & kind != directory {
            Err(unsafe_pidfile(PidfileRisk::NotADirectory))
        } else if stat.st_uid != me {
            Err(unsafe_pidfile(PidfileRisk::DirectoryOwner {
                uid: stat.st_uid,
            }))
        } else if mode & 0o077 != 0 {
            Err(unsafe_pidfile(PidfileRisk::DirectoryMode {
                mode: mode & 0o7777,
            }))
        } else {
            Ok(())
        };
    }
    if !starting {
        return Ok(());
    }
    let Ok(stat) = nix::sys::stat::stat(directory) else {
        // A directory that cannot be looked at: opening the pidfile will say why.
        return Ok(());
    };
    #[allow(clippy::useless_conversion)] // `mode_t` is `u16` on some systems.
    let (mode, others_write, sticky) = (
        u32::from(stat.st_mode),
        u32::from(libc::S_IWOTH),
        u32::from(libc::S_ISVTX),
    );
    if mode & others_write == 0 {
        return Ok(());
    }
    if mode & sticky == 0 {
        // Anyone may replace any file here, now or later: allowed (a daemon's user may need
        // to remove its pidfile), but never a file someone else made.
        log::warn!(
            "pidfile {} is in a world-writable directory without the sticky bit: any user can \
             replace it",
            path.display()
        );
    }
    match nix::sys::stat::lstat(path) {
        Ok(file) if file.st_uid != me && file.st_uid != 0 && Some(file.st_uid) != daemon_user => {
            Err(unsafe_pidfile(PidfileRisk::ForeignOwner {
                uid: file.st_uid,
            }))
        }
        _ => Ok(()),
    }
}

/// Whether the daemon that held this pidfile wrote `word` after its pid as it exited
/// ([`Held::mark`]).
pub(crate) fn said(fd: BorrowedFd<'_>, word: &str) -> bool {
    let mut buf = [0u8; 64];
    sys::read_start(fd, &mut buf).is_ok_and(|len| {
        buf[..len]
            .split(|b| *b == b'\n')
            .nth(1)
            .is_some_and(|line| line == word.as_bytes())
    })
}

/// The pid as decimal text followed by a newline, in `buf`; returns the used part.
fn format_pid(pid: u32, buf: &mut [u8; 12]) -> &[u8] {
    let mut end = buf.len();
    end -= 1;
    buf[end] = b'\n';
    let mut rest = pid;
    loop {
        end -= 1;
        buf[end] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buf[end..]
}

/// The pid a pidfile holds: decimal digits, optionally followed by whitespace (a newline).
fn parse_pid(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 || !bytes[digits..].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let pid = bytes[..digits]
        .iter()
        .fold(0u64, |pid, digit| pid * 10 + u64::from(digit - b'0'));
    (1..=i32::MAX as u64).contains(&pid).then_some(pid as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_round_trip_through_text() {
        for pid in [1, 9, 10, 4_194_304, i32::MAX as u32] {
            let mut buf = [0; 12];
            let text = format_pid(pid, &mut buf);
            assert_eq!(text, format!("{pid}\n").as_bytes());
            assert_eq!(parse_pid(text), Some(pid));
        }
    }

    #[test]
    fn garbage_is_no_pid() {
        for text in [
            &b""[..],
            b"\n",
            b"0\n",
            b"-5\n",
            b"12a\n",
            b"abc",
            b"2147483648\n",
            b"99999999999\n",
            b" 12\n",
            b"12 13\n",
        ] {
            assert_eq!(parse_pid(text), None, "{:?}", String::from_utf8_lossy(text));
        }
        assert_eq!(parse_pid(b"42"), Some(42));
        assert_eq!(parse_pid(b"42\r\n"), Some(42));
    }

    /// The pidfile's content rules, written as plainly as possible.
    fn model(bytes: &[u8]) -> Option<u32> {
        let text = std::str::from_utf8(bytes).ok()?;
        let digits = text.trim_end_matches(|c: char| c.is_ascii_whitespace());
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 10 {
            return None;
        }
        let pid: u64 = digits.parse().ok()?;
        (pid >= 1 && pid <= i32::MAX as u64).then_some(pid as u32)
    }

    proptest::proptest! {
        #[test]
        fn parse_pid_agrees_with_the_model(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16)) {
            proptest::prop_assert_eq!(parse_pid(&bytes), model(&bytes));
        }

        #[test]
        fn likely_pidfile_contents_agree_with_the_model(text in "[0-9 \n\t-]{0,14}") {
            proptest::prop_assert_eq!(parse_pid(text.as_bytes()), model(text.as_bytes()));
        }

        #[test]
        fn every_pid_round_trips(pid in 1..=i32::MAX as u32) {
            let mut buf = [0; 12];
            proptest::prop_assert_eq!(parse_pid(format_pid(pid, &mut buf)), Some(pid));
        }
    }
}
