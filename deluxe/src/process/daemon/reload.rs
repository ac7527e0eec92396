//! A reload that answers: the daemon's reload socket, and the controller's request on it.
//!
//! A signal carries no reply, so a reload asked by a controller does not go through `SIGHUP`:
//! the daemon listens on a Unix stream socket beside its pidfile (`PIDFILE.reload`), and a
//! connection is a request. The signal thread accepts it and marks a reload due, as `SIGHUP`
//! does; the hook thread runs the reload and writes its outcome to every connection accepted
//! before the reload began (concurrent requests share one reload, each gets the answer), then
//! closes them. The record is one status byte ([`OK`], [`FAILED`], [`PANICKED`],
//! [`REFUSED`]) followed, for a failure, by the hook's message.
//!
//! Neither side takes the other's word for who it is. The daemon answers only a peer whose
//! user id (`SO_PEERCRED`; `getpeereid` elsewhere) is root or its own: those who may signal
//! it. The controller believes only the process that holds the pidfile's lock: on Linux the
//! socket's listener must be that very pid (`SO_PEERCRED`), elsewhere a user that could be
//! the daemon's (root, the pidfile's owner, the holder's). Another user's process that bound
//! the path first (in a world-writable directory) is an impostor: nothing is sent to it and
//! its answer is never read. A file there that such a user owns (a socket, or a link to
//! someone else's socket) is not even connected to: a connection alone is a request.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::sys::{self, CPath, Identity};
use super::target::{Delivery, Target};
use super::{DaemonError, Unanswered};

/// The reload succeeded.
const OK: u8 = b'0';
/// The reload hook failed; its message follows.
const FAILED: u8 = b'1';
/// The daemon does not take requests from this user.
const REFUSED: u8 = b'2';
/// The reload hook panicked (its message follows): the daemon is stopping.
const PANICKED: u8 = b'3';

/// How a reload went wrong, as the daemon tells the controllers that asked.
pub(crate) enum Failure {
    /// The reload hook returned this error.
    Failed(String),
    /// The reload hook panicked (this message): the daemon is stopping.
    Panicked(String),
}

impl Failure {
    /// What a person reads: the hook's error, or what its panic said.
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Failed(message) | Self::Panicked(message) => message,
        }
    }
}

/// The longest message a daemon sends: a hook's error that large is cut (at a character).
const MESSAGE_LIMIT: usize = 4096;

/// Where the daemon of `pidfile` listens for reload requests: `PIDFILE.reload`.
pub(crate) fn socket_path(pidfile: &Path) -> PathBuf {
    let mut path = pidfile.as_os_str().to_owned();
    path.push(".reload");
    PathBuf::from(path)
}

/// The longest path a socket address holds (`sun_path`, less its NUL).
const ADDRESS_LIMIT: usize = 107;

/// A path to bind or connect to that names `path`'s file: `path` itself, or where it is too
/// long for a socket address (Linux), the same file through `/proc/self/fd/N/NAME`, `N` the
/// returned descriptor of its directory, to keep open meanwhile.
pub(crate) fn address(path: &Path) -> io::Result<(PathBuf, Option<std::os::fd::OwnedFd>)> {
    use std::os::unix::ffi::OsStrExt;
    let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok((path.to_path_buf(), None));
    };
    if path.as_os_str().as_bytes().len() <= ADDRESS_LIMIT
        || !cfg!(any(target_os = "linux", target_os = "android"))
    {
        return Ok((path.to_path_buf(), None));
    }
    let directory = std::fs::File::open(directory)?;
    let alias = Path::new("/proc/self/fd")
        .join(directory.as_raw_fd().to_string())
        .join(name);
    Ok((alias, Some(directory.into())))
}

