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
//! the daemon and owned by its user, the one it drops to when bound as root in `setup`, so
//! that the service's own account may restart it; one planted there, a symbolic link or
//! another user's, is never used). A daemon declares at most 253 sockets, the most
//! descriptors one message carries on Linux (`SCM_MAX_FD`). Each side checks the other as the reload socket does: the daemon answers only
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

mod controller_side;
mod daemon_side;

pub(crate) use controller_side::{Requested, Session, request};
pub(crate) use daemon_side::{Inherited, directory, failed, install, keep, ready, uninstall};
use daemon_side::{REGISTRY, Registry, context, serve_control};

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
    /// The daemon declared as many sockets as a hand-over can carry already.
    TooMany {
        /// The socket's name.
        name: String,
        /// How many a daemon may declare.
        limit: usize,
    },
    /// The runtime could not keep its copy of the socket (no descriptor left).
    Register {
        /// The socket's name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The daemon's first socket (declared, or a `keep_open` one once `setup` returned): its
    /// control socket, on which a restart fetches the sockets, could not be made (no
    /// descriptor left, a full filesystem, ...). Without it a restart
    /// would stop the daemon before starting the next one, refusing connections meanwhile.
    Handover {
        /// The socket's name.
        name: String,
        /// The directory of the control socket, `DIR/.NAME.handover` beside the pidfile.
        directory: PathBuf,
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
            Self::TooMany { name, limit } => write!(
                f,
                "listening socket {name:?} is one too many: a daemon declares at most {limit} \
                 sockets, the most descriptors one message passes to the next daemon at a \
                 restart (the kernel's SCM_MAX_FD); listen on fewer sockets (one socket can \
                 serve many addresses: bind the wildcard address)"
            ),
            Self::Register { name, source } => write!(
                f,
                "cannot keep a copy of listening socket {name:?} for the next restart: {source}"
            ),
            Self::Handover {
                name,
                directory,
                source,
            } => write!(
                f,
                "cannot make the control socket in {} that hands listening socket {name:?} to \
                 the next daemon at a restart: {source}; without it a restart would refuse \
                 connections, so the socket is not declared (free descriptors or space, or \
                 raise the descriptor limit)",
                directory.display()
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
            ListenerError::Bind { source, .. }
            | ListenerError::Register { source, .. }
            | ListenerError::Handover { source, .. } => source.kind(),
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
/// daemon, a handed-over socket of another type, more than 253 sockets (what one message
/// passes at a restart), no control socket for the next restart (the first socket only: no
/// descriptor left, say).
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
    let full = |registry: &Registry| registry.sockets.len() >= calls::MAX_FDS;
    let too_many = || ListenerError::TooMany {
        name: name.to_owned(),
        limit: calls::MAX_FDS,
    };
    // Not held while `bind` runs: it is the caller's code.
    {
        let registry = lock(&REGISTRY);
        if declared(&registry) {
            return Err(twice());
        }
        if full(&registry) {
            return Err(too_many());
        }
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
    if full(&registry) {
        return Err(too_many());
    }
    serve_control(&mut registry, context, name)?;
    registry.sockets.push((name.to_owned(), copy));
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
