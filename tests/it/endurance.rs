//! Endurance and faults, bounded in time: many cycles and calls leave nothing behind in the
//! controller (read from its /proc), and many racing controllers still make one daemon.

use std::process::Command as StdCommand;

use crate::common::{
    HANG, Scene, is_alive, live_processes_mentioning, race_to_start, result_line, wait_gone,
};

/// `NAME N fds=A threads=B children=C -> fds=A' threads=B' children=C'`: the two measures.
fn before_and_after(line: &str) -> (String, String) {
    let (before, after) = line.split_once(" -> ").unwrap_or_else(|| panic!("{line}"));
    let before = before.splitn(3, ' ').nth(2).unwrap().to_owned();
    (before, after.to_owned())
}

#[test]
fn a_thousand_start_stop_cycles_leave_nothing_behind() {
    let scene = Scene::new("endurance");
    let (ok, line) = scene.helper(&["endurance", "1000"]);
    assert!(ok, "{line}");
    let (before, after) = before_and_after(&line);
    assert_eq!(
        before, after,
        "the controller's descriptors, threads or children grew"
    );
    assert!(before.contains("children=0"), "{before}");
    assert!(!scene.pidfile().exists(), "a pidfile was left behind");
    assert!(live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty());
    let events = scene.events();
    assert_eq!(events.iter().filter(|e| *e == "atexit").count(), 1001);
}

#[test]
fn ten_thousand_calls_leave_nothing_behind() {
    let output = StdCommand::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .args(["calls", "10000"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let line = result_line(&output.stdout);
    let (before, after) = before_and_after(&line);
    assert_eq!(
        before, after,
        "descriptors or children grew over 11,000 calls"
    );
    assert!(before.contains("children=0"), "{before}");
}

#[test]
fn thirty_two_racing_starts_twenty_rounds_make_one_daemon_each() {
    let scene = Scene::new("race32");
    for round in 0..20 {
        let pid = race_to_start(&scene, 32, &round.to_string());
        assert_eq!(
            scene.helper(&["stop"]).1,
            "stopped Graceful",
            "round {round}"
        );
        assert!(wait_gone(pid, HANG));
        assert!(!is_alive(pid));
        assert!(
            live_processes_mentioning(&scene.dir.to_string_lossy()).is_empty(),
            "orphans after round {round}"
        );
    }
    let runs = scene
        .events()
        .iter()
        .filter(|e| e.starts_with("run "))
        .count();
    assert_eq!(runs, 20, "one daemon per round");
}
