//! Restart without dropping a connection: the daemon's listening sockets ([`listener`]), and
//! their hand-over from the running daemon to the new one at [`Controller::restart`].
//!
//! # Why descriptor passing
//!
//! Two designs keep a listening socket open across a restart. Exec inheritance (nginx's
//! binary upgrade, tableflip) has the old daemon start the new one, which inherits the
//! sockets: the new daemon then runs whatever binary the *old* process execs. Descriptor
//! passing over a Unix socket (HAProxy's `-x`, Envoy's hot restart) has the caller fetch the
//! sockets from the old daemon: the new daemon is started the usual way by the caller, so a
//! restart from a new binary's command line runs the new code, and an in-process
//! [`Controller::restart`] runs the calling process's code (it forks, as `start` does). deluxe
//! starts daemons by forking its caller; descriptor passing keeps that one way to start.
//!
//! # The exchange
//!
//! A daemon that declared at least one socket listens on a control socket in a private
//! directory beside its pidfile, `DIR/.NAME.handover/PID.sock` (the directory `0700`, made by
//! the daemon and owned by its user; one planted there, a symbolic link or another user's, is
//! never used). Each side checks the other as the reload socket does: the daemon answers only
//! root and its own user (`SO_PEERCRED`), the controller talks only to the process holding the
//! pidfile's lock.
//!
//! 1. The controller sends `HANDOVER`; the daemon answers with its sockets' names and the
//!    descriptors (`SCM_RIGHTS`), and is "handing over": another `HANDOVER` meanwhile is
//!    answered `BUSY` ([`DaemonError::RestartInProgress`]).
//! 2. The controller starts the new daemon as `start` does, with the sockets and the control
//!    connection. The new daemon locks a pidfile of its own under a private name, [`listener`]
//!    returns the handed-over sockets instead of binding, its `setup` runs; once it succeeded
//!    the new pidfile is renamed over the path (the old daemon's watch does not fight it) and,
//!    ready, the new daemon itself sends `COMMIT PID` on the control connection: a controller
//!    killed meanwhile cannot leave two daemons serving.
//! 3. On `COMMIT` the old daemon tells a service manager `MAINPID=` (only the main process may,
//!    under `NotifyAccess=main`) and stops exactly as on `SIGTERM` (its drain unchanged), never
//!    removing the pidfile that is no longer its file. The controller waits for it as `stop`
//!    does (`SIGKILL` after the stop timeout) and returns the new pid.
//! 4. A new daemon that fails before ready: the controller sends `ABORT` (or the connection
//!    closes without `COMMIT`: the controller died); the old daemon serves on, untouched. If
//!    the new daemon died after renaming its pidfile over the path, the old one puts its own
//!    back, so that `status` names it and no second daemon starts beside it.
//!
//! The kernel shares a handed-over socket's open file between the processes: `O_NONBLOCK`
//! set by one is set for the other (see [`listener`]); the hand-over never changes it.
//!
//! [`Controller::restart`]: super::Controller::restart

use std::any::TypeId;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::manager::{self, ListenFd, ListenFdsError};
use super::pidfile;
use super::reload;
use super::sys;
use super::sys_handover::{self as calls, SocketKind};
use super::target::{self, Located, Target};
use super::{DaemonError, HandoverRefusal};
use crate::time;

