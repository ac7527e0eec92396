//! The system calls the worker makes between `fork` and "ready".
//!
//! Everything here is async-signal-safe: plain system calls on raw descriptors and
//! NUL-terminated paths prepared before the fork, no allocation, no lock, no `std` I/O. That is
//! what makes forking from a multi-threaded controller safe (another thread may have held any
//! lock when the process was copied, and nothing here waits on one).

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::time::Duration;

use nix::errno::Errno;

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
    /// The identity from a device and inode number (for `/proc` checks, on Linux).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn new(dev: u64, ino: u64) -> Self {
        Self { dev, ino }
    }
}

/// The identity of an open file, and whether it is a regular file (`EISDIR` for a directory).
pub(crate) fn fstat(fd: RawFd) -> Result<(Identity, Result<(), Errno>), Errno> {
    // SAFETY: an all-zero `stat` is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is a valid, writable `struct stat`.
    check(unsafe { libc::fstat(fd, &mut stat) })?;
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
pub(crate) fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> Result<RawFd, Errno> {
    // SAFETY: `path` is NUL-terminated; the mode is passed as the variadic argument open
    // expects (promoted to an unsigned int).
    retry(|| unsafe {
        libc::open(
            path.as_ptr(),
            flags | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    })
}

/// Closes a descriptor this code owns.
pub(crate) fn close(fd: RawFd) {
    // SAFETY: closing a descriptor owned by the caller; errors (even EINTR, after which the
    // descriptor is gone on Linux) leave nothing to do.
    unsafe { libc::close(fd) };
}

/// Makes `target` a copy of `fd` (a no-op when they are the same descriptor).
pub(crate) fn dup2(fd: RawFd, target: RawFd) -> Result<(), Errno> {
    if fd != target {
        // SAFETY: duplicating descriptors; `target` is replaced atomically.
        retry(|| unsafe { libc::dup2(fd, target) })?;
    }
    Ok(())
}

/// Closes every descriptor from `first` on, except `keep`.
pub(crate) fn close_from(first: RawFd, keep: RawFd) {
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
        // SAFETY: sysconf only reads a limit.
        let limit = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
        let limit = if limit <= 0 {
            65_536
        } else {
            limit.min(1 << 20)
        } as RawFd;
        for fd in low..=high.min(limit) {
            if fd != keep {
                close(fd);
            }
        }
    }
}

/// `F_DUPFD_CLOEXEC`: a close-on-exec copy of `fd` numbered at least `minimum`.
pub(crate) fn dup_at_least(fd: RawFd, minimum: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC takes an int argument and returns a new descriptor.
    retry(|| unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, minimum) })
}

/// Takes the pidfile lock without waiting: `Ok(false)` when another process holds it.
///
/// Linux uses open-file-description locks (`F_OFD_SETLK`): they belong to the open file,
/// like `flock`, so nothing else the daemon does with the file releases them, and other
/// processes can test them without taking them ([`is_locked`]). Other systems use `flock`.
pub(crate) fn try_lock(fd: RawFd) -> Result<bool, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let result = {
        let lock = whole_file(libc::F_WRLCK);
        // SAFETY: fcntl with F_OFD_SETLK reads a valid `struct flock`.
        retry(|| unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &lock) })
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: flock only takes a descriptor and flags.
    let result = retry(|| unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) });
    match result {
        Ok(_) => Ok(true),
        Err(Errno::EAGAIN | Errno::EACCES) => Ok(false),
        Err(errno) => Err(errno),
    }
}

/// Whether any process holds the pidfile lock. On Linux this only looks (`F_OFD_GETLK`);
/// elsewhere it takes a shared lock for an instant.
pub(crate) fn is_locked(fd: RawFd) -> Result<bool, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut lock = whole_file(libc::F_WRLCK);
        // SAFETY: fcntl with F_OFD_GETLK reads and writes a valid `struct flock`.
        retry(|| unsafe { libc::fcntl(fd, libc::F_OFD_GETLK, &mut lock) })?;
        Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: flock only takes a descriptor and flags.
        match retry(|| unsafe { libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) }) {
            Ok(_) => {
                // SAFETY: releasing the lock just taken.
                unsafe { libc::flock(fd, libc::LOCK_UN) };
                Ok(false)
            }
            Err(Errno::EWOULDBLOCK) => Ok(true),
            Err(errno) => Err(errno),
        }
    }
}