/// Connects to the reload socket at `address`, waiting no later than `deadline` for room in
/// its queue: on Linux a connection to a listener whose queue is full (a daemon stopped or
/// frozen, or one that stopped accepting) otherwise waits for ever, whatever the reload
/// timeout; it fails with `EAGAIN` at the deadline. Elsewhere a full queue refuses at once.
pub(crate) fn connect(address: &Path, deadline: Option<Instant>) -> io::Result<UnixStream> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
        use nix::sys::time::TimeVal;
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let address = UnixAddr::new(address)?;
        loop {
            let left = sys::time_left(deadline);
            if left.is_zero() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // A zero timeout is no timeout: at least a microsecond; beyond what the kernel
            // counts, it waits for ever (as `Duration::MAX` asks).
            let timeout = TimeVal::new(
                libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                libc::suseconds_t::from(left.subsec_micros().max(1)),
            );
            socket::setsockopt(&fd, sockopt::SendTimeout, &timeout)?;
            match socket::connect(fd.as_raw_fd(), &address) {
                Ok(()) => return Ok(UnixStream::from(fd)),
                // A signal handler without `SA_RESTART` (a caller's own): the socket is still
                // unconnected, try again.
                Err(nix::errno::Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = deadline;
        UnixStream::connect(address)
    }
}

/// The user id of the peer of a connected Unix socket, and its pid where the system says.
pub(crate) fn peer(fd: BorrowedFd<'_>) -> io::Result<(Option<libc::pid_t>, libc::uid_t)> {
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
            return Err(io::Error::last_os_error());
        }
        Ok((Some(credentials.pid), credentials.uid))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: getpeereid writes two ids on a valid socket.
        if unsafe { libc::getpeereid(fd.as_raw_fd(), &raw mut uid, &raw mut gid) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok((None, uid))
    }
}

/// The daemon's side: the listening socket, made as the daemon starts serving.
pub(crate) struct Listener {
    socket: UnixListener,
    path: CPath,
    /// The socket file as bound, so that the daemon removes only its own.
    identity: Identity,
}

impl Listener {
    /// Listens on `path`. A socket file already there, this user's or root's, is a dead
    /// daemon's (this one holds the pidfile's lock): it is replaced. Anything else there, or a
    /// socket another user left in a world-writable directory (root could unlink it, but
    /// touches no other user's file), stays, and the daemon serves without a reload socket.
    pub(crate) fn bind(path: CPath) -> io::Result<Self> {
        let (address, _directory) = address(path.path())?;
        let socket = match UnixListener::bind(&address) {
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                let metadata = std::fs::symlink_metadata(path.path())?;
                let me = nix::unistd::geteuid().as_raw();
                if !metadata.file_type().is_socket() || ![0, me].contains(&metadata.uid()) {
                    return Err(error);
                }
                std::fs::remove_file(path.path())?;
                UnixListener::bind(&address)?
            }
            other => other?,
        };
        socket.set_nonblocking(true)?;
        let identity = sys::lstat(path.c())?;
        Ok(Self {
            socket,
            path,
            identity,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Takes the requests waiting to be accepted: those of users who may reload this daemon
    /// (root, its own), to be answered after the reload; the others are told so at once. An
    /// error that would recur at once (`EMFILE`: no descriptor left) ends the taking: the
    /// caller rests the socket a while, out of its poll, rather than spin on a socket that
    /// stays readable, and takes the requests waiting once it can.
    pub(crate) fn accept(&self, waiters: &mut Vec<Waiter>) -> io::Result<()> {
        // SAFETY: getuid and geteuid only read this process's ids.
        let me = unsafe { [libc::getuid(), libc::geteuid()] };
        loop {
            let stream = match self.socket.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue;
                }
                Err(error) => return Err(error),
            };
            // A reply is small: written without blocking, it never holds the hook thread.
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let waiter = Waiter(stream);
            match peer(waiter.0.as_fd()) {
                Ok((_, uid)) if uid == 0 || me.contains(&uid) => waiters.push(waiter),
                _ => waiter.send(REFUSED, ""),
            }
        }
    }

    /// Removes the socket file, if it is still the one this daemon bound.
    pub(crate) fn remove(&self) {
        if sys::lstat(self.path.c()) == Ok(self.identity) {
            let _ = sys::unlink(self.path.c());
        }
    }
}

/// A controller waiting for the outcome of a reload.
pub(crate) struct Waiter(UnixStream);

impl Waiter {
    /// Tells the controller how the reload went, and hangs up.
    pub(crate) fn answer(self, outcome: &Result<(), Failure>) {
        match outcome {
            Ok(()) => self.send(OK, ""),
            Err(Failure::Failed(message)) => self.send(FAILED, message),
            Err(Failure::Panicked(message)) => self.send(PANICKED, message),
        }
    }

