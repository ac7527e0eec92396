//! The system calls of the daemon's modules: the only module of `daemon` allowed to use
//! `unsafe` (the crate denies it everywhere but its system-call modules). The steps (`launch`,
//! `setup`, `serve`, ...) call the safe wrappers here, over owned or borrowed descriptors, and
//! each `unsafe` block keeps its `// SAFETY:` reasoning beside the call. The pidfd calls are
//! `command::sys`'s, shared.
//!
//! The calls the forked daemon makes before `setup` are async-signal-safe: plain system calls
//! on owned or borrowed descriptors and on NUL-terminated paths prepared before the fork
//! ([`CPath`]), no allocation, no lock, no `std` I/O. That is what makes forking from a
//! multi-threaded controller safe (another thread may have held any lock when the process
//! was copied, and nothing here waits on one). Dropping an [`OwnedFd`] only calls `close`,
//! which is async-signal-safe too. The few that allocate ([`process_alive`] and
//! [`live_in_group`] read `/proc`; [`set_env_in_forked_child`], [`ClosedInForks`],
//! [`at_exit`]) serve the controller, the container init and the running daemon only.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use crate::time;

/// A path together with its C string, made once before forking: what the system calls take
/// and what errors name.
#[derive(Clone, Debug)]
pub(crate) struct CPath {
    path: PathBuf,
    c: CString,
}

impl CPath {
    /// `InvalidInput` for a path holding a NUL byte.
    pub(crate) fn new(path: PathBuf) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte")
        })?;
        Ok(Self { path, c })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn c(&self) -> &CStr {
        &self.c
    }
}

/// Turns a `-1`-on-error return value into the errno.
fn check(result: libc::c_int) -> Result<libc::c_int, Errno> {
    if result == -1 {
        Err(Errno::last())
    } else {
        Ok(result)
    }
}

/// Retries a call interrupted by a signal.
fn retry(mut call: impl FnMut() -> libc::c_int) -> Result<libc::c_int, Errno> {
    loop {
        match check(call()) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Which file a descriptor or path is: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
}

impl Identity {
    /// The identity from a device and inode number.
    pub(crate) fn new(dev: u64, ino: u64) -> Self {
        Self { dev, ino }
    }

    /// The device and inode number.
    pub(crate) fn parts(self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// The identity of an open file, and whether it is a regular file (`EISDIR` for a directory).
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<(Identity, Result<(), Errno>), Errno> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
    let regular = match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => Ok(()),
        libc::S_IFDIR => Err(Errno::EISDIR),
        _ => Err(Errno::EINVAL),
    };
    #[allow(clippy::unnecessary_cast)] // The field types differ between platforms.
    Ok((
        Identity {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
        },
        regular,
    ))
}

/// What the log file checks need of an open file.
pub(crate) struct FileStatus {
    pub(crate) regular: bool,
    pub(crate) links: u64,
    pub(crate) owner: libc::uid_t,
}

/// The type, link count and owner of an open file.
pub(crate) fn file_status(fd: BorrowedFd<'_>) -> Result<FileStatus, Errno> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &raw mut stat) })?;
    #[allow(clippy::unnecessary_cast)] // The field types differ between platforms.
    Ok(FileStatus {
        regular: stat.st_mode & libc::S_IFMT == libc::S_IFREG,
        links: stat.st_nlink as u64,
        owner: stat.st_uid,
    })
}

/// Gives an open file to `uid` and `gid`. Async-signal-safe.
pub(crate) fn fchown(fd: BorrowedFd<'_>, uid: libc::uid_t, gid: libc::gid_t) -> Result<(), Errno> {
    // SAFETY: changing the owner of an open file.
    check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) }).map(drop)
}

/// When the open file was last written.
pub(crate) fn modified(fd: BorrowedFd<'_>) -> Result<std::time::SystemTime, Errno> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
    #[allow(clippy::unnecessary_cast)] // The field types differ between platforms.
    let since_epoch = Duration::new(
        stat.st_mtime.max(0) as u64,
        stat.st_mtime_nsec.clamp(0, 999_999_999) as u32,
    );
    Ok(std::time::UNIX_EPOCH + since_epoch)
}