/// Why [`listener`] could not give the socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenerError {
    /// `bind` failed.
    Bind {
        /// The socket's name.
        name: String,
        /// What `bind` returned.
        source: io::Error,
    },
    /// The name was declared already in this daemon.
    Twice {
        /// The socket's name.
        name: String,
    },
    /// The name is empty, too long (over 255 bytes) or holds a newline or a NUL.
    InvalidName {
        /// The name.
        name: String,
    },
    /// Called outside a daemon started by a [`Controller`](super::Controller) (or run in the
    /// foreground): there is no restart to hand the socket to.
    OutsideDaemon {
        /// The socket's name.
        name: String,
    },
    /// The socket handed over or passed under this name is not of the type asked for.
    WrongType {
        /// The socket's name.
        name: String,
        /// The type asked for (`TcpListener`, ...).
        expected: &'static str,
        /// What the descriptor is.
        found: &'static str,
    },
    /// The socket-activation variables are malformed.
    Activation {
        /// The socket's name.
        name: String,
        /// What [`listen_fds`](super::listen_fds) said.
        source: ListenFdsError,
    },
    /// The runtime could not keep its copy of the socket (no descriptor left).
    Register {
        /// The socket's name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for ListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { name, source } => {
                write!(f, "cannot bind listening socket {name:?}: {source}")
            }
            Self::Twice { name } => write!(
                f,
                "listening socket {name:?} is declared twice: give each socket its own name"
            ),
            Self::InvalidName { name } => write!(
                f,
                "{name:?} is not a socket name: use 1 to 255 bytes without newline or NUL"
            ),
            Self::OutsideDaemon { name } => write!(
                f,
                "listening socket {name:?} declared outside a daemon: call \
                 `daemon::listener` in `Daemon::setup` or later in the daemon"
            ),
            Self::WrongType {
                name,
                expected,
                found,
            } => write!(
                f,
                "listening socket {name:?} is a {found}, not a {expected}: the daemon that \
                 handed it over (or the socket unit) declares it with another type; use the \
                 same type, or another name"
            ),
            Self::Activation { name, source } => {
                write!(f, "cannot take socket-activated socket {name:?}: {source}")
            }
            Self::Register { name, source } => write!(
                f,
                "cannot keep a copy of listening socket {name:?} for the next restart: {source}"
            ),
        }
    }
}

/// The message prints the cause (the OS error of `bind`, say), so `source()` is empty: a
/// `setup` that returns this error with `?` fails `start` with the whole reason.
impl std::error::Error for ListenerError {}

impl From<ListenerError> for io::Error {
    fn from(error: ListenerError) -> Self {
        let kind = match &error {
            ListenerError::Bind { source, .. } | ListenerError::Register { source, .. } => {
                source.kind()
            }
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, error)
    }
}

