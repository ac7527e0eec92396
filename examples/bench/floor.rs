//! The floor: the least a daemon start can be. Fork, setsid, fork, lock and write the pidfile,
//! say "ready" on a pipe; the daemon then waits for SIGTERM. Nothing else: no working
//! directory, no descriptor hygiene, no hooks. Its stop is SIGTERM and a pidfd wait.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A running floor daemon.
pub struct Daemon {
    pub pid: libc::pid_t,
}

impl Daemon {
    /// Starts one that locks `pidfile`; returns once it says it is ready.
    pub fn start(pidfile: &CStr) -> Self {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the children only make async-signal-safe calls before _exit.
        unsafe {
            let child = libc::fork();
            if child == 0 {
                libc::close(fds[0]);
                libc::setsid();
                if libc::fork() == 0 {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&raw mut set);
                    libc::sigaddset(&raw mut set, libc::SIGTERM);
                    libc::sigprocmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
                    let fd = libc::open(
                        pidfile.as_ptr(),
                        libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                        0o644,
                    );
                    libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB);
                    let pid = libc::getpid();
                    let mut text = [0u8; 12];
                    let len = pid_line(pid, &mut text);
                    libc::ftruncate(fd, 0);
                    libc::write(fd, text.as_ptr().cast(), len);
                    libc::write(fds[1], (&raw const pid).cast(), 4);
                    libc::close(fds[1]);
                    let mut signal = 0;
                    libc::sigwait(&raw const set, &raw mut signal);
                    libc::unlink(pidfile.as_ptr());
                    libc::_exit(0);
                }
                libc::_exit(0);
            }
            libc::close(fds[1]);
            libc::waitpid(child, std::ptr::null_mut(), 0);
            let mut pid: libc::pid_t = 0;
            libc::read(fds[0], (&raw mut pid).cast(), 4);
            libc::close(fds[0]);
            Self { pid }
        }
    }

    /// SIGTERM, then the pidfd wait.
    pub fn stop(self) {
        terminate(self.pid);
    }
}

/// SIGTERM to `pid`, then waits on its pidfd until it has exited: how the floor stops, and
/// how users of a library without a stop stop its daemons.
pub fn terminate(pid: libc::pid_t) {
    // SAFETY: pidfd_open returns a new descriptor (owned here); kill and poll take plain
    // values.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0) as i32;
        if fd < 0 {
            return; // already gone
        }
        let pidfd = OwnedFd::from_raw_fd(fd);
        libc::kill(pid, libc::SIGTERM);
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        libc::poll(&raw mut poll, 1, Duration::from_secs(10).as_millis() as i32);
    }
}

/// `pid` and a newline in decimal, without allocating (the daemon is a fork of a threaded
/// process); returns the length written.
fn pid_line(mut pid: libc::pid_t, buf: &mut [u8; 12]) -> usize {
    let mut digits = [0u8; 12];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (pid % 10) as u8;
        len += 1;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    buf[len] = b'\n';
    len + 1
}
