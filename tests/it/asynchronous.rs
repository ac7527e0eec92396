//! tokio: a daemon whose `run` builds its runtime after the fork and serves TCP echo on
//! loopback, `AsyncController` and `AsyncInstance` driven from a multi-threaded runtime (in a
//! helper program: the test harness never forks a daemon), and the async `Command` forms at
//! scale: no thread per call in flight, a kill that acts at once, a dropped call cleaned up
//! in the background.
#![cfg(feature = "tokio")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use deluxe::command::{CallOptions, Command, CommandError};

use crate::common::{
    HANG, Scene, eventually, is_alive, live_processes_mentioning, scratch_dir, stat, wait_gone,
};

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

/// `ACTION` through the helper's async forms (`async` for `AsyncController`, `async-instance`
/// for `AsyncInstance`) and through the blocking `Controller`: the two lines, which must agree.
fn async_and_blocking(scene: &Scene, form: &str, action: &str) -> (String, String) {
    let (_, asynchronous) = scene.helper(&[form, action]);
    let (_, blocking) = scene.helper(&[action]);
    (asynchronous, blocking)
}

#[test]
fn the_async_controller_reloads_and_tells_the_pid() {
    // Before: no `reload_async` nor `pid_async`; now `AsyncController` has every call.
    let scene = Scene::new("async-reload");
    assert_eq!(scene.helper(&["async", "pid"]), (true, "pid -".to_owned()));
    let (ok, line) = scene.helper(&["async", "reload"]);
    assert!(!ok && line.starts_with("error NotRunning: "), "{line}");
    let pid = scene.start(&[]);
    assert_eq!(
        scene.helper(&["async", "pid"]),
        (true, format!("pid {pid}"))
    );
    assert_eq!(
        scene.helper(&["async", "reload"]),
        (true, "reloaded".to_owned())
    );
    // The future resolved once the daemon had run its reload hook.
    assert_eq!(scene.events().iter().filter(|e| *e == "reload").count(), 1);
    assert_eq!(
        scene.helper(&["async", "stop"]),
        (true, "stopped Graceful".to_owned())
    );
    assert!(wait_gone(pid, HANG));
    assert_eq!(scene.events().last().unwrap(), "atexit");
    assert!(!scene.pidfile().exists());
}

#[test]
fn the_async_instance_does_what_the_instance_does_to_a_real_daemon() {
    let scene = Scene::new("async-instance");
    let pid = scene.start(&[]);
    let running = [
        ("status", format!("status Running {pid}")),
        ("pid", format!("pid {pid}")),
    ];
    for (action, expected) in &running {
        assert_eq!(
            scene.helper(&["async-instance", action]),
            (true, expected.clone())
        );
    }
    for signal in ["user1", "user2"] {
        assert_eq!(
            scene.helper(&["async-instance", signal]),
            (true, "sent".to_owned())
        );
        scene.wait_event(signal, 1);
    }
    assert_eq!(
        scene.helper(&["async-instance", "reload"]),
        (true, "reloaded".to_owned())
    );
    // The future resolved once the daemon had run its reload hook.
    assert!(scene.events().contains(&"reload".to_owned()));
    assert_eq!(
        scene.helper(&["async-instance", "stop"]),
        (true, "stopped Graceful".to_owned())
    );
    // `stop` resolved once the daemon had exited, after its atexit.
    assert!(wait_gone(pid, HANG));
    assert_eq!(scene.events().last().unwrap(), "atexit");
    assert!(!scene.pidfile().exists());
    // Stopped: the same answers, errors included, as the blocking calls.
    for action in ["status", "pid", "stop", "user1", "user2", "reload"] {
        let (asynchronous, blocking) = async_and_blocking(&scene, "async-instance", action);
        assert_eq!(asynchronous, blocking, "{action}");
    }
    let (ok, line) = scene.helper(&["async-instance", "reload"]);
    assert!(!ok && line.starts_with("error NotRunning: "), "{line}");
}