/// Gives `to` the modification time of `from` (its access time is left alone).
pub(crate) fn copy_modified(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(from.as_raw_fd(), &mut stat) })?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: stat.st_mtime,
            tv_nsec: stat.st_mtime_nsec,
        },
    ];
    // SAFETY: two valid timespecs, as futimens takes them.
    check(unsafe { libc::futimens(to.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// The identity of what `path` names, without following a final symbolic link.
pub(crate) fn lstat(path: &CStr) -> Result<Identity, Errno> {
    // SAFETY: an all-zero `stat` is a valid value for lstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated; `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::lstat(path.as_ptr(), &mut stat) })?;
    #[allow(clippy::unnecessary_cast)] // The field types differ between platforms.
    Ok(Identity {
        dev: stat.st_dev as u64,
        ino: stat.st_ino as u64,
    })
}

/// Opens `path` close-on-exec.
pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated; the mode is passed as the variadic argument open
    // expects (promoted to an unsigned int).
    let fd = retry(|| unsafe {
        libc::open(
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    })?;
    // SAFETY: the descriptor was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the standard descriptor `target` (0, 1 or 2) a copy of `fd` (a no-op when `fd` is
/// that descriptor already). The standard descriptors belong to the process, not to an owner.
pub(crate) fn dup2(fd: BorrowedFd<'_>, target: RawFd) -> Result<(), Errno> {
    if fd.as_raw_fd() != target {
        // SAFETY: duplicating descriptors; `target` is replaced atomically.
        retry(|| unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// Closes every descriptor from `first` on, except `keep`: in the container init, which never
/// runs the owners of those descriptors again (the daemon itself keeps its inherited
/// descriptors occupied instead, see [`occupy_inherited`]).
pub(crate) fn close_from(first: RawFd, keep: BorrowedFd<'_>) {
    let keep = keep.as_raw_fd();
    let ranges = [(first, keep - 1), (keep + 1, RawFd::MAX)];
    for (low, high) in ranges {
        if low > high {
            continue;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: close_range(2) only closes descriptors; it takes unsigned bounds.
            let closed = unsafe {
                libc::syscall(
                    libc::SYS_close_range,
                    low as libc::c_uint,
                    high as libc::c_uint,
                    0,
                )
            };
            if closed == 0 {
                continue;
            }
        }
        // No close_range (other systems, or Linux before 5.9): close one by one up to the
        // descriptor limit.
        for fd in low..=high.min(descriptor_limit()) {
            if fd != keep {
                // SAFETY: closing an inherited descriptor nothing in this process owns (see
                // above); errors leave nothing to do.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// The soft limit on descriptor numbers (`sysconf(_SC_OPEN_MAX)`), 65,536 when it cannot be
/// told, at most 2^20: how far a walk over descriptor numbers goes where `/proc` cannot list
/// them. Async-signal-safe.
fn descriptor_limit() -> RawFd {
    // SAFETY: sysconf only reads a limit.
    let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if limit <= 0 {
        65_536
    } else {
        limit.min(1 << 20) as RawFd
    }
}

/// Points every open descriptor from `first` on that is neither in `keep` nor `report` at
/// `null` (`/dev/null`):
/// in the daemon, the descriptors inherited from the controller. They are not closed: a value
/// of the daemon may own one (a `File` made before `start`), and a number freed here would be
/// reused by the next file the daemon opens (its pidfile, a log), which that value would then
/// write into, or close; close-on-exec, it does not reach the programs the daemon starts.
/// A number `dup2` refuses (`EBADF`: at or above the soft `RLIMIT_NOFILE`, which a controller
/// may have lowered) is closed instead: no `open` can hand out such a number, so nothing can
/// alias it, and kept open it would hold the controller's pipes (a `$(program start)` that
/// never ends).
pub(crate) fn occupy_inherited(
    first: RawFd,
    keep: &[RawFd],
    report: BorrowedFd<'_>,
    null: BorrowedFd<'_>,
) {
    let skip = |fd: RawFd| {
        fd < first || fd == null.as_raw_fd() || fd == report.as_raw_fd() || keep.contains(&fd)
    };
    let occupy = |fd: RawFd| {
        if dup2(null, fd).is_ok() {
            // Close-on-exec as well: the programs the daemon starts get none of these numbers.
            // SAFETY: F_SETFD only sets the flags of a descriptor this process just made.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        } else {
            // SAFETY: closing an inherited descriptor nothing in the daemon owns (it is not
            // in `keep`), whose number no `open` can return (see above).
            unsafe { libc::close(fd) };
        }
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if for_each_open_fd(|fd| {
        if !skip(fd) {
            occupy(fd);
        }
    })
    .is_ok()
    {
        return;
    }
    // No /proc: test every number up to the descriptor limit.
    for fd in first..descriptor_limit() {
        // SAFETY: F_GETFD only reads the descriptor's flags; it fails on a closed number.
        if !skip(fd) && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1 {
            occupy(fd);
        }
    }
}

/// Calls `each` with every descriptor open in this process (but the one used to list them),
/// read from `/proc/self/fd` with `getdents64` into a buffer on the stack: async-signal-safe.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn for_each_open_fd(mut each: impl FnMut(RawFd)) -> Result<(), Errno> {
    let dir = open(c"/proc/self/fd", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: getdents64 writes at most `buf.len()` bytes of records into `buf`.
        let len = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let len = match len {
            0 => return Ok(()),
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()),
            len => len as usize,
        };
        // Each record: inode (8 bytes), offset (8), record length (2), type (1), the name
        // (NUL-terminated).
        let mut at = 0;
        while at + 19 < len {
            let reclen = usize::from(u16::from_ne_bytes([buf[at + 16], buf[at + 17]]));
            if reclen == 0 {
                break;
            }
            let name = &buf[at + 19..(at + reclen).min(len)];
            let digits = name.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 0 && digits <= 9 {
                let fd = name[..digits]
                    .iter()
                    .fold(0, |fd: RawFd, digit| fd * 10 + RawFd::from(digit - b'0'));
                if fd != dir.as_raw_fd() {
                    each(fd);
                }
            }
            at += reclen;
        }
    }
}

/// `F_DUPFD_CLOEXEC`: a close-on-exec copy of `fd` numbered at least `minimum`.
pub(crate) fn dup_at_least(fd: BorrowedFd<'_>, minimum: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC takes an int argument and returns a new descriptor.
    let copy = retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, minimum) })?;
    // SAFETY: the descriptor was just returned by fcntl and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// The byte of the pidfile the daemon's open-file-description lock covers (Linux): the truth
/// about whether a daemon holds the file, kept by whatever the daemon does with other
/// descriptors.
#[cfg(any(target_os = "linux", target_os = "android"))]
const HELD_BYTE: libc::off_t = 0;

/// The byte the daemon's classic (process-owned) record lock covers: `F_GETLK` names its
/// holder, in the asker's PID namespace, to anyone who may read the file. Disjoint from
/// [`HELD_BYTE`]: the two kinds of locks conflict even within one process.
const NAMED_BYTE: libc::off_t = 1;

/// Who holds the write lock of a pidfile, as the kernel tells ([`holder`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nobody: the file is stale. Read locks, which anyone who may read the file can take,
    /// never count.
    Nobody,
    /// Process `pid` (in this process's PID namespace).
    Pid(u32),
    /// A process outside this process's PID namespace (the kernel gives no pid for it).
    OutsideNamespace,
    /// Linux: a process holds the open-file-description lock, but no process holds the lock
    /// that names it (a process the daemon forked that outlived it, or a program that is not
    /// a deluxe daemon). Elsewhere: a lock that names no process.
    Unnamed,
}

/// Takes the daemon's write locks on its new pidfile, which no other process has open yet:
/// on Linux the open-file-description lock (the truth, [`HELD_BYTE`]), everywhere the
/// classic lock that names the daemon ([`NAMED_BYTE`]). A classic lock is released when this
/// process closes *any* descriptor of the file: the daemon reads its pidfile only through
/// the descriptor it holds.
pub(crate) fn lock_pidfile(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let lock = byte(libc::F_WRLCK, HELD_BYTE);
        // SAFETY: fcntl with F_OFD_SETLK reads a valid `struct flock`.
        retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) })?;
    }
    let lock = byte(libc::F_WRLCK, NAMED_BYTE);
    // SAFETY: fcntl with F_SETLK reads a valid `struct flock`.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLK, &lock) }).map(drop)
}

/// Who holds the pidfile's write lock, without taking any lock (`F_OFD_GETLK`, `F_GETLK`
/// asking for a read lock: only a write lock is reported, and only a process that may write
/// the file can take one).
pub(crate) fn holder(fd: BorrowedFd<'_>) -> Result<Holder, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut probe = byte(libc::F_RDLCK, HELD_BYTE);
        // SAFETY: fcntl with F_OFD_GETLK reads and writes a valid `struct flock`.
        retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut probe) })?;
        if unlocked(&probe) {
            return Ok(Holder::Nobody);
        }
    }
    let mut probe = byte(libc::F_RDLCK, NAMED_BYTE);
    // SAFETY: fcntl with F_GETLK reads and writes a valid `struct flock`.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETLK, &mut probe) })?;
    Ok(if unlocked(&probe) {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            Holder::Unnamed
        } else {
            Holder::Nobody
        }
    } else {
        match probe.l_pid {
            0 => Holder::OutsideNamespace,
            pid if pid > 0 => Holder::Pid(pid as u32),
            // -1: an open-file-description lock (Linux), which names no process.
            _ => Holder::Unnamed,
        }
    })
}

