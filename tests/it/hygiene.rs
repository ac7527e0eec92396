//! The harness itself: scratch directories go away with passing tests, skipped tests say so
//! (and fail where everything must run), and the helpers' blocking calls survive signals.

use std::os::unix::net::UnixDatagram;
use std::process::Command as StdCommand;
use std::sync::mpsc;

use crate::common::{HANG, NotifySocket, REQUIRE_ALL, eventually, scratch_dir, skip};

/// Set only by [`a_skip_is_listed_at_exit_and_fails_where_everything_must_run`] for its run of
/// this test binary: [`skips_when_asked`] then skips.
const ASKED_TO_SKIP: &str = "DELUXE_HYGIENE_SKIP";

#[test]
fn skips_when_asked() {
    if std::env::var_os(ASKED_TO_SKIP).is_some() {
        skip("hygiene::skips_when_asked", "asked to by its caller");
    }
}

/// Runs this test binary on [`skips_when_asked`] alone, asked to skip, with `env`.
fn run_skipping_test(env: &[(&str, &str)]) -> (bool, String) {
    let output = StdCommand::new(std::env::current_exe().unwrap())
        .args(["--exact", "hygiene::skips_when_asked", "--test-threads=1"])
        .env(ASKED_TO_SKIP, "1")
        .env_remove(REQUIRE_ALL)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn a_skip_is_listed_at_exit_and_fails_where_everything_must_run() {
    let (ok, output) = run_skipping_test(&[]);
    assert!(ok, "{output}");
    // After the harness's own result line: the list, which the harness does not capture.
    let result = output.find("test result: ok. 1 passed").expect(&output);
    let list = output[result..]
        .find("1 test(s) checked nothing on this machine (skipped):\n  skipped hygiene::skips_when_asked: asked to by its caller\n")
        .map(|at| at + result);
    assert!(list.is_some(), "{output}");

    let (ok, output) = run_skipping_test(&[(REQUIRE_ALL, "1")]);
    assert!(!ok, "{output}");
    assert!(
        output.contains(
            "hygiene::skips_when_asked cannot run: asked to by its caller; DELUXE_REQUIRE_ALL \
             is set, so this is a failure"
        ),
        "{output}"
    );
}

#[test]
fn a_passing_tests_directory_is_removed_and_a_failing_ones_kept() {
    let passed = scratch_dir("hygiene-passed");
    std::fs::write(passed.join("file"), "x").unwrap();
    let path = passed.to_path_buf();
    drop(passed);
    assert!(!path.exists(), "{}", path.display());

    // A test failing: its thread panics while the directory is dropped.
    let failed = std::thread::spawn(|| {
        let dir = scratch_dir("hygiene-failed");
        let path = dir.to_path_buf();
        std::panic::panic_any(path);
        #[allow(unreachable_code)]
        drop(dir);
    })
    .join()
    .unwrap_err();
    let path = failed.downcast::<std::path::PathBuf>().unwrap();
    assert!(path.is_dir(), "{}", path.display());
    std::fs::remove_dir_all(*path).unwrap();
}

/// A handler that does nothing, for a real-time signal nobody else in this binary uses.
extern "C" fn nothing(_: libc::c_int) {}

#[test]
fn the_notify_socket_reader_retries_when_a_signal_interrupts_it() {
    let signal = libc::SIGRTMIN() + 7;
    // SAFETY: a zeroed sigaction is valid; the handler does nothing, so it is
    // async-signal-safe; SA_RESTART as tokio's SIGCHLD handler has (recv with a timeout fails
    // with EINTR all the same).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
    let dir = scratch_dir("hygiene-eintr");
    let notify = NotifySocket::bind(&dir);
    let path = notify.path.clone();
    let (tell, told) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        // SAFETY: gettid and pthread_self only read.
        tell.send(unsafe { (libc::gettid(), libc::pthread_self()) })
            .unwrap();
        notify.next()
    });
    let (tid, thread) = told.recv_timeout(HANG).unwrap();
    // Each time the reader sleeps in `recv`, interrupt it.
    for _ in 0..5 {
        eventually("the reader asleep in recv", || {
            let stat =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
            if state == Some("S") {
                Ok(())
            } else {
                Err(stat)
            }
        });
        // SAFETY: the reader thread is alive (it waits for the datagram sent below).
        assert_eq!(unsafe { libc::pthread_kill(thread, signal) }, 0);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"READY=1\nSTATUS=after the signals", &path)
        .unwrap();
    assert_eq!(
        reader.join().expect("the reader survives the signals"),
        ["READY=1", "STATUS=after the signals"]
    );
}
