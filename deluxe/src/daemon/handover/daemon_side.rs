//! The hand-over in the daemon: what a started daemon inherits for it, the registry of its
//! declared sockets, and, in a daemon that declared some, the control socket and the thread
//! that answers `HANDOVER`, `COMMIT` and `ABORT` on it (steps 1, 3 and 4 of the exchange
//! described in the parent module).

use super::*;

/// What a started daemon inherits for the hand-over, prepared in its plan before forking:
/// its pidfile, and at a restart the old daemon's sockets and the control connection.
pub(crate) struct Inherited {
    pub(super) pidfile: PathBuf,
    /// The user the daemon drops to (`Config::user`), who owns its control socket.
    owner: Option<libc::uid_t>,
    sockets: Mutex<Vec<(String, Option<OwnedFd>)>>,
    /// The connection to the old daemon, on which the new one says `COMMIT` once ready.
    control: Mutex<Option<OwnedFd>>,
    /// Their numbers, which the forked daemon keeps open.
    raw: Vec<RawFd>,
}

impl Inherited {
    pub(crate) fn new(pidfile: &Path, owner: Option<libc::uid_t>) -> Self {
        Self {
            pidfile: pidfile.to_path_buf(),
            owner,
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

    pub(super) fn take(&self, name: &str) -> Option<OwnedFd> {
        lock(&self.sockets)
            .iter_mut()
            .find(|(known, _)| known == name)
            .and_then(|(_, fd)| fd.take())
    }
}

/// The daemon's [`Inherited`], once installed, and the pid it was installed in (a process the
/// daemon forks is no daemon). Leaked: it lives as long as the daemon.
pub(super) static CONTEXT: Mutex<Option<(u32, &'static Inherited)>> = Mutex::new(None);

/// In the daemon, as its `setup` begins: makes what its plan inherited what [`listener`]
/// reads (the descriptors move out of the plan).
pub(crate) fn install(inherited: &Inherited) {
    let owned = Inherited {
        pidfile: inherited.pidfile.clone(),
        owner: inherited.owner,
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
pub(super) static BOUND: Mutex<Option<(PathBuf, (u64, u64))>> = Mutex::new(None);

pub(super) fn remove_control() {
    if let Some((path, identity)) = lock(&BOUND).take()
        && std::fs::symlink_metadata(&path).is_ok_and(|now| (now.dev(), now.ino()) == identity)
    {
        let _ = std::fs::remove_file(path);
    }
}

pub(super) fn context() -> Option<&'static Inherited> {
    let installed = *lock(&CONTEXT);
    installed
        .filter(|(pid, _)| *pid == std::process::id())
        .map(|(_, context)| context)
}

/// In the daemon, once its `setup` succeeded (still as root, before a privilege drop):
/// registers the `keep_open` descriptors that are listening sockets (a daemon value's own:
/// their presence makes a restart start the new daemon first), and makes the control socket
/// if `setup` declared none. A control socket that cannot be made fails the start, as for a
/// socket `setup` declares ([`ListenerError::Handover`]): the daemon would be restarted as
/// stop then start.
pub(crate) fn keep(kept: &[RawFd]) -> Result<(), ListenerError> {
    let Some(context) = context() else {
        return Ok(());
    };
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
        if declared {
            continue;
        }
        if registry.sockets.len() >= calls::MAX_FDS {
            crate::daemon::serve::say(
                log::Level::Warn,
                &format!(
                    "kept listening socket {fd} is not handed over at a restart: one message \
                     passes at most {} sockets",
                    calls::MAX_FDS
                ),
            );
            continue;
        }
        registry.sockets.push((format!("{KEPT}{fd}"), copy));
    }
    match registry.sockets.first() {
        Some((name, _)) => {
            let name = name.clone();
            serve_control(&mut registry, context, &name)
        }
        None => Ok(()),
    }
}

/// Once the daemon holds a socket (`name`, the first): its control socket comes up with it,
/// or the start fails. A daemon that holds a socket it cannot hand over would be restarted as
/// stop then start, refusing connections, and a socket bound to port 0 would move.
pub(super) fn serve_control(
    registry: &mut Registry,
    context: &'static Inherited,
    name: &str,
) -> Result<(), ListenerError> {
    if !registry.serving {
        start_server(context).map_err(|source| ListenerError::Handover {
            name: name.to_owned(),
            directory: directory(&context.pidfile),
            source,
        })?;
        registry.serving = true;
    }
    Ok(())
}

/// In the new daemon, ready: closes the handed-over sockets nobody declared (clients would
/// wait in their queue for ever), and tells the old daemon `COMMIT`.
pub(crate) fn ready() {
    let Some(context) = context() else {
        return;
    };
    for (name, fd) in lock(&context.sockets).iter_mut() {
        // The old daemon's `keep_open` sockets: this one has its own copies (its value's).
        if fd.take().is_some() && !name.starts_with(KEPT) {
            crate::daemon::serve::say(
                log::Level::Warn,
                &format!("listening socket {name:?} was handed over but not declared; closed it"),
            );
        }
    }
    if lock(&BOUND).is_some() {
        // A daemon that stops hands nothing over: its control socket goes with the request,
        // and so do its copies of the sockets, so that once `run` closes its own a stopping
        // daemon refuses new connections instead of queueing them until it exits.
        let _ = std::thread::Builder::new()
            .name("deluxe-handover-end".into())
            .spawn(|| {
                crate::daemon::wait_for_stop(Duration::MAX);
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
pub(super) const KEPT: &str = "keep-open-";

/// The sockets this daemon declared, and whether its control socket is up.
pub(super) struct Registry {
    pub(super) sockets: Vec<(String, OwnedFd)>,
    pub(super) serving: bool,
}

pub(super) static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
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

pub(super) fn socket_path(pidfile: &Path, pid: u32) -> PathBuf {
    directory(pidfile).join(format!("{pid}.sock"))
}

/// Binds the control socket and starts the thread that answers it. A directory that is not
/// this daemon's (planted by another user, even one this daemon may not open, or a symbolic
/// link) is only a warning: the controller refuses it too
/// ([`DaemonError::HandoverRefused`]), so a restart fails and stops nothing, and a daemon
/// never fails to start for what another user planted. Any other failure is the caller's
/// error.
pub(super) fn start_server(context: &'static Inherited) -> io::Result<()> {
    let path = socket_path(&context.pidfile, std::process::id());
    let socket = match bind_control(&context.pidfile, &path, context.owner) {
        Ok(socket) => socket,
        Err(Control::NotOurs) => {
            crate::daemon::serve::say(
                log::Level::Warn,
                &format!(
                    "{} is not this daemon's private directory (another user's, open to \
                     others, or a symbolic link): a restart is refused until it is removed",
                    directory(&context.pidfile).display()
                ),
            );
            return Ok(());
        }
        Err(Control::Failed(error)) => return Err(error),
    };
    std::thread::Builder::new()
        .name("deluxe-handover".into())
        .spawn(move || serve(&socket, context))
        .map(drop)
        .inspect_err(|_| remove_control())
}

/// Why [`bind_control`] made no control socket.
pub(super) enum Control {
    /// The directory is not this daemon's.
    NotOurs,
    /// An OS error.
    Failed(io::Error),
}

impl From<io::Error> for Control {
    fn from(error: io::Error) -> Self {
        Self::Failed(error)
    }
}

/// The private directory (made `0700` if missing; refused unless it is a real directory of
/// this user's or of `owner`'s, closed to others) and the socket in it. A daemon that will
/// drop to `owner` (bound as root, in `setup`) gives both to that user: the service's own
/// account may restart it, as it may reload it, and the daemon removes its socket as it
/// stops. On Linux the socket is reached through the directory opened without following a
/// symbolic link (`/proc/self/fd/N/PID.sock`): a directory the user swaps meanwhile never
/// makes root bind or chown elsewhere.
pub(super) fn bind_control(
    pidfile: &Path,
    path: &Path,
    owner: Option<libc::uid_t>,
) -> Result<UnixListener, Control> {
    use std::os::unix::fs::OpenOptionsExt;
    let me = nix::unistd::geteuid().as_raw();
    let owner = owner.unwrap_or(me);
    // This daemon's: its effective user's, or the user it drops to.
    let ours = |uid: u32| uid == me || uid == owner;
    let directory = directory(pidfile);
    match std::fs::DirBuilder::new().mode(0o700).create(&directory) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error.into()),
    }
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&directory)
        .map_err(|error| match error.raw_os_error() {
            // A symbolic link, or not a directory.
            Some(libc::ELOOP | libc::ENOTDIR) => Control::NotOurs,
            // Another user's directory, closed to this daemon (which does not run as root).
            Some(libc::EACCES | libc::EPERM)
                if std::fs::symlink_metadata(&directory)
                    .is_ok_and(|metadata| !ours(metadata.uid())) =>
            {
                Control::NotOurs
            }
            _ => error.into(),
        })?;
    let metadata = opened.metadata()?;
    if !metadata.file_type().is_dir() || !ours(metadata.uid()) || metadata.mode() & 0o077 != 0 {
        return Err(Control::NotOurs);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let here = Path::new("/proc/self/fd")
        .join(opened.as_raw_fd().to_string())
        .join(path.file_name().unwrap_or_default());
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let (here, _directory) = reload::address(path)?;
    if let Ok(old) = std::fs::symlink_metadata(&here)
        && old.file_type().is_socket()
        && ours(old.uid())
    {
        // A dead daemon's of the same pid.
        std::fs::remove_file(&here)?;
    }
    let socket = UnixListener::bind(&here)?;
    let bound = (|| {
        if owner != me {
            std::os::unix::fs::lchown(&here, Some(owner), None)?;
            std::os::unix::fs::fchown(&opened, Some(owner), None)?;
        }
        std::fs::symlink_metadata(&here)
    })();
    match bound {
        Ok(bound) => {
            *lock(&BOUND) = Some((path.to_path_buf(), (bound.dev(), bound.ino())));
            Ok(socket)
        }
        Err(error) => {
            // Not left behind for a controller to connect to.
            let _ = std::fs::remove_file(&here);
            Err(error.into())
        }
    }
}

/// The reply to a second `HANDOVER` while one is under way.
pub(super) const BUSY: &[u8] = b"BUSY\n";
/// The reply to a user who may not restart this daemon.
pub(super) const REFUSED: &[u8] = b"REFUSED\n";

/// The control socket's thread: answers hand-over requests for the daemon's life.
pub(super) fn serve(socket: &UnixListener, context: &Inherited) {
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
pub(super) fn accept(socket: &UnixListener) -> Option<UnixStream> {
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
pub(super) fn reply_busy(mut stream: UnixStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = read_line(&mut stream);
    let _ = stream.write_all(BUSY);
}

/// One line (without its newline), at most 64 bytes.
pub(super) fn read_line(stream: &mut UnixStream) -> Option<String> {
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
pub(super) fn hand_over(socket: &UnixListener, mut stream: UnixStream) -> Option<u32> {
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
pub(super) fn commit(new: u32) {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::MainPid(new)]);
    remove_control();
    lock(&REGISTRY).sockets.clear();
    let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGTERM);
}

/// No `COMMIT`: serves on, unless a new daemon holds the pidfile all the same (its
/// `COMMIT` was lost): then it stops, so that one daemon serves. A new daemon that died after
/// putting its pidfile at the path left a stale file there: this daemon puts its own back, so
/// that `status` finds it and no second daemon starts beside it.
pub(super) fn abort(context: &Inherited) {
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
            crate::daemon::serve::wake_signal_thread();
        }
    }
}