    fn send(mut self, status: u8, message: &str) {
        let mut end = message.len().min(MESSAGE_LIMIT);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut record = Vec::with_capacity(end + 1);
        record.push(status);
        record.extend_from_slice(&message.as_bytes()[..end]);
        let _ = self.0.write_all(&record);
    }
}

/// The controller's side: asks the daemon `target`, holder of `pidfile`, to reload, and waits
/// up to `timeout` for its answer.
///
/// A socket file that is not the daemon's user's is an impostor's, whether it answers or not,
/// and is not connected to.
/// A daemon without a reload socket (one built with an older deluxe, or one that could not
/// make it) gets `SIGHUP`, the request it understands, and the outcome is
/// [`Unanswered::NoSocket`]: it reloads, but nobody can tell how it went.
pub(crate) fn ask(target: &Target, pidfile: &Path, timeout: Duration) -> Result<(), DaemonError> {
    target.check_signal(Signal::SIGHUP)?;
    let pid = target.pid;
    let socket = socket_path(pidfile);
    let unanswered = |reason| DaemonError::ReloadUnanswered {
        pid,
        socket: socket.clone(),
        reason,
    };
    let deadline = Instant::now().checked_add(timeout);
    // Only a socket the daemon's user could own is connected to: a connection alone is a
    // request to whatever listens where it leads (a link another user planted could lead to
    // another daemon's reload socket). In a sticky directory nobody else can put another
    // file in place of one that is root's or the daemon's user's meanwhile.
    let connected = match std::fs::symlink_metadata(&socket) {
        Ok(metadata) if !target.may_be_user(metadata.uid()) => {
            return Err(DaemonError::ReloadImpostor {
                pid,
                socket,
                peer_pid: None,
                peer_uid: metadata.uid(),
            });
        }
        Ok(metadata) if !metadata.file_type().is_socket() => {
            Err(io::Error::from_raw_os_error(libc::ENOTSOCK))
        }
        _ => address(&socket).and_then(|(address, _directory)| connect(&address, deadline)),
    };
    let mut stream = match connected {
        Ok(stream) => stream,
        // The daemon takes no connection and its queue stayed full.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            return Err(DaemonError::ReloadTimeout {
                pid,
                waited: timeout,
            });
        }
        Err(error) => {
            if target.signal(Signal::SIGHUP)? == Delivery::AlreadyGone {
                return Err(DaemonError::NotRunning {
                    pidfile: pidfile.to_path_buf(),
                });
            }
            // std refuses a path longer than a socket address holds without a system call.
            let errno = error.raw_os_error().unwrap_or(libc::ENAMETOOLONG);
            return Err(unanswered(Unanswered::NoSocket { errno }));
        }
    };
    let (peer_pid, peer_uid) = peer(stream.as_fd()).map_err(|source| DaemonError::Signal {
        pid,
        signal: "SIGHUP",
        source,
    })?;
    let believed = match peer_pid {
        Some(peer_pid) => peer_pid == pid.raw(),
        None => target.may_be_user(peer_uid),
    };
    if !believed {
        return Err(DaemonError::ReloadImpostor {
            pid,
            socket,
            peer_pid: peer_pid.and_then(|peer| u32::try_from(peer).ok()),
            peer_uid,
        });
    }
    stream
        .set_nonblocking(true)
        .map_err(|source| DaemonError::Signal {
            pid,
            signal: "SIGHUP",
            source,
        })?;
    let mut record = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = sys::time_left(deadline);
        if left.is_zero() || !sys::wait_readable(stream.as_fd(), left).unwrap_or(true) {
            return Err(DaemonError::ReloadTimeout {
                pid,
                waited: timeout,
            });
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => {
                record.extend_from_slice(&buf[..read]);
                if record.len() > MESSAGE_LIMIT + 1 {
                    break;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            // The daemon exited with the request unanswered (`ECONNRESET`).
            Err(_) => break,
        }
    }
    match record.split_first() {
        Some((&OK, _)) => Ok(()),
        Some((&FAILED, message)) => Err(DaemonError::ReloadFailed {
            pid,
            message: String::from_utf8_lossy(message).into_owned(),
        }),
        Some((&PANICKED, message)) => Err(DaemonError::ReloadPanicked {
            pid,
            message: String::from_utf8_lossy(message).into_owned(),
        }),
        Some((&REFUSED, _)) => Err(unanswered(Unanswered::Refused)),
        _ => Err(unanswered(Unanswered::Closed)),
    }
}