/// The listening socket `name` of this daemon: the one the daemon it replaces handed over
/// under that name (at a [`Controller::restart`](super::Controller::restart)), else the
/// socket-activated one named `name` (`LISTEN_FDNAMES`; the first call takes every passed
/// descriptor, see [`listen_fds`](super::listen_fds)), else what `bind` returns. The socket is
/// registered under `name`: the next restart hands it to the new daemon, starting that one
/// before this one stops, so that no connection is refused.
///
/// Call it in [`Daemon::setup`](super::Daemon::setup) (as root, before privileges are
/// dropped), or anywhere in the daemon before it is ready. `L` is the type to return:
/// `TcpListener`, `UnixListener`, `UnixDatagram`, `UdpSocket` (checked against what was
/// handed over), or any `From<OwnedFd>` type (not checked).
///
/// A restart runs the code of the process that calls it: an in-process
/// [`Controller::restart`](super::Controller::restart) forks the calling program; a restart
/// from the command line of a newly installed binary runs the new binary.
///
/// **`O_NONBLOCK` is shared.** A handed-over socket is the same open file in the old and the
/// new daemon: a new daemon that makes it non-blocking (tokio's `from_std` needs it) makes
/// it so in the old one too, whose blocking `accept` loop would then spin on `WouldBlock`
/// while it drains. A daemon that accepts in a blocking loop and may be replaced by a
/// non-blocking one handles `WouldBlock` (or polls); the hand-over never changes the flag.
///
/// # Errors
///
/// [`ListenerError`]: `bind` failed, a name declared twice or malformed, a call outside a
/// daemon, a handed-over socket of another type.
///
/// ```no_run
/// use std::net::TcpListener;
/// use std::sync::OnceLock;
/// use deluxe::daemon::{self, Daemon, HookError};
///
/// struct Web {
///     listener: OnceLock<TcpListener>,
/// }
///
/// impl Daemon for Web {
///     fn setup(&self) -> Result<(), HookError> {
///         let listener = daemon::listener("http", || TcpListener::bind("127.0.0.1:8080"))?;
///         let _ = self.listener.set(listener);
///         Ok(())
///     }
///
///     fn run(&self) -> Result<(), HookError> {
///         // Accept on self.listener until `daemon::stop_requested()`.
///         Ok(())
///     }
/// }
/// ```
pub fn listener<L>(name: &str, bind: impl FnOnce() -> io::Result<L>) -> Result<L, ListenerError>
where
    L: From<OwnedFd> + AsFd + 'static,
{
    if name.is_empty() || name.len() > 255 || name.contains(['\n', '\0']) {
        return Err(ListenerError::InvalidName {
            name: name.to_owned(),
        });
    }
    let Some(context) = context() else {
        return Err(ListenerError::OutsideDaemon {
            name: name.to_owned(),
        });
    };
    let twice = || ListenerError::Twice {
        name: name.to_owned(),
    };
    let declared = |registry: &Registry| registry.sockets.iter().any(|(known, _)| known == name);
    // Not held while `bind` runs: it is the caller's code.
    if declared(&lock(&REGISTRY)) {
        return Err(twice());
    }
    let found = match context.take(name) {
        Some(fd) => Some(fd),
        None => activated(name)?,
    };
    let socket = match found {
        Some(fd) => {
            check_type::<L>(name, fd.as_fd())?;
            L::from(fd)
        }
        None => bind().map_err(|source| ListenerError::Bind {
            name: name.to_owned(),
            source,
        })?,
    };
    let copy = calls::dup_cloexec(socket.as_fd()).map_err(|errno| ListenerError::Register {
        name: name.to_owned(),
        source: errno.into(),
    })?;
    let mut registry = lock(&REGISTRY);
    if declared(&registry) {
        return Err(twice());
    }
    registry.sockets.push((name.to_owned(), copy));
    let start = !registry.serving;
    registry.serving = true;
    drop(registry);
    if start {
        start_server(context);
    }
    Ok(socket)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sockets passed by a service manager, taken on the first call by name.
static ACTIVATED: Mutex<Option<Vec<ListenFd>>> = Mutex::new(None);

fn activated(name: &str) -> Result<Option<OwnedFd>, ListenerError> {
    let mut activated = lock(&ACTIVATED);
    if activated.is_none() {
        *activated = Some(
            manager::listen_fds().map_err(|source| ListenerError::Activation {
                name: name.to_owned(),
                source,
            })?,
        );
    }
    let passed = activated.get_or_insert_with(Vec::new);
    Ok(passed
        .iter()
        .position(|passed| passed.name == name)
        .map(|at| passed.remove(at).fd))
}

/// Checks a handed-over or passed descriptor against the standard socket type asked for.
fn check_type<L: 'static>(name: &str, fd: BorrowedFd<'_>) -> Result<(), ListenerError> {
    let expected = [
        (
            TypeId::of::<TcpListener>(),
            "TcpListener",
            (true, true, true),
        ),
        (
            TypeId::of::<UnixListener>(),
            "UnixListener",
            (false, true, true),
        ),
        (TypeId::of::<UdpSocket>(), "UdpSocket", (true, false, false)),
        (
            TypeId::of::<UnixDatagram>(),
            "UnixDatagram",
            (false, false, false),
        ),
    ];
    let Some(&(_, expected, want)) = expected.iter().find(|(id, ..)| *id == TypeId::of::<L>())
    else {
        return Ok(());
    };
    let found = match calls::socket_kind(fd) {
        Ok(SocketKind {
            inet,
            stream,
            listening,
        }) => (inet, stream, listening),
        Err(_) => {
            return Err(ListenerError::WrongType {
                name: name.to_owned(),
                expected,
                found: "descriptor that is not a socket",
            });
        }
    };
    if found == want {
        return Ok(());
    }
    let found = match found {
        (true, true, true) => "TCP listener",
        (false, true, true) => "Unix stream listener",
        (true, false, _) => "UDP socket",
        (false, false, _) => "Unix datagram socket",
        (_, true, false) => "stream socket that does not listen",
    };
    Err(ListenerError::WrongType {
        name: name.to_owned(),
        expected,
        found,
    })
}