/// Whether a `F_GETLK` answer says no lock is in the way.
#[allow(clippy::useless_conversion)] // `F_UNLCK` is an `int` on Linux, a `short` elsewhere.
fn unlocked(answer: &libc::flock) -> bool {
    i32::from(answer.l_type) == i32::from(libc::F_UNLCK)
}

/// Waits until no process holds the pidfile's write lock (used where there is no pidfd),
/// taking a read lock for an instant.
pub(crate) fn wait_unlocked(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let (wait, set, at) = (libc::F_OFD_SETLKW, libc::F_OFD_SETLK, HELD_BYTE);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let (wait, set, at) = (libc::F_SETLKW, libc::F_SETLK, NAMED_BYTE);
    let lock = byte(libc::F_RDLCK, at);
    // SAFETY: fcntl with a set-lock command reads a valid `struct flock`.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), wait, &lock) })?;
    let unlock = byte(libc::F_UNLCK, at);
    // SAFETY: as above, releasing the read lock just taken.
    retry(|| unsafe { libc::fcntl(fd.as_raw_fd(), set, &unlock) }).map(drop)
}

/// A lock request of `kind` (`F_RDLCK`, `F_WRLCK`, `F_UNLCK`: an `int` on Linux, a `short`
/// on the BSDs) on the one byte at `at`.
fn byte(kind: impl Into<i32>, at: libc::off_t) -> libc::flock {
    // SAFETY: `struct flock` is plain data; all-zero means "from the start, no pid" (OFD
    // locks require l_pid to be 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind.into() as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = at;
    lock.l_len = 1;
    lock
}

