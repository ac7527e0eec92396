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

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use nix::errno::Errno;

use super::sys::{self, CPath, Holder, Identity};
use super::{DaemonError, Pid, PidfileRisk};

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

    /// After the path changed (an `rm` by a tmp cleaner, a `mv`): if nothing is at the path,
    /// puts a new pidfile there, locked and holding this daemon's pid, and holds that one.
    /// Another daemon can start only in the window between the removal and this call.
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
            Ok(_) => return Restore::Lost(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(errno) => return Restore::Lost(errno),
        }
        let created = create_locked(self.path).and_then(|(new, name)| {
            // The daemon's start time, which `status` reads from the file, stays what it was.
            let _ = sys::copy_modified(state.fd.as_fd(), new.as_fd());
            match sys::rename_noreplace(name.c(), self.path) {
                Ok(()) => Ok(new),
                Err(errno) => {
                    let _ = sys::unlink(name.c());
                    Err(errno)
                }
            }
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