// ---------------------------------------------------------------------------------------
// In the daemon.

/// What a started daemon inherits for the hand-over, prepared in its plan before forking:
/// its pidfile, and at a restart the old daemon's sockets and the control connection.
pub(crate) struct Inherited {
    pidfile: PathBuf,
    sockets: Mutex<Vec<(String, Option<OwnedFd>)>>,
    /// The connection to the old daemon, on which the new one says `COMMIT` once ready.
    control: Mutex<Option<OwnedFd>>,
    /// Their numbers, which the forked daemon keeps open.
    raw: Vec<RawFd>,
}

impl Inherited {
    pub(crate) fn new(pidfile: &Path) -> Self {
        Self {
            pidfile: pidfile.to_path_buf(),
            sockets: Mutex::new(Vec::new()),
            control: Mutex::new(None),
            raw: Vec::new(),
        }
    }

    /// With the old daemon's sockets and the control connection: a takeover.
    pub(crate) fn taking_over(mut self, session: &mut Session) -> io::Result<Self> {
        let control = calls::dup_cloexec(session.stream.as_fd())?;
        let sockets: Vec<(String, Option<OwnedFd>)> = session
            .sockets
            .drain(..)
            .map(|(name, fd)| (name, Some(fd)))
            .collect();
        self.raw = sockets
            .iter()
            .filter_map(|(_, fd)| fd.as_ref().map(AsRawFd::as_raw_fd))
            .chain([control.as_raw_fd()])
            .collect();
        self.sockets = Mutex::new(sockets);
        self.control = Mutex::new(Some(control));
        Ok(self)
    }

    /// Whether this start takes over from a running daemon.
    pub(crate) fn is_takeover(&self) -> bool {
        !self.raw.is_empty()
    }

    /// The descriptors the forked daemon keeps open.
    pub(crate) fn raw_fds(&self) -> &[RawFd] {
        &self.raw
    }

    fn take(&self, name: &str) -> Option<OwnedFd> {
        lock(&self.sockets)
            .iter_mut()
            .find(|(known, _)| known == name)
            .and_then(|(_, fd)| fd.take())
    }
}

/// The daemon's [`Inherited`], once installed, and the pid it was installed in (a process the
/// daemon forks is no daemon). Leaked: it lives as long as the daemon.
static CONTEXT: Mutex<Option<(u32, &'static Inherited)>> = Mutex::new(None);

/// In the daemon, as its `setup` begins: makes what its plan inherited what [`listener`]
/// reads (the descriptors move out of the plan).
pub(crate) fn install(inherited: &Inherited) {
    let owned = Inherited {
        pidfile: inherited.pidfile.clone(),
        sockets: Mutex::new(std::mem::take(&mut *lock(&inherited.sockets))),
        control: Mutex::new(lock(&inherited.control).take()),
        raw: inherited.raw.clone(),
    };
    *lock(&CONTEXT) = Some((std::process::id(), Box::leak(Box::new(owned))));
}

/// In the foreground, when the start failed and the plan goes away.
pub(crate) fn uninstall() {
    failed();
    *lock(&CONTEXT) = None;
}

/// The start failed: the control socket, if `setup` made one, goes.
pub(crate) fn failed() {
    remove_control();
}

/// The control socket this daemon bound, and its identity: removed as the daemon stops, only
/// if it is still the file it bound.
static BOUND: Mutex<Option<(PathBuf, (u64, u64))>> = Mutex::new(None);

fn remove_control() {
    if let Some((path, identity)) = lock(&BOUND).take()
        && std::fs::symlink_metadata(&path).is_ok_and(|now| (now.dev(), now.ino()) == identity)
    {
        let _ = std::fs::remove_file(path);
    }
}

fn context() -> Option<&'static Inherited> {
    let installed = *lock(&CONTEXT);
    installed
        .filter(|(pid, _)| *pid == std::process::id())
        .map(|(_, context)| context)
}