/// Renames `from` to `to` only if nothing is at `to` (`EEXIST` otherwise): `renameat2` with
/// `RENAME_NOREPLACE` on Linux; elsewhere, and on file systems without it, `link` then
/// `unlink`.
pub(crate) fn rename_noreplace(from: &CStr, to: &CStr) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: renameat2 takes two NUL-terminated paths relative to the working directory.
        let renamed = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        match renamed {
            0 => return Ok(()),
            _ => match Errno::last() {
                Errno::EINVAL | Errno::ENOSYS => {}
                errno => return Err(errno),
            },
        }
    }
    // SAFETY: link and unlink take NUL-terminated paths.
    check(unsafe { libc::link(from.as_ptr(), to.as_ptr()) })?;
    unlink(from)
}

/// Swaps the files `a` and `b` name, atomically (`RENAME_EXCHANGE`); `EINVAL` where the file
/// system cannot.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn rename_exchange(a: &CStr, b: &CStr) -> Result<(), Errno> {
    // SAFETY: renameat2 takes two NUL-terminated paths relative to the working directory.
    let swapped = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if swapped == 0 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Renames `from` to `to`, replacing what `to` names.
pub(crate) fn rename(from: &CStr, to: &CStr) -> Result<(), Errno> {
    // SAFETY: rename takes two NUL-terminated paths.
    check(unsafe { libc::rename(from.as_ptr(), to.as_ptr()) }).map(drop)
}

/// Reads up to `buf.len()` bytes from offset 0.
pub(crate) fn read_start(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    let read = retry(|| unsafe {
        libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) as libc::c_int
    })?;
    Ok(read as usize)
}

/// Replaces the file's content with `bytes`.
pub(crate) fn rewrite(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: truncating an open regular file.
    retry(|| unsafe { libc::ftruncate(fd.as_raw_fd(), 0) })?;
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let count = retry(|| unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                written as libc::off_t,
            ) as libc::c_int
        })?;
        written += count as usize;
    }
    Ok(())
}

/// Sets the file's mode (the daemon's umask must not make the pidfile unreadable, and tools
/// like start-stop-daemon refuse a world-writable one). Best effort: a file owned by another
/// user keeps its mode.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) {
    // SAFETY: changing the mode of an open file.
    unsafe { libc::fchmod(fd.as_raw_fd(), mode) };
}

/// Removes `path`.
pub(crate) fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// Writes all of `bytes` to `fd`, for the readiness pipe and diagnostics.
pub(crate) fn write_all(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<(), Errno> {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let count = retry(|| unsafe {
            libc::write(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len()) as libc::c_int
        })?;
        written += count as usize;
    }
    Ok(())
}

/// The standard error descriptor, which belongs to the process rather than to an owner
/// (writing to it once it is closed fails with `EBADF`, harmlessly).
pub(crate) fn stderr() -> BorrowedFd<'static> {
    // SAFETY: this crate never closes descriptor 2, and std treats it as always open too (its
    // `Stderr` writes to it unconditionally); a program that closed it gets `EBADF` here.
    unsafe { BorrowedFd::borrow_raw(2) }
}

/// What `fork` returned, on each side.
pub(crate) enum Forked {
    /// In the child.
    Child,
    /// In the parent: the child's pid.
    Parent(libc::pid_t),
}

/// `fork`. Async-signal-safe (no allocation). In a process with other threads the child has
/// only the calling thread: the callers (the start's forks, the container init) go straight
/// into code that only makes async-signal-safe calls until it is set up, as the module says.
pub(crate) fn fork() -> Result<Forked, Errno> {
    // SAFETY: the child is a copy of this process with only the calling thread; every caller
    // continues in it with async-signal-safe calls only (see the callers' reasoning).
    match unsafe { libc::fork() } {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Sets the environment variable `key` to `value` in the child of a `fork`, before it starts
/// any thread (the container init's daemon, its only caller): a forked child has one thread,
/// the one that forked, so nothing reads the environment while it changes.
pub(crate) fn set_env_in_forked_child(key: &str, value: &str) {
    // SAFETY: this process is a fork's child that has started no thread: this thread is its
    // only one, and nothing reads the environment while it is changed.
    unsafe { std::env::set_var(key, value) };
}

/// Waits for the child `pid` (`-1`: any child), blocking or not (`WNOHANG`), retrying on
/// `EINTR`: its pid and raw status, `Ok((0, 0))` when none has exited (`WNOHANG`).
/// Async-signal-safe.
pub(crate) fn waitpid(
    pid: libc::pid_t,
    flags: libc::c_int,
) -> Result<(libc::pid_t, libc::c_int), Errno> {
    let mut status = 0;
    // SAFETY: waiting for a child of ours; `status` is a valid int.
    let pid = retry(|| unsafe { libc::waitpid(pid, &raw mut status, flags) })?;
    Ok((pid, status))
}

/// The process group and the session of process `pid` (`0`: this process); `-1` for what
/// cannot be read (the process is gone). Async-signal-safe.
pub(crate) fn group_and_session(pid: libc::pid_t) -> (libc::pid_t, libc::pid_t) {
    // SAFETY: getpgid and getsid only read a process's ids.
    unsafe { (libc::getpgid(pid), libc::getsid(pid)) }
}

/// Sends `signal` to the process group `group`. Async-signal-safe.
pub(crate) fn kill_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: killpg only sends a signal.
    unsafe { libc::killpg(group, signal) };
}

/// `read` into `buf` (what one call gives). Async-signal-safe.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    let count = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if count < 0 {
        Err(Errno::last())
    } else {
        Ok(count as usize)
    }
}

