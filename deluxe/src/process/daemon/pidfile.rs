//! The pidfile as the controller sees it.
//!
//! The pidfile lock is the truth: the daemon locks its pidfile for its whole life, so a
//! pidfile nobody holds means "not running", whatever pid it contains. Readers only look at
//! the lock (on Linux, without taking it); a stale pidfile is removed only while holding the
//! lock and only if the path still names the file that was checked.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::error::explained;
use super::sys::{self, Identity};
use super::{DaemonError, Pid};

/// How long a reader waits for a daemon that has locked its pidfile to write its pid in it.
/// The daemon writes right after locking; this only covers a loaded machine.
const PID_WRITE_WAIT: Duration = Duration::from_secs(2);

/// What the pidfile says.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Probe {
    /// There is no pidfile.
    Missing,
    /// A pidfile exists but no process holds its lock: the daemon is not running.
    Unlocked { pid: Option<Pid> },
    /// The daemon holds the pidfile and wrote its pid in it.
    Locked { pid: Pid, identity: Identity },
}

/// Any path as a C string, for the system calls; a NUL in it is an `InvalidInput` error.
pub(crate) fn c_string(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))
}

/// The pidfile's path as a C string, or the error a pidfile path with a NUL deserves.
pub(crate) fn c_path(path: &Path) -> Result<CString, DaemonError> {
    c_string(path).map_err(|source| DaemonError::Pidfile {
        path: path.to_path_buf(),
        source,
    })
}

/// The error for a pidfile operation that failed with `errno`, with the symbolic-link and
/// directory cases spelled out.
pub(crate) fn pidfile_error(path: &Path, errno: Errno) -> DaemonError {
    let source = match errno {
        Errno::ELOOP => explained(
            errno,
            "is a symbolic link; pidfiles are never followed through one, remove it",
        ),
        Errno::EISDIR => explained(errno, "is a directory"),
        Errno::EINVAL => explained(errno, "is not a regular file"),
        other => io::Error::from(other),
    };
    DaemonError::Pidfile {
        path: path.to_path_buf(),
        source,
    }
}

/// The error for a pidfile whose holder never wrote its pid.
pub(crate) fn no_pid(path: &Path) -> DaemonError {
    DaemonError::Pidfile {
        path: path.to_path_buf(),
        source: io::Error::other("is locked by a process that wrote no pid in it"),
    }
}

/// Opens the pidfile, `None` when it does not exist.
fn open(path: &Path, flags: libc::c_int) -> Result<Option<OwnedFd>, DaemonError> {
    match sys::open(
        &c_path(path)?,
        flags | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
    ) {
        // SAFETY: the descriptor was just opened and is owned by nothing else.
        Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(pidfile_error(path, errno)),
    }
}

/// An open pidfile: what is read through it is about this very file, whatever happens to the
/// path meanwhile.
pub(crate) struct Observed {
    pub(crate) fd: OwnedFd,
    pub(crate) identity: Identity,
}

/// Opens the pidfile (never through a symbolic link); `None` when there is none.
pub(crate) fn observe(path: &Path) -> Result<Option<Observed>, DaemonError> {
    let Some(fd) = open(path, libc::O_RDONLY)? else {
        return Ok(None);
    };
    let (identity, regular) =
        sys::fstat(fd.as_raw_fd()).map_err(|errno| pidfile_error(path, errno))?;
    regular.map_err(|errno| pidfile_error(path, errno))?;
    Ok(Some(Observed { fd, identity }))
}

impl Observed {
    /// The lock and the pid, as they are now.
    pub(crate) fn read(&self, path: &Path) -> Result<Probe, DaemonError> {
        let raw = self.fd.as_raw_fd();
        let error = |errno| pidfile_error(path, errno);
        let deadline = Instant::now() + PID_WRITE_WAIT;
        loop {
            let locked = sys::is_locked(raw).map_err(error)?;
            let pid = read_pid(raw).map_err(error)?;
            match (locked, pid) {
                (false, pid) => return Ok(Probe::Unlocked { pid }),
                (true, Some(pid)) => {
                    return Ok(Probe::Locked {
                        pid,
                        identity: self.identity,
                    });
                }
                (true, None) if Instant::now() < deadline => sys::nap(Duration::from_millis(1)),
                (true, None) => return Err(no_pid(path)),
            }
        }
    }

    /// Whether `path` still names this file.
    pub(crate) fn is_named_by(&self, path: &Path) -> bool {
        c_path(path).is_ok_and(|c_path| sys::lstat(&c_path) == Ok(self.identity))
    }
}

/// Reads the pidfile and its lock.
pub(crate) fn probe(path: &Path) -> Result<Probe, DaemonError> {
    match observe(path)? {
        None => Ok(Probe::Missing),
        Some(file) => file.read(path),
    }
}

fn read_pid(fd: RawFd) -> Result<Option<Pid>, Errno> {
    let mut buf = [0u8; 32];
    let len = sys::read_start(fd, &mut buf)?;
    Ok(sys::parse_pid(&buf[..len]).map(Pid))
}

/// Removes the pidfile if no process holds it; says whether it did.
pub(crate) fn remove_stale(path: &Path) -> Result<bool, DaemonError> {
    let Some(fd) = open(path, libc::O_RDWR)? else {
        return Ok(false);
    };
    let raw = fd.as_raw_fd();
    let error = |errno| pidfile_error(path, errno);
    if !sys::try_lock(raw).map_err(error)? {
        return Ok(false);
    }
    // Holding the lock, remove the file only if the path still names it: another controller
    // may have removed it and a new daemon created a new one meanwhile.
    let c_path = c_path(path)?;
    let (ours, _) = sys::fstat(raw).map_err(error)?;
    match sys::lstat(&c_path) {
        Ok(current) if current == ours => sys::unlink(&c_path).map_err(error)?,
        _ => return Ok(false),
    }
    log::debug!("removed stale pidfile {}", path.display());
    Ok(true)
}
