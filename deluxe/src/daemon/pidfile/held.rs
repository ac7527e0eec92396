//! The daemon's side of the pidfile: making it under a private name, locking and filling it,
//! renaming it into place (or, in a new daemon taking over, when it is ready), holding it for
//! the daemon's whole life, restoring it when it is removed, marking and removing it as the
//! daemon exits. What the serving phase does with the pidfile lives here; the controller's
//! reading of it, and the pid text, in the parent module.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use super::super::sys::{self, Holder, Identity};
use super::{LOCK_ATTEMPTS, c_path, format_pid, parse_pid};

/// Why the daemon could not lock its pidfile.
pub(crate) enum LockError {
    /// The daemon `pid` holds it; 0: a daemon outside this PID namespace.
    Held { pid: u32 },
    /// A system call failed; `EWOULDBLOCK`: the holder never wrote a pid.
    Failed(Errno),
}

/// The private name a daemon gives its new pidfile until it is locked and filled:
/// `.NAME.new-PID-N` beside it. Built on the stack: async-signal-safe.
struct PrivateName {
    buf: [u8; libc::PATH_MAX as usize],
    /// Where the counter's digits start.
    stem: usize,
    len: usize,
}

impl PrivateName {
    fn new(path: &CStr) -> Result<Self, Errno> {
        let path = path.to_bytes();
        let slash = path.iter().rposition(|b| *b == b'/').map_or(0, |at| at + 1);
        let mut name = Self {
            buf: [0; libc::PATH_MAX as usize],
            stem: 0,
            len: 0,
        };
        let mut pid = [0; 12];
        let pid = format_pid(std::process::id(), &mut pid);
        for part in [
            &path[..slash],
            b".",
            &path[slash..],
            b".new-",
            &pid[..pid.len() - 1],
            b"-",
        ] {
            name.push(part)?;
        }
        name.stem = name.len;
        Ok(name)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        // One byte stays for the NUL.
        let end = self.len + bytes.len();
        if end >= self.buf.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// The name with counter `n`.
    fn with(&mut self, n: u32) -> Result<&CStr, Errno> {
        self.len = self.stem;
        let mut digits = [0; 12];
        let digits = format_pid(n, &mut digits);
        self.push(&digits[..digits.len() - 1])?;
        self.buf[self.len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).map_err(|_| Errno::EINVAL)
    }

    fn c(&self) -> &CStr {
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

/// Makes a new pidfile for this process under a private name beside `path` (`O_EXCL`, mode
/// `0600`: no other process may open it), locks it, writes this process's pid, then opens
/// it to readers (`0644`). Returns it and its name.
fn create_locked(path: &CStr) -> Result<(OwnedFd, PrivateName), Errno> {
    let mut name = PrivateName::new(path)?;
    let mut n = 0;
    let fd = loop {
        match sys::open(
            name.with(n)?,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_NONBLOCK,
            0o600,
        ) {
            Ok(fd) => break fd,
            // Left behind by a daemon of the same pid killed while starting, or planted.
            Err(Errno::EEXIST) if n < 100 => n += 1,
            Err(errno) => return Err(errno),
        }
    };
    let mut text = [0; 12];
    let filled = sys::lock_pidfile(fd.as_fd())
        .and_then(|()| sys::rewrite(fd.as_fd(), format_pid(std::process::id(), &mut text)));
    if let Err(errno) = filled {
        let _ = sys::unlink(name.c());
        return Err(errno);
    }
    sys::fchmod(fd.as_fd(), 0o644);
    Ok((fd, name))
}

/// What became of an attempt to put the new pidfile in place.
enum Published {
    /// It is at the path.
    Done,
    /// A daemon holds the file at the path.
    Held { pid: u32 },
    /// The file at the path is in transition (being replaced, or locked by a daemon that has
    /// not written its pid yet): try again.
    Busy,
}

/// Puts the locked, filled pidfile `private` at `path`: if nothing is there, or if what is
/// there is stale (nobody holds its write lock; read locks do not count), which it replaces.
/// Never opens the file at `path` for writing: a file this process did not make (another
/// user's hard link, say) is never changed, only its name at `path` replaced.
fn publish(private: &CStr, path: &CStr) -> Result<Published, Errno> {
    match sys::rename_noreplace(private, path) {
        Ok(()) => return Ok(Published::Done),
        Err(Errno::EEXIST) => {}
        Err(errno) => return Err(errno),
    }
    match holder_at(path)? {
        Some(Published::Done) => {}
        Some(other) => return Ok(other),
        None => return Ok(Published::Busy),
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Swapped, the old file is under the private name: if a daemon put its own file at
        // the path meanwhile, swap back (it then holds the path again).
        match sys::rename_exchange(private, path) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(Published::Busy),
            Err(Errno::EINVAL | Errno::ENOSYS) => {
                sys::rename(private, path)?;
                return Ok(Published::Done);
            }
            Err(errno) => return Err(errno),
        }
        match holder_at(private) {
            Ok(Some(Published::Done)) | Ok(None) | Err(_) => {
                let _ = sys::unlink(private);
                Ok(Published::Done)
            }
            Ok(Some(_)) => {
                if sys::rename_exchange(private, path) == Err(Errno::ENOENT) {
                    // The path was removed meanwhile: give it back its daemon's file.
                    let _ = sys::rename_noreplace(private, path);
                    return Err(Errno::EAGAIN);
                }
                Ok(Published::Busy)
            }
        }
    }
    // No atomic swap: two daemons replacing the same stale pidfile at the same instant
    // could both succeed; the second one's rename wins.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        sys::rename(private, path)?;
        Ok(Published::Done)
    }
}

/// Whether the file at `path` is stale (`Some(Done)`: it may be replaced), held
/// (`Some(Held)`), in transition (`Some(Busy)`), or gone (`None`). Never through a symbolic
/// link, only a regular file.
fn holder_at(path: &CStr) -> Result<Option<Published>, Errno> {
    let fd = match sys::open(
        path,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        0,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    let (_, regular) = sys::fstat(fd.as_fd())?;
    regular?;
    Ok(Some(match sys::holder(fd.as_fd())? {
        Holder::Nobody => Published::Done,
        Holder::Pid(pid) => Published::Held { pid },
        Holder::OutsideNamespace => Published::Held { pid: 0 },
        // A lock that names nobody (a process a dead daemon forked, a daemon of an older
        // version): held by the daemon the file names if that process exists.
        Holder::Unnamed => {
            let mut buf = [0; 32];
            let named = sys::read_start(fd.as_fd(), &mut buf)
                .ok()
                .and_then(|len| parse_pid(&buf[..len]));
            match named {
                Some(pid) if sys::process_exists(pid as libc::pid_t) => Published::Held { pid },
                _ => Published::Busy,
            }
        }
    }))
}

/// In the daemon: makes, locks and writes its pidfile, and puts it at `path` (see
/// [`publish`]). If another daemon holds it, says which. Async-signal-safe.
pub(crate) fn lock(path: &CStr) -> Result<Held<'_>, LockError> {
    let (fd, name) = create_locked(path).map_err(LockError::Failed)?;
    let outcome = (|| {
        for _ in 0..LOCK_ATTEMPTS {
            match publish(name.c(), path)? {
                Published::Done => return Ok(None),
                Published::Held { pid } => return Ok(Some(pid)),
                Published::Busy => sys::nap(Duration::from_millis(1)),
            }
        }
        Err(Errno::EWOULDBLOCK)
    })();
    match outcome {
        Ok(None) => Ok(Held::new(fd, path)),
        Ok(Some(pid)) => {
            let _ = sys::unlink(name.c());
            Err(LockError::Held { pid })
        }
        Err(errno) => {
            let _ = sys::unlink(name.c());
            Err(LockError::Failed(errno))
        }
    }
}

/// In a new daemon taking over from a running one (a restart's hand-over): makes, locks and
/// writes its pidfile under its private name only; [`Held::publish_takeover`] renames it over
/// the path once the daemon's `setup` succeeded. Async-signal-safe.
pub(crate) fn lock_private(path: &CStr) -> Result<Held<'_>, LockError> {
    let (fd, name) = create_locked(path).map_err(LockError::Failed)?;
    let held = Held::new(fd, path);
    held.lock().pending = Some(name);
    Ok(held)
}

