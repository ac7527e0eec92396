//! tokio: a daemon whose `run` builds its runtime after the fork and serves TCP echo on
//! loopback, and the controller's async forms driven from a multi-threaded runtime (in a
//! helper process: the test harness never forks a daemon).
#![cfg(feature = "tokio")]

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::{HANG, Scene, eventually, is_alive, wait_gone};

#[test]
fn a_daemon_serves_tcp_echo_from_a_runtime_built_after_the_fork() {
    let scene = Scene::new("echo");
    let pid = scene.start(&["--mode", "echo"]);
    let port: u16 = eventually("the echo daemon's port", || {
        let events = scene.events();
        events
            .iter()
            .find_map(|e| e.strip_prefix("port ")?.parse().ok())
            .ok_or(events)
    });
    for message in [&b"hello\n"[..], b"a second request", &[0xff; 512]] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        stream.write_all(message).unwrap();
        let mut answer = vec![0; message.len()];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(answer, message);
    }
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    let events = scene.events();
    assert!(events.contains(&"echo-stopped".to_owned()), "{events:?}");
    assert_eq!(events.last().unwrap(), "atexit");
}

#[test]
fn the_async_controller_drives_a_daemon_from_a_multithreaded_runtime() {
    let scene = Scene::new("async-cycle");
    let (ok, line) = scene.helper(&["async-cycle"]);
    assert!(ok, "{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    // "async started PID status Running PID restarted NEW stopped Graceful"
    assert_eq!(words[..2], ["async", "started"]);
    let first: i32 = words[2].parse().unwrap();
    let restarted: i32 = words[7].parse().unwrap();
    assert_eq!(
        line,
        format!(
            "async started {first} status Running {first} restarted {restarted} stopped Graceful"
        )
    );
    assert_ne!(first, restarted);
    assert!(!is_alive(first) && !is_alive(restarted));
    scene.wait_event("user1", 1);
    scene.wait_event("user2", 1);
    assert_eq!(scene.events().iter().filter(|e| *e == "atexit").count(), 2);
    assert!(!scene.pidfile().exists());
}