/// In the new daemon, ready: closes the handed-over sockets nobody declared (clients would
/// wait in their queue for ever), registers the `keep_open` descriptors that are listening
/// sockets (a daemon value's own: their presence makes a restart start the new daemon
/// first), and tells the old daemon `COMMIT`.
pub(crate) fn ready(kept: &[RawFd]) {
    let Some(context) = context() else {
        return;
    };
    for (name, fd) in lock(&context.sockets).iter_mut() {
        // The old daemon's `keep_open` sockets: this one has its own copies (its value's).
        if fd.take().is_some() && !name.starts_with(KEPT) {
            super::serve::say(
                log::Level::Warn,
                &format!("listening socket {name:?} was handed over but not declared; closed it"),
            );
        }
    }
    let mut registry = lock(&REGISTRY);
    let identity = |fd: BorrowedFd<'_>| sys::fstat(fd).ok().map(|(identity, _)| identity);
    for &fd in kept {
        if context.raw.contains(&fd) {
            continue;
        }
        let Some(copy) = calls::listening_copy(fd) else {
            continue;
        };
        let declared = registry
            .sockets
            .iter()
            .any(|(_, known)| identity(known.as_fd()) == identity(copy.as_fd()));
        if !declared {
            registry.sockets.push((format!("{KEPT}{fd}"), copy));
        }
    }
    let start = !registry.serving && !registry.sockets.is_empty();
    registry.serving |= start;
    drop(registry);
    if start {
        start_server(context);
    }
    if lock(&BOUND).is_some() {
        // A daemon that stops hands nothing over: its control socket goes with the request,
        // and so do its copies of the sockets, so that once `run` closes its own a stopping
        // daemon refuses new connections instead of queueing them until it exits.
        let _ = std::thread::Builder::new()
            .name("deluxe-handover-end".into())
            .spawn(|| {
                super::wait_for_stop(Duration::MAX);
                remove_control();
                lock(&REGISTRY).sockets.clear();
            });
    }
    if let Some(control) = lock(&context.control).take() {
        let mut stream = UnixStream::from(control);
        let _ = stream.write_all(format!("COMMIT {}\n", std::process::id()).as_bytes());
    }
}

/// The name under which a `keep_open` listening socket is handed over (with its number).
const KEPT: &str = "keep-open-";

/// The sockets this daemon declared, and whether its control socket is up.
struct Registry {
    sockets: Vec<(String, OwnedFd)>,
    serving: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    sockets: Vec::new(),
    serving: false,
});

/// Where the daemon of `pidfile` keeps its control sockets: `DIR/.NAME.handover`.
pub(crate) fn directory(pidfile: &Path) -> PathBuf {
    let name = pidfile.file_name().unwrap_or_default().to_string_lossy();
    pidfile
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!(".{name}.handover"))
}

fn socket_path(pidfile: &Path, pid: u32) -> PathBuf {
    directory(pidfile).join(format!("{pid}.sock"))
}

/// Binds the control socket and starts the thread that answers it; a warning if it cannot.
fn start_server(context: &'static Inherited) {
    let path = socket_path(&context.pidfile, std::process::id());
    let started = bind_control(&context.pidfile, &path).and_then(|socket| {
        std::thread::Builder::new()
            .name("deluxe-handover".into())
            .spawn(move || serve(&socket, context))
            .map(drop)
    });
    if let Err(error) = started {
        super::serve::say(
            log::Level::Warn,
            &format!(
                "cannot listen for a restart's hand-over in {} ({error}); a restart will \
                 fail instead of dropping connections",
                directory(&context.pidfile).display()
            ),
        );
    }
}