/// `write` of `bytes` (what one call takes). Async-signal-safe.
pub(crate) fn write(fd: BorrowedFd<'_>, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `bytes` is valid for reads of its length.
    let count = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    if count < 0 {
        Err(Errno::last())
    } else {
        Ok(count as usize)
    }
}

/// How many bytes a pipe holds (`FIONREAD`). Async-signal-safe.
pub(crate) fn pending_bytes(fd: BorrowedFd<'_>) -> Result<usize, Errno> {
    let mut held: libc::c_int = 0;
    // SAFETY: FIONREAD writes the number of bytes the pipe holds into an int.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &raw mut held) })?;
    Ok(usize::try_from(held).unwrap_or(0))
}

/// Grows a pipe to `size` bytes (Linux `F_SETPIPE_SZ`). Best effort: a refusal (`EPERM`
/// above the user's limit) leaves the pipe at its default size.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn grow_pipe(fd: BorrowedFd<'_>, size: libc::c_int) {
    // SAFETY: F_SETPIPE_SZ takes an int.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
}

/// Registers `at_exit` to run when the process exits through `exit`.
pub(crate) fn at_exit(at_exit: extern "C" fn()) {
    // SAFETY: registers a function; the caller's runs only code that is sound at exit.
    unsafe { libc::atexit(at_exit) };
}

/// Sets this thread's signal mask to `mask`. Async-signal-safe.
pub(crate) fn set_signal_mask(mask: &libc::sigset_t) -> Result<(), Errno> {
    // SAFETY: a valid set; the old mask is not wanted.
    match unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) } {
        0 => Ok(()),
        errno => Err(Errno::from_raw(errno)),
    }
}

/// This thread's signal mask.
pub(crate) fn signal_mask() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data, filled by pthread_sigmask below.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: reading the current mask into a valid, owned set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &raw mut mask) };
    mask
}

/// A signal's disposition, as read to be put back ([`Disposition::restore`]).
pub(crate) struct Disposition(libc::sigaction);

impl Disposition {
    /// `signal`'s current disposition (all zero for signal 0).
    pub(crate) fn read(signal: libc::c_int) -> Self {
        // SAFETY: sigaction is plain data, filled by sigaction below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        if signal > 0 {
            // SAFETY: reading a disposition into a valid, owned struct.
            unsafe { libc::sigaction(signal, std::ptr::null(), &raw mut action) };
        }
        Self(action)
    }

    /// Puts this disposition back for `signal`.
    pub(crate) fn restore(&self, signal: libc::c_int) {
        // SAFETY: restoring a disposition read by sigaction.
        unsafe { libc::sigaction(signal, &self.0, std::ptr::null_mut()) };
    }
}

/// Sets the file mode creation mask; returns the previous one. Async-signal-safe.
pub(crate) fn set_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask only sets the mask.
    unsafe { libc::umask(mask) }
}

/// Changes the working directory to `path`. Async-signal-safe.
pub(crate) fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: chdir takes a NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
}

/// Changes the working directory to the open directory `dir`.
pub(crate) fn fchdir(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: fchdir takes an open directory descriptor.
    check(unsafe { libc::fchdir(dir.as_raw_fd()) }).map(drop)
}

/// Sets the supplementary groups. Async-signal-safe.
pub(crate) fn setgroups(groups: &[libc::gid_t]) -> Result<(), Errno> {
    // SAFETY: a slice that outlives the call, with its length.
    check(unsafe { libc::setgroups(groups.len() as _, groups.as_ptr()) }).map(drop)
}

/// A close-on-exec copy, numbered at least `minimum`, of descriptor number `fd` (which this
/// process may not own: the copy is new, the original is left as it is); `EBADF` when `fd`
/// is not open.
pub(crate) fn dup_number_at_least(fd: RawFd, minimum: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC takes an int argument and returns a new descriptor;
    // it only reads the original.
    let copy = retry(|| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, minimum) })?;
    // SAFETY: the descriptor was just returned by fcntl and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Whether descriptor number `fd` is open (`F_GETFD` only reads its flags).
pub(crate) fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails on a closed number.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Whether descriptor number `fd` is a socket or a FIFO (`fstat` only reads).
pub(crate) fn is_socket_or_fifo(fd: RawFd) -> bool {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills a valid, writable `struct stat` for an open descriptor.
    if unsafe { libc::fstat(fd, &mut stat) } == -1 {
        return false;
    }
    matches!(stat.st_mode & libc::S_IFMT, libc::S_IFSOCK | libc::S_IFIFO)
}

