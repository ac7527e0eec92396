//! The hand-over in the controller: fetching the running daemon's sockets over its control
//! socket (step 1 of the exchange described in the parent module), and the session the new
//! daemon inherits.

use super::daemon_side::{BUSY, REFUSED, socket_path};
use super::*;

/// A hand-over under way: the old daemon's sockets, and the connection it waits on.
pub(crate) struct Session {
    pub(super) stream: UnixStream,
    pub(super) sockets: Vec<(String, OwnedFd)>,
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