/// Waits until no process holds the pidfile lock (used where there is no pidfd).
pub(crate) fn wait_unlocked(fd: RawFd) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let lock = whole_file(libc::F_RDLCK);
        // SAFETY: fcntl with F_OFD_SETLKW reads a valid `struct flock`.
        retry(|| unsafe { libc::fcntl(fd, libc::F_OFD_SETLKW, &lock) })?;
        let unlock = whole_file(libc::F_UNLCK);
        // SAFETY: as above, releasing the read lock just taken.
        retry(|| unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &unlock) })?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // SAFETY: flock only takes a descriptor and flags.
        retry(|| unsafe { libc::flock(fd, libc::LOCK_SH) })?;
        // SAFETY: releasing the lock just taken.
        unsafe { libc::flock(fd, libc::LOCK_UN) };
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `struct flock` is plain data; all-zero means "from the start, to the end of
    // the file, no pid" (OFD locks require l_pid to be 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock
}

/// Reads up to `buf.len()` bytes from offset 0.
pub(crate) fn read_start(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    let read =
        retry(|| unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) as libc::c_int })?;
    Ok(read as usize)
}

/// Replaces the file's content with `bytes`.
pub(crate) fn rewrite(fd: RawFd, bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: truncating an open regular file.
    retry(|| unsafe { libc::ftruncate(fd, 0) })?;
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let count = retry(|| unsafe {
            libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), written as libc::off_t)
                as libc::c_int
        })?;
        written += count as usize;
    }
    Ok(())
}

/// Sets the file's mode (the daemon's umask must not make the pidfile unreadable, and tools
/// like start-stop-daemon refuse a world-writable one). Best effort: a file owned by another
/// user keeps its mode.
pub(crate) fn fchmod(fd: RawFd, mode: libc::mode_t) {
    // SAFETY: changing the mode of an open file.
    unsafe { libc::fchmod(fd, mode) };
}

/// Removes `path`.
pub(crate) fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// Writes all of `bytes` to `fd`, for the readiness pipe and diagnostics.
pub(crate) fn write_all(fd: RawFd, bytes: &[u8]) -> Result<(), Errno> {
    let mut written = 0;
    while written < bytes.len() {
        let rest = &bytes[written..];
        // SAFETY: `rest` is valid for reads of its length.
        let count =
            retry(|| unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) as libc::c_int })?;
        written += count as usize;
    }
    Ok(())
}

/// Whether a process with this pid exists (a zombie counts: it is only told apart by callers
/// that can read `/proc`).
pub(crate) fn process_exists(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || Errno::last() == Errno::EPERM)
}

/// Waits up to `timeout` for `fd` to be readable (a pidfd: the process has exited; a pipe:
/// data or end of file); says whether it is. `Duration::MAX` waits however long.
pub(crate) fn wait_readable(fd: RawFd, timeout: Duration) -> std::io::Result<bool> {
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(std::time::Instant::now())
        });
        // Rounded up, so that a wait never ends early; long waits go round the loop.
        let millis =
            libc::c_int::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX);
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll` is one valid pollfd.
        match unsafe { libc::poll(&mut poll, 1, millis) } {
            1.. => return Ok(true),
            0 if millis < libc::c_int::MAX => return Ok(false),
            0 => continue,
            _ if Errno::last() == Errno::EINTR => continue,
            _ => return Err(std::io::Error::last_os_error()),
        }
    }
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

/// The pid as decimal text followed by a newline, in `buf`; returns the used part.
pub(crate) fn format_pid(pid: u32, buf: &mut [u8; 12]) -> &[u8] {
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
pub(crate) fn parse_pid(bytes: &[u8]) -> Option<u32> {
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