#[test]
fn a_dropped_async_start_leaves_the_daemon_it_made_and_nothing_else() {
    // The future is dropped after its first poll: the start runs to its end on the blocking
    // pool, as the blocking call would, and leaves only the daemon its pidfile names. That
    // daemon was forked by a thread other than the caller, a blocking-pool thread whose stack
    // is free memory in the daemon: before, the start's plan lived there, the daemon's own
    // threads could be given it, and its stop grace read 0 ("run() did not return within
    // 0ns": `GraceExpired` in 8 stops of 20). Ten rounds, to see it.
    let scene = Scene::new("async-dropped-start");
    let dir = scene.dir.to_string_lossy().into_owned();
    for round in 0..10 {
        let (ok, line) = scene.helper(&["async-start-dropped"]);
        assert!(ok, "{line}");
        let pid = scene.pid();
        assert_eq!(line, format!("dropped true status Running {pid}"));
        assert_eq!(live_processes_mentioning(&dir), [pid]);
        assert_eq!(
            scene.helper(&["stop"]),
            (true, "stopped Graceful".to_owned()),
            "round {round}"
        );
        assert!(wait_gone(pid, HANG));
        assert!(live_processes_mentioning(&dir).is_empty());
    }
}

/// A current-thread runtime whose blocking-pool threads carry `name` (at most 15 bytes, the
/// kernel's limit), so that the test can count them in `/proc/self/task`.
fn runtime_named(name: &str, blocking_threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(name)
        .max_blocking_threads(blocking_threads)
        .build()
        .unwrap()
}

/// Threads of this process named `name`.
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .count()
}