/// Whether this daemon is handing its sockets over to a new one: the new one's pidfile
/// replacing this one's at the path is then expected, not a loss to repair.
static HANDING_OVER: AtomicBool = AtomicBool::new(false);

/// Says whether this daemon is handing over (see [`HANDING_OVER`]).
pub(crate) fn set_handing_over(handing_over: bool) {
    HANDING_OVER.store(handing_over, Ordering::Release);
}

/// Set when a hand-over was given up after the new daemon put its pidfile at the path and
/// died: the daemon's signal thread then puts its own back ([`Held::restore`]).
static RECLAIM: AtomicBool = AtomicBool::new(false);

/// Asks the signal thread to put this daemon's pidfile back (see [`RECLAIM`]).
pub(crate) fn reclaim_later() {
    RECLAIM.store(true, Ordering::Release);
}

/// Whether [`reclaim_later`] was asked since the last call.
pub(crate) fn take_reclaim() -> bool {
    RECLAIM.swap(false, Ordering::AcqRel)
}

/// The pidfile this process holds, if it is a daemon: its pid, the file's identity and the
/// descriptor. A daemon reads its own pidfile only through that descriptor: opening and
/// closing it again would release the lock that names it.
static OWN_PID: AtomicU32 = AtomicU32::new(0);
static OWN_FILE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static OWN_FD: AtomicI32 = AtomicI32::new(-1);

