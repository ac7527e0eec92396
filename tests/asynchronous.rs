//! tokio: a daemon whose `run` builds its runtime after the fork and serves TCP echo on
//! loopback, and the controller's async forms driven from a multi-threaded runtime (in a
//! helper process: the test harness never forks a daemon).
#![cfg(unix)]
#![cfg(feature = "tokio")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{HANG, Scene, is_alive, wait_gone};

#[test]
fn a_daemon_serves_tcp_echo_from_a_runtime_built_after_the_fork() {
    let scene = Scene::new("echo");
    let pid = scene.start(&["--mode", "echo"]);
    let started = std::time::Instant::now();
    let port: u16 = loop {
        if let Some(port) = scene
            .events()
            .iter()
            .find_map(|e| e.strip_prefix("port ")?.parse().ok())
        {
            break port;
        }
        assert!(
            started.elapsed() < HANG,
            "the echo daemon never said its port"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
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
    // "async started PID Running PID restarted NEW Graceful"
    assert_eq!(words[..2], ["async", "started"]);
    let first: i32 = words[2].parse().unwrap();
    assert_eq!(words[3..5], ["Running", words[2]]);
    let restarted: i32 = words[6].parse().unwrap();
    assert_ne!(first, restarted);
    assert_eq!(words[7], "Graceful");
    assert!(!is_alive(first) && !is_alive(restarted));
    scene.wait_event("user1", 1);
    scene.wait_event("user2", 1);
    assert_eq!(scene.events().iter().filter(|e| *e == "atexit").count(), 2);
    assert!(!scene.pidfile().exists());
}