/// The pids a test's shells appended to `file`, one a line.
fn pids_in(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Waits until `file` holds `count` pids (a hang guard), sleeping on the runtime's timer so
/// that the calls keep being driven meanwhile and no thread is added.
async fn pids_appear(file: &Path, count: usize) -> Vec<i32> {
    let started = std::time::Instant::now();
    loop {
        let pids = pids_in(file);
        if pids.len() >= count {
            return pids;
        }
        assert!(
            started.elapsed() < HANG,
            "waited {HANG:?} for {count} pids: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `sh -c SCRIPT` on tokio.
async fn sh_async(script: String, options: CallOptions) -> Result<Vec<u8>, CommandError> {
    let sh = Command::new("sh").unwrap();
    sh.call_async(["-c", &script], &options).await
}

/// Asserts that every process of `pids` has exited, after `what` (a hang guard).
fn assert_gone(pids: &[i32], what: &str) {
    for &pid in pids {
        assert!(wait_gone(pid, HANG), "{pid} still runs after {what}");
    }
}

#[test]
fn concurrent_async_calls_take_no_thread_each() {
    // Before: each call in flight held a thread of tokio's blocking pool (16 calls, 16
    // threads named after the runtime). Now they wait in the runtime's reactor.
    const CALLS: usize = 16;
    let name = "async-no-thread";
    let runtime = runtime_named(name, 512);
    let dir = scratch_dir("async-threads");
    let file = dir.join("pids");
    let script = format!("echo $$ >> {}; exec sleep 1000", file.display());
    let (pids, threads) = runtime.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..CALLS {
            calls.spawn(sh_async(script.clone(), CallOptions::new()));
        }
        // Every program is running, and each call has been polled since it started.
        let pids = pids_appear(&file, CALLS).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let threads = threads_named(name);
        // Their owners cancel them (the cleanup takes threads, for the grace only).
        calls.abort_all();
        while calls.join_next().await.is_some() {}
        (pids, threads)
    });
    assert_eq!(
        threads, 0,
        "{CALLS} calls in flight held {threads} pool threads"
    );
    assert_gone(&pids, "its call was dropped");
}

#[test]
fn a_timeout_fires_while_other_calls_run_on_a_one_thread_pool() {
    // Before: a call in flight held the only blocking thread, so another call's loop (and
    // its timeout) waited for it: the second call hung as long as the first ran.
    let runtime = runtime_named("async-one-pool", 1);
    let dir = scratch_dir("async-one-pool");
    let file = dir.join("pids");
    let script = format!("echo $$ >> {}; exec sleep 1000", file.display());
    let (pids, result) = runtime.block_on(async {
        let long = tokio::spawn(sh_async(script.clone(), CallOptions::new()));
        pids_appear(&file, 1).await;
        let options = CallOptions::new().timeout(Duration::from_millis(200));
        let result = tokio::time::timeout(HANG, sh_async(script, options)).await;
        long.abort();
        let _ = long.await;
        (pids_in(&file), result)
    });
    let result = result.expect("the bounded call hung while another call ran");
    assert!(
        matches!(result, Err(CommandError::Timeout { .. })),
        "{result:?}"
    );
    assert_gone(&pids, "its call ended");
}

#[test]
fn async_kill_ends_the_program_without_another_poll() {
    let runtime = runtime_named("async-kill", 512);
    runtime.block_on(async {
        let sh = Command::new("sh").unwrap();
        let mut running = sh
            .spawn_async(
                ["-c", "sleep 1000 & echo $!; exec sleep 1000"],
                &CallOptions::new(),
            )
            .unwrap();
        let child: i32 = running.next_line().await.unwrap().unwrap().parse().unwrap();
        let program = running.id() as i32;
        running.kill();
        // Not polled again until both have ended (before: alive until the next poll). The
        // wait blocks this, the runtime's only thread, on purpose.
        assert!(
            wait_gone(program, HANG),
            "program {program} outlived kill()"
        );
        assert!(wait_gone(child, HANG), "its child {child} outlived kill()");
        let ended = running.wait().await;
        assert!(
            matches!(ended, Err(CommandError::Signal { signal: 15, .. })),
            "{ended:?}"
        );
        // Reaped by `wait`: no zombie of it is left.
        assert!(stat(program).is_none_or(|stat| stat.ppid != std::process::id() as i32));
    });
}

#[test]
fn a_dropped_async_call_is_ended_and_reaped_in_the_background() {
    // Documented: the cleanup starts when the future is dropped, without any further poll,
    // and is complete (SIGKILL after the grace, the program reaped) shortly after the grace.
    let runtime = runtime_named("async-drop", 512);
    let dir = scratch_dir("async-drop-bg");
    let file = dir.join("pids");
    let script = format!(
        "trap '' TERM; echo $$ >> {0}; sleep 1000 & echo $! >> {0}; wait",
        file.display()
    );
    let pids = runtime.block_on(async {
        let sh = Command::new("sh").unwrap();
        let options = CallOptions::new().kill_grace(Duration::from_millis(300));
        let call = sh.call_async(["-c", &script], &options);
        tokio::pin!(call);
        tokio::select! {
            result = &mut call => panic!("the call returned: {result:?}"),
            pids = pids_appear(&file, 2) => pids,
        }
        // `call` is dropped here, with the shell (ignoring SIGTERM) and its child running.
    });
    // The runtime is not driven from here on: the cleanup runs on its blocking pool.
    let (shell, child) = (pids[0], pids[1]);
    assert!(wait_gone(shell, HANG), "shell {shell} ignored the cleanup");
    assert!(wait_gone(child, HANG), "child {child} ignored the cleanup");
    eventually(format!("shell {shell} reaped"), || match stat(shell) {
        Some(stat) if stat.ppid == std::process::id() as i32 => Err(stat.state),
        _ => Ok(()),
    });
    drop(runtime);
}

#[test]
fn async_calls_and_tokio_process_keep_each_their_statuses() {
    // tokio::process installs its own SIGCHLD handling and reaps its own children: beside
    // it, each side still gets its own exit status.
    let runtime = runtime_named("async-sigchld", 512);
    runtime.block_on(async {
        let theirs = tokio::process::Command::new("sh")
            .args(["-c", "sleep 0.2; exit 5"])
            .status();
        let ours = sh_async("sleep 0.1; exit 3".into(), CallOptions::new());
        let (theirs, ours) = tokio::join!(theirs, ours);
        assert_eq!(theirs.unwrap().code(), Some(5));
        assert!(
            matches!(ours, Err(CommandError::Exit { code: 3, .. })),
            "{ours:?}"
        );
    });
}

#[test]
fn async_handles_and_futures_can_move_between_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let runtime = runtime_named("async-send", 512);
    runtime.block_on(async {
        let sh = Command::new("sh").unwrap();
        let options = CallOptions::new();
        let call = sh.call_async(["-c", "exit 0"], &options);
        send(&call);
        call.await.unwrap();
        let running = sh.spawn_async(["-c", "exit 0"], &options).unwrap();
        send_sync(&running);
        running.wait().await.unwrap();
    });
}
