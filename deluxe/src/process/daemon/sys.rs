//! The system calls the daemon's modules share, in particular those made between `fork` and
//! the user's `setup`. Not the only ones: a call that belongs to one step stays beside it
//! (`fork` and `setsid` in `launch`, the signal mask in `setup`, `sigaction` and `killpg` in
//! `serve`, `inflight`'s `tgkill`).
//!
//! The calls the forked daemon makes before `setup` are async-signal-safe: plain system calls
//! on owned or borrowed descriptors and on NUL-terminated paths prepared before the fork
//! ([`CPath`]), no allocation, no lock, no `std` I/O. That is what makes forking from a
//! multi-threaded controller safe (another thread may have held any lock when the process
//! was copied, and nothing here waits on one). Dropping an [`OwnedFd`] only calls `close`,
//! which is async-signal-safe too. The few that read `/proc` ([`process_alive`],
//! [`live_in_group`]) allocate, and serve the controller and the running daemon only.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

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

/// Gives an open file to `uid` and `gid`.
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

/// When a wait of `wait` that starts `now` ends; `None` (no end: wait however long) when the
/// clock cannot hold that instant. Every wait a setting times goes through here, so that any
/// `Duration` is accepted, `Duration::MAX` included.
pub(crate) fn deadline_from(now: Instant, wait: Duration) -> Option<Instant> {
    now.checked_add(wait)
}

/// [`deadline_from`] now.
pub(crate) fn deadline_after(wait: Duration) -> Option<Instant> {
    deadline_from(Instant::now(), wait)
}

/// What is left of a wait at `now`: zero once `deadline` has passed, `Duration::MAX` without
/// one.
pub(crate) fn left_at(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(now)
    })
}

/// [`left_at`] now.
pub(crate) fn time_left(deadline: Option<Instant>) -> Duration {
    left_at(deadline, Instant::now())
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
    let deadline = deadline_after(timeout);
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
        let left = time_left(deadline);
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
    #[cfg(not(target_vendor = "apple"))]
    {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
    }
    // No pipe2 on Apple systems: the flags right after.
    #[cfg(target_vendor = "apple")]
    {
        let (read, write) = nix::unistd::pipe()?;
        for end in [&read, &write] {
            nix::fcntl::fcntl(
                end,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )?;
            nix::fcntl::fcntl(
                end,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )?;
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

/// Gives the calling thread the kernel name `name` (as [`thread_comm`] returned it).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_thread_comm(name: &[u8; 16]) {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes: `name` came from
    // PR_GET_NAME, which always terminates it within them.
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
/// handler): for a daemon that cannot start serving, once its starter has been told.
pub(crate) fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit ends the process at once; nothing else may run.
    unsafe { libc::_exit(code) }
}

/// Puts `signal` back to its default action. Async-signal-safe.
pub(crate) fn default_action(signal: libc::c_int) {
    // SAFETY: SIG_DFL installs no handler.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
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
    // SAFETY: registering a handler has no other effect; the one caller's handler
    // (`clean_signals_in_child`) only makes async-signal-safe calls.
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

/// Installs `action` for `signal`. Its handler may run in any thread at any instant: it must
/// make async-signal-safe calls only.
pub(crate) fn set_signal_action(
    signal: nix::sys::signal::Signal,
    action: &nix::sys::signal::SigAction,
) -> Result<(), Errno> {
    // SAFETY: the one caller's handler (`on_signal`) only does async-signal-safe things.
    unsafe { nix::sys::signal::sigaction(signal, action) }.map(drop)
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