/// The private directory (made `0700` if missing; refused unless it is a real directory of
/// this user's, closed to others) and the socket in it.
fn bind_control(pidfile: &Path, path: &Path) -> io::Result<UnixListener> {
    let directory = directory(pidfile);
    match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    let metadata = std::fs::symlink_metadata(&directory)?;
    let me = nix::unistd::geteuid().as_raw();
    if !metadata.file_type().is_dir() || metadata.uid() != me || metadata.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not a private directory of this user's",
        ));
    }
    if let Ok(old) = std::fs::symlink_metadata(path)
        && old.file_type().is_socket()
        && old.uid() == me
    {
        // A dead daemon's of the same pid.
        std::fs::remove_file(path)?;
    }
    let (address, _directory) = reload::address(path)?;
    let socket = UnixListener::bind(address)?;
    let bound = std::fs::symlink_metadata(path)?;
    *lock(&BOUND) = Some((path.to_path_buf(), (bound.dev(), bound.ino())));
    Ok(socket)
}

/// The reply to a second `HANDOVER` while one is under way.
const BUSY: &[u8] = b"BUSY\n";
/// The reply to a user who may not restart this daemon.
const REFUSED: &[u8] = b"REFUSED\n";

/// The control socket's thread: answers hand-over requests for the daemon's life.
fn serve(socket: &UnixListener, context: &Inherited) {
    loop {
        let Some(mut stream) = accept(socket) else {
            continue;
        };
        if !matches!(read_line(&mut stream).as_deref(), Some("HANDOVER")) {
            continue;
        }
        let committed = hand_over(socket, stream);
        match committed {
            Some(new) => {
                commit(new);
                // Stopping: later requests are for the new daemon.
                loop {
                    if let Some(stream) = accept(socket) {
                        reply_busy(stream);
                    }
                }
            }
            None => abort(context),
        }
    }
}

/// Accepts one connection from a user who may restart this daemon (root, its own); tells
/// the others so and closes.
fn accept(socket: &UnixListener) -> Option<UnixStream> {
    let mut stream = match socket.accept() {
        Ok((stream, _)) => stream,
        Err(_) => {
            // EMFILE and the like: rest rather than spin.
            std::thread::sleep(Duration::from_millis(100));
            return None;
        }
    };
    let me = [
        nix::unistd::getuid().as_raw(),
        nix::unistd::geteuid().as_raw(),
    ];
    match sys::peer_credentials(stream.as_fd()) {
        Ok((_, uid)) if uid == 0 || me.contains(&uid) => {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            Some(stream)
        }
        _ => {
            // Its request first (briefly): a reply written before it could make the request's
            // write fail (`EPIPE`) instead of the reply being read.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = read_line(&mut stream);
            let _ = stream.write_all(REFUSED);
            None
        }
    }
}

/// Tells a request that another hand-over is under way, once it was made (see [`accept`]).
fn reply_busy(mut stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = read_line(&mut stream);
    let _ = stream.write_all(BUSY);
}

/// One line (without its newline), at most 64 bytes.
fn read_line(stream: &mut UnixStream) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => return String::from_utf8(line).ok(),
            Ok(1) => line.push(byte[0]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
    None
}

/// Sends the sockets, then waits for the outcome on `stream`, answering `BUSY` to other
/// requests meanwhile. Returns the new daemon's pid on `COMMIT`, `None` on `ABORT` or when
/// the connection closes first.
fn hand_over(socket: &UnixListener, mut stream: UnixStream) -> Option<u32> {
    pidfile::set_handing_over(true);
    {
        let registry = lock(&REGISTRY);
        let mut message = b"OK\n".to_vec();
        for (name, _) in &registry.sockets {
            message.extend_from_slice(name.as_bytes());
            message.push(b'\n');
        }
        message.push(b'\n');
        let fds: Vec<BorrowedFd<'_>> = registry.sockets.iter().map(|(_, fd)| fd.as_fd()).collect();
        if calls::send_with_fds(stream.as_fd(), &message, &fds).is_err() {
            return None;
        }
    }
    // Until the new daemon is ready: no timeout (the controller bounds its start).
    let _ = stream.set_read_timeout(None);
    let _ = socket.set_nonblocking(true);
    let outcome = loop {
        let ready = sys::wait_readable_any(&[stream.as_fd(), socket.as_fd()], Duration::MAX);
        if ready.is_err() {
            break None;
        }
        while let Ok((other, _)) = socket.accept() {
            reply_busy(other);
        }
        if sys::wait_readable(stream.as_fd(), Duration::ZERO).unwrap_or(true) {
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            break read_line(&mut stream)
                .as_deref()
                .and_then(|line| line.strip_prefix("COMMIT "))
                .and_then(|pid| pid.parse().ok());
        }
    };
    let _ = socket.set_nonblocking(false);
    outcome
}

