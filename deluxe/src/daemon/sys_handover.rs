//! The system calls of the hand-over ([`super::handover`]), as safe functions over owned and
//! borrowed descriptors: descriptors sent and received over a Unix socket (`SCM_RIGHTS`),
//! what kind of socket a descriptor is, and a close-on-exec copy of one.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, ControlMessage, ControlMessageOwned, MsgFlags, SockaddrLike, sockopt,
};

/// The most descriptors one message carries (Linux's `SCM_MAX_FD`): room for all of them, so
/// that a truncated message means no descriptor was left in the receiving process.
pub(crate) const MAX_FDS: usize = 253;

/// Sends `bytes` and, with them, copies of `fds` over the connected Unix socket `socket`.
pub(crate) fn send_with_fds(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let mut sent = 0;
    while sent < bytes.len() {
        let iov = [IoSlice::new(&bytes[sent..])];
        // The descriptors travel with the first byte only.
        let cmsgs = if sent == 0 { cmsgs } else { &[] };
        match socket::sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None) {
            Ok(0) => return Err(Errno::EPIPE),
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes from the connected Unix socket `socket`, with the
/// descriptors that came with them (close-on-exec). Returns how many bytes were read;
/// `EMFILE` when the descriptors did not fit in this process (its `RLIMIT_NOFILE`).
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> Result<usize, Errno> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let flags = MsgFlags::empty();
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let message =
            match socket::recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), flags) {
                Ok(message) => message,
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno),
            };
        let read = message.bytes;
        if message.flags.contains(MsgFlags::MSG_CTRUNC) {
            // The buffer holds `SCM_MAX_FD` descriptors: the kernel truncated because this
            // process could not take them all. Those it took are closed.
            fds.clear();
            close_truncated(&space);
            return Err(Errno::EMFILE);
        }
        for cmsg in message.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                for fd in received {
                    // SAFETY: the kernel installed this descriptor in this process for this
                    // message; nothing else owns it.
                    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                    #[cfg(not(any(
                        target_os = "linux",
                        target_os = "android",
                        target_os = "freebsd"
                    )))]
                    nix::fcntl::fcntl(
                        &fd,
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                    )?;
                    fds.push(fd);
                }
            }
        }
        return Ok(read);
    }
}

/// Closes the descriptors of a message cut short (`MSG_CTRUNC`): the kernel installs them one
/// by one until this process has no room left, and says how many in the control message's
/// length. nix does not parse a truncated message, so its one control message (the peer sends
/// one `SCM_RIGHTS`) is read here. The buffer was zeroed before the call: a header the kernel
/// did not write (no descriptor installed) has length 0.
fn close_truncated(control: &[u8]) {
    let header = std::mem::size_of::<libc::cmsghdr>();
    if control.len() < header {
        return;
    }
    // SAFETY: `control` holds at least one header's bytes; read unaligned (a `Vec<u8>`'s).
    let cmsg: libc::cmsghdr = unsafe { std::ptr::read_unaligned(control.as_ptr().cast()) };
    // SAFETY: CMSG_LEN only computes (the header's length, padded, plus 0).
    let data_at = unsafe { libc::CMSG_LEN(0) } as usize;
    // `size_t` on Linux (a useless conversion there), `socklen_t` elsewhere; an impossible
    // length is refused below.
    #[allow(clippy::useless_conversion)]
    let len = usize::try_from(cmsg.cmsg_len).unwrap_or(usize::MAX);
    if cmsg.cmsg_level != libc::SOL_SOCKET
        || cmsg.cmsg_type != libc::SCM_RIGHTS
        || len < data_at
        || len > control.len()
    {
        return;
    }
    for raw in control[data_at..len].chunks_exact(std::mem::size_of::<RawFd>()) {
        let fd = RawFd::from_ne_bytes(raw.try_into().expect("chunks of the size of a RawFd"));
        // SAFETY: the kernel installed this descriptor in this process for this message (the
        // control message's length counts only those); nothing else owns it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// A close-on-exec copy of `fd`.
pub(crate) fn dup_cloexec(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: fcntl just returned this new descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// A close-on-exec copy of the descriptor numbered `fd`, if it is a listening socket.
///
/// `fd` must be a descriptor this process keeps open meanwhile (one the daemon value owns, or
/// one a service manager passed): it is only borrowed for this call.
pub(crate) fn listening_copy(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: as the caller promises, `fd` stays open during this call, and is not closed
    // through this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    if socket_kind(fd).is_ok_and(|kind| kind.listening) {
        dup_cloexec(fd).ok()
    } else {
        None
    }
}

/// What kind of socket a descriptor is, as far as the hand-over checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SocketKind {
    /// `AF_INET` or `AF_INET6` (true), `AF_UNIX` (false).
    pub(crate) inet: bool,
    /// `SOCK_STREAM` (true) or anything else (datagrams).
    pub(crate) stream: bool,
    /// `listen` was called on it.
    pub(crate) listening: bool,
}

/// The kind of socket `fd` is; `ENOTSOCK` for anything else.
pub(crate) fn socket_kind(fd: BorrowedFd<'_>) -> Result<SocketKind, Errno> {
    let kind = socket::getsockopt(&fd, sockopt::SockType)?;
    let address: socket::SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
    let inet = matches!(
        address.family(),
        Some(socket::AddressFamily::Inet | socket::AddressFamily::Inet6)
    );
    let stream = kind == socket::SockType::Stream;
    let listening = stream && socket::getsockopt(&fd, sockopt::AcceptConn).unwrap_or(false);
    Ok(SocketKind {
        inet,
        stream,
        listening,
    })
}