fn register_own(fd: BorrowedFd<'_>) {
    if let Ok((identity, _)) = sys::fstat(fd) {
        let (dev, ino) = identity.parts();
        OWN_FILE[0].store(dev, Ordering::Relaxed);
        OWN_FILE[1].store(ino, Ordering::Relaxed);
        OWN_FD.store(fd.as_raw_fd(), Ordering::Relaxed);
        OWN_PID.store(std::process::id(), Ordering::Relaxed);
    }
}

/// In a daemon asking about its own pidfile (`status()` from a hook, say): when `path` names
/// the pidfile this process holds, when it started (its modification time), found without
/// opening the file. `None` in any other process or for any other file.
pub(crate) fn own(path: &Path) -> Option<std::time::SystemTime> {
    if OWN_PID.load(Ordering::Relaxed) != std::process::id() {
        return None;
    }
    let held = Identity::new(
        OWN_FILE[0].load(Ordering::Relaxed),
        OWN_FILE[1].load(Ordering::Relaxed),
    );
    if sys::lstat(c_path(path).ok()?.c()) != Ok(held) {
        return None;
    }
    Some(sys::modified_of(OWN_FD.load(Ordering::Relaxed)).unwrap_or(std::time::UNIX_EPOCH))
}

/// The pidfile the daemon holds: locked, open for its whole life, restored if it is removed,
/// removed as the daemon exits.
pub(crate) struct Held<'a> {
    /// Behind a lock because [`restore`](Held::restore) may replace it, and must not once
    /// the daemon removed it on its way out.
    state: Mutex<Holding>,
    path: &'a CStr,
}

struct Holding {
    /// Closed by the processes forked from the daemon once it is set up (see
    /// [`Held::close_in_forked_children`]).
    fd: sys::ClosedInForks,
    removed: bool,
    /// In a new daemon taking over: the private name its pidfile has until it is ready.
    pending: Option<PrivateName>,
}

/// What [`Held::restore`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restore {
    /// The path still names the daemon's pidfile.
    InPlace,
    /// The pidfile was gone: a new one, locked and holding the daemon's pid, is in its place.
    Restored,
    /// The path names another file (another process created it first), or a new pidfile
    /// could not be made: the daemon can no longer be reached through its pidfile.
    Lost(Errno),
}