/// The new daemon `new` is ready and holds the pidfile: the service manager learns its pid,
/// and this daemon stops as on `SIGTERM`.
fn commit(new: u32) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::MainPid(new)]);
    remove_control();
    lock(&REGISTRY).sockets.clear();
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM);
}

/// No `COMMIT`: serves on, unless a new daemon holds the pidfile all the same (its
/// `COMMIT` was lost): then it stops, so that one daemon serves. A new daemon that died after
/// putting its pidfile at the path left a stale file there: this daemon puts its own back, so
/// that `status` finds it and no second daemon starts beside it.
fn abort(context: &Inherited) {
    pidfile::set_handing_over(false);
    if pidfile::own(&context.pidfile).is_some() {
        return;
    }
    match target::locate(&context.pidfile) {
        Ok(Located::Running(holder)) if !holder.is_this_process() => {
            let _ =
                nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM);
        }
        _ => {
            pidfile::reclaim_later();
            super::serve::wake_signal_thread();
        }
    }
}

// ---------------------------------------------------------------------------------------
// In the controller.

/// A hand-over under way: the old daemon's sockets, and the connection it waits on.
pub(crate) struct Session {
    stream: UnixStream,
    sockets: Vec<(String, OwnedFd)>,
}

impl Session {
    /// The new daemon failed: the old one serves on.
    pub(crate) fn abort(mut self) {
        let _ = self.stream.write_all(b"ABORT\n");
    }
}

/// What the running daemon said to `HANDOVER`.
pub(crate) enum Requested {
    /// It declared no socket: restart is stop then start.
    NoSockets,
    /// Its sockets, and the session to finish.
    Session(Session),
}