/// Takes ownership of the descriptors a service manager passed (`LISTEN_FDS`), close-on-exec
/// from now on. The caller claims them once per process (`manager`'s `CLAIMED`), after
/// checking that each is open and a socket or FIFO: a second owner can never be made.
pub(crate) fn claim_passed(fds: impl Iterator<Item = RawFd>) -> impl Iterator<Item = OwnedFd> {
    fds.map(|fd| {
        // SAFETY: setting close-on-exec on an open descriptor (checked by the caller).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: the service manager passed this open descriptor to this process for it to
        // own; the caller claims it once, which makes this the only owner.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
}

/// The modification time of the pidfile this daemon holds, by its descriptor number (kept
/// by `pidfile` for the daemon's whole life); `fstat` only reads.
pub(crate) fn modified_of(fd: RawFd) -> Result<std::time::SystemTime, Errno> {
    // SAFETY: the descriptor of the pidfile this process holds, open for the daemon's whole
    // life (a restore replaces it, and registers the new one, only when the path has
    // changed); borrowed for one fstat.
    modified(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The descriptor number [`close_in_child`] closes in a forked child, owned by a live
/// [`ClosedInForks`]; -1 before.
static HELD_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// In a process forked from the daemon: closes its copy of the pidfile. The lock belongs to
/// the open file, which a `fork` shares: without this, a worker the daemon forks (without
/// `exec`, which closes it anyway) would keep the lock after the daemon died, and the daemon
/// would look alive. Async-signal-safe: it runs in the child of a `fork`.
extern "C" fn close_in_child() {
    let fd = HELD_FD.load(std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the child's copy of the descriptor a `ClosedInForks` owned at the fork
        // (it unregisters before it closes), which nothing in the child owns: the pidfile's
        // `ClosedInForks` lives in the daemon's main thread, which a forked child does not
        // have.
        unsafe { libc::close(fd) };
    }
}

/// A descriptor that processes forked from this one may be told to close
/// ([`close_in_forked_children`](Self::close_in_forked_children)): it owns the descriptor, so
/// that the number the children close is always one it holds (dropping it first tells the
/// children to keep theirs; a leaked one stays open, its number never reused).
pub(crate) struct ClosedInForks(OwnedFd);

impl ClosedInForks {
    /// `fd`, which forked children keep until told otherwise.
    pub(crate) fn new(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// From now on, every process forked from this one (through the C library's `fork`,
    /// which runs `pthread_atfork` handlers) closes its copy of this descriptor, in place of
    /// the one given before. Registering, once per process, may allocate.
    pub(crate) fn close_in_forked_children(&self) {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        HELD_FD.store(self.0.as_raw_fd(), std::sync::atomic::Ordering::Relaxed);
        REGISTERED.call_once(|| at_fork_in_child(close_in_child));
    }
}

impl std::os::fd::AsFd for ClosedInForks {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Drop for ClosedInForks {
    /// Forked children close this descriptor no more (it is being closed, and its number
    /// may be reused), unless another was given since.
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let fd = self.0.as_raw_fd();
        let _ = HELD_FD.compare_exchange(fd, -1, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The thread id of the calling thread (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn gettid() -> libc::pid_t {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

/// Sends `signal` to thread `tid` of process `pid` (Linux `tgkill`); says whether it was sent
/// (a thread that has exited just fails it).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn tgkill(pid: libc::pid_t, tid: libc::pid_t, signal: libc::c_int) -> bool {
    // SAFETY: tgkill sends a signal to a thread of a process; it takes no pointer.
    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) == 0 }
}

/// The process that sent a signal to one of its threads (`tgkill`, `pthread_kill`, `raise`:
/// `SI_TKILL`), from `info`; `None` for a signal sent otherwise. Async-signal-safe: for
/// [`on_signal_info`], its one caller.
///
/// # Safety
///
/// `info` is null or points to a valid `siginfo_t` for the whole call: the one the kernel
/// passed to the `SA_SIGINFO` handler that is running.
#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn thread_signal_sender(info: *const libc::siginfo_t) -> Option<libc::pid_t> {
    // SAFETY: null is checked; otherwise valid for the call (this function's contract).
    let info = unsafe { info.as_ref() }?;
    // SAFETY: for SI_TKILL the kernel fills the sender's pid and uid (the `kill` member).
    (info.si_code == libc::SI_TKILL).then(|| unsafe { info.si_pid() })
}

/// Takes one of the signals of `set` pending for this thread or process, without waiting
/// (`sigtimedwait` with a zero timeout); `None` when none is.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn take_pending(set: &libc::sigset_t) -> Option<libc::c_int> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid set and timeout; the signal's details are not wanted.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &raw const zero) };
    (signal > 0).then_some(signal)
}

/// The user id of the peer of a connected Unix socket, and its pid where the system says
/// (`SO_PEERCRED`; `getpeereid` elsewhere, without the pid).
pub(crate) fn peer_credentials(
    fd: BorrowedFd<'_>,
) -> std::io::Result<(Option<libc::pid_t>, libc::uid_t)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: an all-zero ucred is a valid value for getsockopt to overwrite.
        let mut credentials: libc::ucred = unsafe { std::mem::zeroed() };
        let mut length = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: SO_PEERCRED fills a ucred of the given length on a valid socket.
        let result = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut credentials).cast(),
                &raw mut length,
            )
        };
        if result == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((Some(credentials.pid), credentials.uid))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: getpeereid writes two ids on a valid socket.
        if unsafe { libc::getpeereid(fd.as_raw_fd(), &raw mut uid, &raw mut gid) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((None, uid))
    }
}

/// Whether a process with this pid exists (a zombie counts: it is only told apart by callers
/// that can read `/proc`).
pub(crate) fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || Errno::last() == Errno::EPERM)
}

