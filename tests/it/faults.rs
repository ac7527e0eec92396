//! Faults of the machine under a running daemon, on real file systems: a log file on a disk
//! that fills up (a tiny tmpfs) or past the file size limit, a pidfile on a full disk; and the
//! log pipe's edges (what `setup` printed before a failed start).

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use crate::common::{self, HANG, Scene, is_alive, wait_gone};

/// A tmpfs of `size` mounted on a directory for one test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=...`) on `dir`. Needs root: elsewhere the test
    /// is skipped (see `common::skip`).
    fn mount(test: &str, dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        if !nix::unistd::geteuid().is_root() {
            crate::common::skip(test, "needs root to mount a tmpfs");
            return None;
        }
        let status = StdCommand::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs on {}", dir.display());
        Some(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Fills the file system: writes a file `name` until the disk says `ENOSPC`.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.dir.join(name)).unwrap();
        let block = [0u8; 4096];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(error) => panic!("filling {}: {error}", self.dir.display()),
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a daemon left behind by a failed assertion may still hold a file open.
        let _ = StdCommand::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Line `number` of the helper's flood (mode `flood`), as `flood_line` writes it.
fn flood_line(number: usize) -> String {
    format!("flood {number:05} {}", "x".repeat(88))
}

#[test]
fn a_full_log_disk_drops_and_counts_lines_and_the_daemon_goes_on() {
    let scene = Scene::new("full-log");
    let Some(disk) = Tmpfs::mount(
        "a_full_log_disk_drops_and_counts_lines_and_the_daemon_goes_on",
        &scene.dir.join("disk"),
        "64k",
    ) else {
        return;
    };
    // Half the disk taken by another file: the log gets the rest, and deleting the other file
    // gives room again.
    std::fs::write(disk.dir.join("filler"), vec![0u8; 32 * 1024]).unwrap();
    let log = disk.dir.join("daemon.log");
    // Three times what the pipe holds (1 MiB): when the last line has been printed, the pump
    // has tried to write far more than the disk holds.
    let flood = 30_000;
    let pid = scene.start(&[
        "--mode",
        "flood",
        "--count",
        &flood.to_string(),
        "--log",
        log.to_str().unwrap(),
    ]);
    // Printing 3 MB onto a 64 kB disk neither blocks nor kills the hook.
    flood_and_settle(&scene, pid);
    assert!(std::fs::metadata(&log).unwrap().len() <= 64 * 1024);

    // Room again: the next lines go in, after the line that says how many were lost.
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("printed 2", 1);
    // A graceful stop writes everything the daemon printed before it exits.
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    assert_eq!(
        scene.events(),
        [
            format!("run {pid}"),
            "printed 1".into(),
            "user1".into(),
            "reload".into(),
            "printed 2".into(),
            "user1".into(),
            "run-returned".into(),
            "atexit".into(),
        ]
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let prefix = format!("deluxe[{pid}]: WARN: ");
    let suffix = " lines lost: cannot write to the log file: No space left on device (os error 28)";
    let reports: Vec<usize> = (0..lines.len())
        .filter(|at| lines[*at].starts_with(&prefix))
        .collect();
    assert_eq!(reports.len(), 1, "{text}");
    let report = reports[0];
    let lost: usize = lines[report]
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("not a lost-lines report: {:?}", lines[report]));
    // Every line of the flood is either in the file, whole and in order, or counted as lost
    // (a line cut by the full disk counts as lost).
    let whole: Vec<&str> = lines[..report]
        .iter()
        .copied()
        .filter(|line| line.len() == 100)
        .collect();
    let expected: Vec<String> = (0..whole.len()).map(flood_line).collect();
    assert_eq!(whole, expected);
    assert!(lost > 0);
    assert_eq!(whole.len() + lost, flood, "{lost} lost");
    assert_eq!(lines[report + 1..], ["after 2 0", "after 2 1", "after 2 2"]);
}

#[test]
fn a_pidfile_on_a_full_disk_is_a_typed_error_at_start() {
    let scene = Scene::new("full-pidfile");
    let Some(disk) = Tmpfs::mount(
        "a_pidfile_on_a_full_disk_is_a_typed_error_at_start",
        &scene.dir.join("disk"),
        "64k",
    ) else {
        return;
    };
    disk.fill("filler");
    let pidfile = disk.dir.join("daemon.pid");
    let output = common::helper_command(&pidfile, &scene.events_path(), &[], &["start"])
        .output()
        .unwrap();
    let line = common::result_line(&output.stdout);
    assert!(!output.status.success(), "{line}");
    assert_eq!(
        line,
        format!(
            "error Pidfile: pidfile {}: No space left on device (os error 28)",
            pidfile.display()
        )
    );
    // Nothing left behind: no daemon, no pidfile.
    let status = common::helper_command(&pidfile, &scene.events_path(), &[], &["status"])
        .output()
        .unwrap();
    assert_eq!(common::result_line(&status.stdout), "status Stopped");
    assert!(scene.events().is_empty());
}

#[test]
fn a_log_past_the_file_size_limit_drops_and_counts_lines_and_the_daemon_goes_on() {
    // RLIMIT_FSIZE (systemd's LimitFSIZE=): a write past it sends SIGXFSZ, whose default
    // action would end the daemon, and fails with EFBIG.
    let scene = Scene::new("fsize-log");
    let log = scene.log();
    let helper = common::helper_command(
        &scene.pidfile(),
        &scene.events_path(),
        &[
            "--mode",
            "flood",
            "--count",
            "2000",
            "--log",
            log.to_str().unwrap(),
        ],
        &["start"],
    );
    let output = StdCommand::new("prlimit")
        .arg("--fsize=32768")
        .arg("--")
        .arg(helper.get_program())
        .args(helper.get_args())
        .output()
        .expect("prlimit runs (util-linux)");
    let line = common::result_line(&output.stdout);
    let pid: i32 = line
        .strip_prefix("started ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("not a start: {line}"));
    flood_and_settle(&scene, pid);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.len(), 32768);
    let whole = text.lines().filter(|line| line.len() == 100).count();
    assert!(text.lines().take(whole).eq((0..whole).map(flood_line)));

    // Room again under the limit: emptied, as `logrotate`'s copytruncate does.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("printed 2", 1);
    assert_eq!(scene.helper(&["stop"]).1, "stopped Graceful");
    assert!(wait_gone(pid, HANG));
    // The file ended inside a cut line: the report starts on a line of its own.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "\ndeluxe[{pid}]: WARN: {} lines lost: cannot write to the log file: File too large \
             (os error 27)\nafter 2 0\nafter 2 1\nafter 2 2\n",
            2000 - whole
        )
    );
}

#[test]
fn what_setup_printed_before_failing_reaches_the_log() {
    // Before "ready" the pump does not run yet: a failing start copies the pipe to the file.
    let scene = Scene::new("setup-fails-log");
    let log = scene.log();
    let (ok, line) = scene.helper_with(
        &["--mode", "setup-fails", "--log", log.to_str().unwrap()],
        &["start"],
    );
    assert!(!ok);
    assert!(line.starts_with("error "), "{line}");
    assert!(line.contains("setup gave up on purpose"), "{line}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "setup was here\n");
}

/// Has the flood daemon `pid` print its flood (`SIGUSR1`), then reload (`SIGHUP`): the reopen
/// waits until the pump has written, or counted as lost, all that was printed before it.
/// Checks that the daemon is still running.
fn flood_and_settle(scene: &Scene, pid: i32) {
    scene.wait_event(&format!("run {pid}"), 1);
    assert_eq!(scene.helper(&["user1"]).1, "sent");
    scene.wait_event("printed 1", 1);
    // SAFETY: signalling the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    scene.wait_event("reload", 1);
    assert!(is_alive(pid));
    assert_eq!(scene.helper(&["status"]).1, format!("status Running {pid}"));
}