/// Asks the daemon `target`, holder of `pidfile`, for its sockets, waiting up to `timeout`.
pub(crate) fn request(
    target: &Target,
    pidfile: &Path,
    timeout: Duration,
) -> Result<Requested, DaemonError> {
    let pid = target.pid;
    let directory = directory(pidfile);
    let refused = |path: &Path, reason| DaemonError::HandoverRefused {
        pid,
        path: path.to_path_buf(),
        reason,
    };
    let failed = |source: io::Error| DaemonError::Handover { pid, source };
    match std::fs::symlink_metadata(&directory) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Requested::NoSockets),
        Err(error) => return Err(failed(error)),
        Ok(metadata) => {
            let reason = if metadata.file_type().is_symlink() {
                Some(HandoverRefusal::Symlink)
            } else if !metadata.file_type().is_dir() {
                Some(HandoverRefusal::NotADirectory)
            } else if !target.may_be_user(metadata.uid()) {
                Some(HandoverRefusal::OtherOwner {
                    uid: metadata.uid(),
                })
            } else if metadata.mode() & 0o077 != 0 {
                Some(HandoverRefusal::OpenToOthers {
                    mode: metadata.mode() & 0o7777,
                })
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(refused(&directory, reason));
            }
        }
    }
    let socket = socket_path(pidfile, pid.as_u32());
    match std::fs::symlink_metadata(&socket) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Requested::NoSockets),
        Err(error) => return Err(failed(error)),
        Ok(metadata) if !metadata.file_type().is_socket() => {
            return Err(refused(&socket, HandoverRefusal::NotASocket));
        }
        Ok(metadata) if !target.may_be_user(metadata.uid()) => {
            return Err(refused(
                &socket,
                HandoverRefusal::OtherOwner {
                    uid: metadata.uid(),
                },
            ));
        }
        Ok(_) => {}
    }
    let deadline = time::deadline_after(timeout);
    let mut stream = match reload::address(&socket)
        .and_then(|(address, _directory)| reload::connect(&address, deadline))
    {
        Ok(stream) => stream,
        // Nobody listens: the daemon of this pid declared no socket (the file is a dead
        // daemon's of the same pid).
        Err(error) if error.raw_os_error() == Some(libc::ECONNREFUSED) => {
            return Ok(Requested::NoSockets);
        }
        Err(error) => return Err(failed(error)),
    };
    let (peer_pid, peer_uid) = sys::peer_credentials(stream.as_fd()).map_err(failed)?;
    let believed = match peer_pid {
        Some(peer_pid) => peer_pid == pid.raw(),
        None => target.may_be_user(peer_uid),
    };
    if !believed {
        return Err(refused(
            &socket,
            HandoverRefusal::Impostor {
                peer_pid: peer_pid.and_then(|peer| u32::try_from(peer).ok()),
                peer_uid,
            },
        ));
    }
    stream
        .set_read_timeout(Some(
            time::time_left(deadline).max(Duration::from_millis(1)),
        ))
        .map_err(failed)?;
    // A daemon that refuses may have hung up already: its reply says why.
    let _ = stream.write_all(b"HANDOVER\n");
    let mut message = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    while message != BUSY
        && message != REFUSED
        && !(message.starts_with(b"OK\n") && message.ends_with(b"\n\n"))
    {
        match calls::recv_with_fds(stream.as_fd(), &mut buf, &mut fds) {
            Ok(0) => return Err(failed(io::ErrorKind::UnexpectedEof.into())),
            Ok(read) => message.extend_from_slice(&buf[..read]),
            Err(nix::errno::Errno::EAGAIN) => {
                return Err(failed(io::ErrorKind::TimedOut.into()));
            }
            Err(errno) => return Err(failed(errno.into())),
        }
        if message.len() > 64 * 1024 {
            return Err(failed(io::ErrorKind::InvalidData.into()));
        }
    }
    if message == BUSY {
        return Err(DaemonError::RestartInProgress { pid });
    }
    if message == REFUSED {
        return Err(refused(&socket, HandoverRefusal::Refused));
    }
    let Some(names) = message.strip_prefix(b"OK\n") else {
        return Err(failed(io::ErrorKind::InvalidData.into()));
    };
    let names: Vec<String> = names[..names.len() - 1]
        .split(|b| *b == b'\n')
        .filter(|name| !name.is_empty())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    if names.len() != fds.len() {
        return Err(failed(io::ErrorKind::InvalidData.into()));
    }
    Ok(Requested::Session(Session {
        stream,
        sockets: names.into_iter().zip(fds).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_daemon_nothing_is_bound_and_the_error_says_where_to_call() {
        let mut bound = false;
        let error = listener("http", || {
            bound = true;
            TcpListener::bind("127.0.0.1:0")
        })
        .unwrap_err();
        assert!(!bound);
        assert!(matches!(&error, ListenerError::OutsideDaemon { name } if name == "http"));
        assert!(error.to_string().contains("`Daemon::setup`"), "{error}");
    }

    #[test]
    fn names_that_cannot_travel_are_refused() {
        for name in ["", "a\nb", "a\0b", &"x".repeat(256)] {
            let error = listener(name, || TcpListener::bind("127.0.0.1:0")).unwrap_err();
            assert!(
                matches!(error, ListenerError::InvalidName { .. }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn a_socket_of_another_type_is_named_as_what_it_is() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(check_type::<TcpListener>("http", tcp.as_fd()).is_ok());
        assert!(check_type::<OwnedFd>("http", tcp.as_fd()).is_ok());
        let error = check_type::<UnixListener>("http", tcp.as_fd()).unwrap_err();
        assert!(matches!(
            error,
            ListenerError::WrongType {
                expected: "UnixListener",
                found: "TCP listener",
                ..
            }
        ));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let error = check_type::<TcpListener>("dns", udp.as_fd()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "listening socket \"dns\" is a UDP socket, not a TcpListener: the daemon that handed \
             it over (or the socket unit) declares it with another type; use the same type, or \
             another name"
        );
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(check_type::<TcpListener>("http", file.as_fd()).is_err());
    }
}