/// Whether process `pid` exists and has not exited (a zombie, exited but not yet reaped, has;
/// told apart through `/proc` where there is one).
pub(crate) fn process_alive(pid: libc::pid_t) -> bool {
    if !process_exists(pid) {
        return false;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let state = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest.trim_start());
        return !(state.starts_with('Z') || state.starts_with('X'));
    }
    true
}

/// How many live processes other than this one are in process group `group` (zombies, which
/// have exited, do not count); `None` where `/proc` cannot tell.
pub(crate) fn live_in_group(group: libc::pid_t) -> Option<usize> {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return None;
    }
    let me = std::process::id().to_string();
    let entries = std::fs::read_dir("/proc").ok()?;
    Some(
        entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name != me.as_str() && name.bytes().all(|b| b.is_ascii_digit())
            })
            .filter(|entry| {
                std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                    // After the command name: state, ppid, pgrp, ...
                    let mut fields = stat
                        .rsplit_once(')')
                        .map_or("", |(_, rest)| rest)
                        .split_whitespace();
                    let state = fields.next().unwrap_or("Z");
                    let pgrp = fields
                        .nth(1)
                        .and_then(|pgrp| pgrp.parse::<libc::pid_t>().ok());
                    state != "Z" && state != "X" && pgrp == Some(group)
                })
            })
            .count(),
    )
}

/// Waits up to `timeout` for `fd` to be readable (a pidfd: the process has exited; a pipe:
/// data or end of file); says whether it is. `Duration::MAX` waits however long.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> std::io::Result<bool> {
    wait_readable_any(&[fd], timeout)
}

/// [`wait_readable`] for the first of several descriptors (at most four).
pub(crate) fn wait_readable_any(
    fds: &[BorrowedFd<'_>],
    timeout: Duration,
) -> std::io::Result<bool> {
    let deadline = time::deadline_after(timeout);
    let mut polls = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 4];
    for (poll, fd) in polls.iter_mut().zip(fds) {
        poll.fd = fd.as_raw_fd();
    }
    let count = fds.len().min(polls.len());
    loop {
        let left = time::time_left(deadline);
        // Rounded up, so that a wait never ends early; long waits go round the loop.
        let millis =
            libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX);
        // SAFETY: the first `count` entries of `polls` are valid pollfds.
        match unsafe { libc::poll(polls.as_mut_ptr(), count as libc::nfds_t, millis) } {
            1.. => return Ok(true),
            0 if millis < libc::c_int::MAX => return Ok(false),
            0 => continue,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(std::io::Error::last_os_error()),
        }
    }
}

/// A close-on-exec, non-blocking pipe: (read end, write end).
pub(crate) fn pipe_nonblocking() -> Result<(OwnedFd, OwnedFd), Errno> {
    pipe_cloexec(true)
}

/// A close-on-exec pipe, non-blocking if asked: (read end, write end).
pub(crate) fn pipe_cloexec(nonblocking: bool) -> Result<(OwnedFd, OwnedFd), Errno> {
    #[cfg(not(target_vendor = "apple"))]
    {
        let flags = if nonblocking {
            nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK
        } else {
            nix::fcntl::OFlag::O_CLOEXEC
        };
        nix::unistd::pipe2(flags)
    }
    // No pipe2 on Apple systems: the flags right after (as std does there).
    #[cfg(target_vendor = "apple")]
    {
        let (read, write) = nix::unistd::pipe()?;
        for end in [&read, &write] {
            nix::fcntl::fcntl(
                end,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )?;
            if nonblocking {
                nix::fcntl::fcntl(
                    end,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )?;
            }
        }
        Ok((read, write))
    }
}

/// Sets or clears `O_NONBLOCK` on the open file `fd` refers to.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> Result<(), Errno> {
    // SAFETY: F_GETFL only reads the file status flags.
    let flags = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an int of flags.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) }).map(drop)
}