impl<'a> Held<'a> {
    fn new(fd: OwnedFd, path: &'a CStr) -> Self {
        register_own(fd.as_fd());
        Self {
            state: Mutex::new(Holding {
                fd: sys::ClosedInForks::new(fd),
                removed: false,
                pending: None,
            }),
            path,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Holding> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pidfile's path.
    pub(crate) fn path(&self) -> &CStr {
        self.path
    }

    /// From now on, every process forked from this one (through the C library's `fork`,
    /// which runs `pthread_atfork` handlers) closes its copy of the pidfile. Called in the
    /// daemon before `setup`, whose children must not hold the lock either (registering,
    /// once per process, may allocate).
    pub(crate) fn close_in_forked_children(&self) {
        self.lock().fd.close_in_forked_children();
    }

    /// Runs `with` on the locked pidfile.
    pub(crate) fn with_fd<T>(&self, with: impl FnOnce(BorrowedFd<'_>) -> T) -> T {
        with(self.lock().fd.as_fd())
    }

    /// Writes `word` on a line after the pid, for a controller that holds the file open and
    /// reads it once the daemon is gone (see [`said`]).
    pub(crate) fn mark(&self, word: &str) {
        let text = format!("{}\n{word}\n", std::process::id());
        let _ = sys::rewrite(self.lock().fd.as_fd(), text.as_bytes());
    }

    /// Removes the pidfile if the path still names the file this daemon locked.
    pub(crate) fn remove(&self) {
        let mut state = self.lock();
        state.removed = true;
        if let Some(name) = state.pending.take() {
            // Never put at the path: the path is the running daemon's.
            let _ = sys::unlink(name.c());
            return;
        }
        if let (Ok((ours, _)), Ok(current)) = (sys::fstat(state.fd.as_fd()), sys::lstat(self.path))
            && ours == current
        {
            let _ = sys::unlink(self.path);
        }
    }

    /// In a new daemon taking over ([`lock_private`]), its `setup` done: renames its pidfile
    /// over the path, replacing the running daemon's (whose watch expects it).
    /// Async-signal-safe.
    pub(crate) fn publish_takeover(&self) -> Result<(), Errno> {
        let mut state = self.lock();
        if let Some(name) = &state.pending {
            sys::rename(name.c(), self.path)?;
            state.pending = None;
        }
        Ok(())
    }

    /// After the path changed (an `rm` by a tmp cleaner, a `mv`, a restart's new daemon that
    /// died after putting its pidfile there): if nothing is at the path, or a stale pidfile
    /// (nobody holds its lock), puts a new pidfile there, locked and holding this daemon's
    /// pid, and holds that one. Another daemon can start only in the window between the
    /// change and this call.
    pub(crate) fn restore(&self) -> Restore {
        let mut state = self.lock();
        if state.removed || state.pending.is_some() {
            return Restore::InPlace;
        }
        let Ok((ours, _)) = sys::fstat(state.fd.as_fd()) else {
            return Restore::InPlace;
        };
        match sys::lstat(self.path) {
            Ok(current) if current == ours => return Restore::InPlace,
            // The new daemon of a restart put its own: expected.
            Ok(_) if HANDING_OVER.load(Ordering::Acquire) => return Restore::InPlace,
            // Another file: replaced below only if it is stale.
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(errno) => return Restore::Lost(errno),
        }
        let created = create_locked(self.path).and_then(|(new, name)| {
            // The daemon's start time, which `status` reads from the file, stays what it was.
            let _ = sys::copy_modified(state.fd.as_fd(), new.as_fd());
            let published = match publish(name.c(), self.path) {
                Ok(Published::Done) => return Ok(new),
                Ok(Published::Held { .. } | Published::Busy) => Errno::EEXIST,
                Err(errno) => errno,
            };
            let _ = sys::unlink(name.c());
            Err(published)
        });
        match created {
            Ok(new) => {
                let new = sys::ClosedInForks::new(new);
                new.close_in_forked_children();
                register_own(new.as_fd());
                state.fd = new;
                Restore::Restored
            }
            Err(errno) => Restore::Lost(errno),
        }
    }
}