/// Reads and discards whatever a non-blocking descriptor holds now.
pub(crate) fn drain(fd: BorrowedFd<'_>) {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of its length.
    while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Sleeps without touching anything shared.
pub(crate) fn nap(duration: Duration) {
    let request = libc::timespec {
        tv_sec: duration.as_secs() as libc::time_t,
        tv_nsec: duration.subsec_nanos() as libc::c_long,
    };
    // SAFETY: nanosleep reads the request; the remainder pointer may be null.
    unsafe { libc::nanosleep(&request, std::ptr::null_mut()) };
}

/// The soft limit on the main thread's stack (`RLIMIT_STACK`), in bytes; `None` when it is
/// unlimited or cannot be read.
pub(crate) fn stack_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit`, which `limit` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return None;
    }
    // `rlim_t` is `u64` here, `i64` on the BSDs.
    #[allow(clippy::useless_conversion)]
    u64::try_from(limit.rlim_cur).ok()
}

/// The calling thread's name as the kernel knows it (`comm`, at most 15 bytes and a NUL): in
/// a process with one thread, the process's name in `ps`, `top` and `pgrep`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn thread_comm() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into `name`.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    name
}

/// Gives the calling thread the kernel name `name`, up to its first NUL (as [`thread_comm`]
/// returned it, or a name of at most 15 bytes padded with NULs).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_thread_comm(name: &[u8; 16]) {
    // SAFETY: PR_SET_NAME reads at most 15 bytes of `name` (up to a NUL) and terminates the
    // copy itself; `name` has 16.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
}

/// Whether the calling thread is the only thread of this process (on Linux, where
/// `/proc/self/task` has as many links as threads, plus 2); `false` where it cannot tell.
pub(crate) fn only_thread() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: an all-zero `struct stat` is a valid value, only written to by stat.
        let mut status: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path, and `status` valid for one `struct stat`.
        let read = unsafe { libc::stat(c"/proc/self/task".as_ptr(), &mut status) };
        read == 0 && status.st_nlink == 3
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    false
}

// ---- serving phase ----

/// Ends the process at once with `code`, running nothing else (no destructor, no `atexit`
/// handler): for a daemon that cannot start serving, once its starter has been told, and for
/// the start's forked processes. Async-signal-safe.
pub(crate) fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit ends the process at once; nothing else may run.
    unsafe { libc::_exit(code) }
}

/// Puts `signal` back to its default action. Async-signal-safe. (Signals the C library
/// reserves are refused with `EINVAL`, which is fine.)
pub(crate) fn default_action(signal: libc::c_int) {
    // SAFETY: SIG_DFL installs no handler.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// Sets `signal` to be ignored. Async-signal-safe.
pub(crate) fn ignore_signal(signal: libc::c_int) {
    // SAFETY: SIG_IGN installs no handler.
    unsafe { libc::signal(signal, libc::SIG_IGN) };
}

/// In a signal handler, for a process that must take the signal as its own: puts `signal`
/// back to its default action and raises it again (it is delivered once the handler returns,
/// the signal being blocked while it runs). Async-signal-safe.
pub(crate) fn reraise_with_default_action(signal: libc::c_int) {
    default_action(signal);
    // SAFETY: raise is async-signal-safe; it only sends a signal to this thread.
    unsafe { libc::raise(signal) };
}

/// Registers `handler` to run in every child this process forks from now on (through the C
/// library's `fork`, which runs `pthread_atfork` handlers). A child of a multi-threaded
/// process may only make async-signal-safe calls: `handler` must make no other.
pub(crate) fn at_fork_in_child(handler: extern "C" fn()) {
    // SAFETY: registering a handler has no other effect; the callers' handlers
    // (`clean_signals_in_child`, `close_in_child`) only make async-signal-safe calls.
    unsafe { libc::pthread_atfork(None, None, Some(handler)) };
}

/// Writes one byte to `fd`, the write end of a non-blocking pipe, ignoring any error (a full
/// pipe is readable already; a closed descriptor only fails). Async-signal-safe: for a signal
/// handler, which has only the raw descriptor its owner published.
pub(crate) fn write_byte_raw(fd: RawFd) {
    // SAFETY: writing one byte from a valid buffer; the descriptor is the caller's pipe while
    // it is published (it is unpublished before it is closed), and a closed or full pipe only
    // fails.
    unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
}

/// A signal handler that [`set_signal_handler`] installs. [`handle`](Self::handle) may run in
/// any thread at any instant: it must make async-signal-safe calls only.
pub(crate) trait SignalHandler {
    /// Handles `signal`. `thread_sender`: the process that sent it to one of its threads
    /// (`tgkill`, `pthread_kill`, `raise`), on Linux; `None` for a signal sent otherwise, and
    /// elsewhere.
    fn handle(signal: libc::c_int, thread_sender: Option<libc::pid_t>);
}

/// The `SA_SIGINFO` handler [`set_signal_handler`] installs for `H`: reads the kernel's
/// siginfo, then runs `H`. Only ever called by the kernel, as that handler.
extern "C" fn on_signal_info<H: SignalHandler>(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: this function is installed as an `SA_SIGINFO` handler only (its one use, in
    // `set_signal_handler`), and so called by the kernel only, which passes a siginfo valid
    // while the handler runs.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let sender = unsafe { thread_signal_sender(info) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let sender = {
        let _ = info;
        None
    };
    H::handle(signal, sender);
}

/// Installs `H` as the handler of `signal` (`SA_SIGINFO`, `SA_RESTART`), with `mask` blocked
/// while it runs.
pub(crate) fn set_signal_handler<H: SignalHandler>(
    signal: nix::sys::signal::Signal,
    mask: nix::sys::signal::SigSet,
) -> Result<(), Errno> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler};
    let action = SigAction::new(
        SigHandler::SigAction(on_signal_info::<H>),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        mask,
    );
    // SAFETY: the handler reads the kernel's siginfo, then runs `H`, which makes
    // async-signal-safe calls only (the trait's rule; its one implementation, `serve`'s
    // `on_signal`, does).
    unsafe { nix::sys::signal::sigaction(signal, &action) }.map(drop)
}

/// Asks which signals are pending for this thread: returning from the call hands one that is
/// pending and unblocked to its handler.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn take_pending_signals() {
    // SAFETY: sigset_t is plain data, filled by sigpending below.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigpending fills a valid sigset_t; the call is what matters.
    unsafe { libc::sigpending(&raw mut pending) };
}
