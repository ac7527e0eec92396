//! The `greeter` example's `restart` (with `--features tokio`): its port, declared with
//! `daemon::listener`, is handed to the new greeter, so real TCP clients connecting all along
//! are never refused, while the old greeter drains the connection it had open.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::{HANG, Scene, eventually, read_pidfile, wait_gone};
use crate::services::{greeter_binary, wait_for_log};

/// The greeter of a scene: its configuration and log in the scene's directory.
pub struct Greeter {
    pub scene: Scene,
    pub address: SocketAddr,
}

impl Greeter {
    /// A scene with a free loopback port, not started.
    pub fn new(name: &str) -> Self {
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        Self {
            scene: Scene::new(name),
            address,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.scene.dir.join("greeter.conf")
    }

    pub fn log(&self) -> PathBuf {
        self.scene.dir.join("greeter.log")
    }

    /// Writes the configuration: this greeter's address and `lines`.
    pub fn configure(&self, lines: &str) {
        std::fs::write(self.config(), format!("listen = {}\n{lines}", self.address)).unwrap();
    }

    /// Runs the greeter's command line with `action`: its exit code, stdout and stderr.
    pub fn act(&self, action: &str) -> (Option<i32>, String, String) {
        let output = StdCommand::new(greeter_binary())
            .arg("--config")
            .arg(self.config())
            .arg("--pidfile")
            .arg(self.scene.pidfile())
            .arg("--log")
            .arg(self.log())
            .arg(action)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        )
    }

    /// Says `action`, which must succeed; the pid in `PREFIX (pid N)`.
    pub fn act_pid(&self, action: &str, prefix: &str) -> i32 {
        let (code, stdout, stderr) = self.act(action);
        assert_eq!(code, Some(0), "{action}: {stdout} {stderr}");
        pid_in(&stdout, prefix)
    }

    /// The greeter serving: `status` (the kernel's lock holder) and the pidfile name `pid`.
    pub fn assert_serving(&self, pid: i32) {
        assert_eq!(read_pidfile(&self.scene.pidfile()), Some(pid));
        let status = self.act("status").1;
        let rest = status.strip_prefix(&format!("running (pid {pid}"));
        assert!(
            rest.is_some_and(|rest| rest.starts_with([')', ','])),
            "status says {status:?}, not pid {pid}"
        );
    }
}

/// The pid in `PREFIX (pid N)`.
pub fn pid_in(line: &str, prefix: &str) -> i32 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(" (pid "))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("expected `{prefix} (pid N)`, got {line:?}"))
}

/// A new connection: the greeting it got, or why it got none (refused, cut).
pub fn greeting(address: SocketAddr) -> std::io::Result<String> {
    let stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(HANG))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    if line.ends_with('\n') {
        Ok(line.trim_end().to_owned())
    } else {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// A connection held open: the stream, a reader of its lines, and the greeting line it got.
pub fn hold(address: SocketAddr) -> (TcpStream, BufReader<TcpStream>, String) {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(HANG)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    (stream, reader, greeting)
}

/// Sends `line` on a held connection; the line that comes back.
pub fn echo(stream: &TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> String {
    let mut stream = stream;
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut echo = String::new();
    reader.read_line(&mut echo).unwrap();
    echo
}

/// A client thread opening a new connection about every millisecond until finished; every
/// outcome is kept, in order.
pub struct Clients {
    running: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<std::io::Result<String>>>>,
    thread: std::thread::JoinHandle<()>,
}

impl Clients {
    pub fn start(address: SocketAddr) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let thread = std::thread::spawn({
            let (running, outcomes) = (Arc::clone(&running), Arc::clone(&outcomes));
            move || {
                while running.load(Ordering::Relaxed) {
                    let outcome = greeting(address);
                    outcomes.lock().unwrap().push(outcome);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        Self {
            running,
            outcomes,
            thread,
        }
    }

    /// Waits until a connection was greeted with `greeting`.
    pub fn wait_for(&self, greeting: &str) {
        eventually(format!("a client greeted {greeting:?}"), || {
            let outcomes = self.outcomes.lock().unwrap();
            if outcomes
                .iter()
                .any(|outcome| outcome.as_ref().is_ok_and(|got| got == greeting))
            {
                Ok(())
            } else {
                Err(outcomes.len())
            }
        });
    }

    /// Stops the thread; every outcome, in order.
    pub fn finish(self) -> Vec<std::io::Result<String>> {
        self.running.store(false, Ordering::Relaxed);
        self.thread.join().unwrap();
        Arc::into_inner(self.outcomes)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// Every connection was greeted: none refused, none cut.
pub fn assert_none_refused(outcomes: &[std::io::Result<String>]) {
    let failed: Vec<_> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(at, outcome)| outcome.as_ref().err().map(|error| (at, error.to_string())))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} connections failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
}

#[test]
fn restart_refuses_no_connection_a_failed_one_keeps_the_old_greeter_and_the_old_drains() {
    let greeter = Greeter::new("greeter-restart");
    greeter.configure("greeting = hello\n");
    let old = greeter.act_pid("start", "started");
    greeter.assert_serving(old);
    // Open before the restart: the old greeter serves it to its end.
    let (open, mut open_reader, hello) = hold(greeter.address);
    assert_eq!(hello, "hello\n");
    let clients = Clients::start(greeter.address);
    clients.wait_for("hello");

    // A new greeter whose setup fails: `restart` says why, and the old one serves on.
    greeter.configure("colour = blue\n");
    let (code, _, stderr) = greeter.act("restart");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "error: the daemon's setup failed: {}:2: unknown key `colour`",
            greeter.config().display()
        )
    );
    greeter.assert_serving(old);
    // A new address cannot be taken by a restart (the socket is handed over as it is).
    let moved = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(greeter.config(), format!("listen = {moved}\n")).unwrap();
    let (code, _, stderr) = greeter.act("restart");
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "error: the daemon's setup failed: `listen = {moved}` is new, but a restart keeps \
             the socket on {}: stop, then start, to move it",
            greeter.address
        )
    );
    greeter.assert_serving(old);

    // The restart: the new greeter (new configuration) serves while the old one drains.
    greeter.configure("greeting = bonjour\n");
    std::thread::scope(|threads| {
        let restarting = threads.spawn(|| greeter.act("restart"));
        wait_for_log(&greeter.log(), "stopping: ");
        clients.wait_for("bonjour");
        assert_eq!(
            echo(&open, &mut open_reader, "still served"),
            "still served\n"
        );
        // `restart` returns once the old greeter is gone, which waits for this connection.
        drop((open, open_reader));
        let (code, stdout, stderr) = restarting.join().unwrap();
        assert_eq!(code, Some(0), "{stdout} {stderr}");
        let new = pid_in(&stdout, "restarted");
        assert_ne!(new, old);
        assert!(wait_gone(old, HANG));
        greeter.assert_serving(new);
    });
    // Again: the new greeter hands over exactly the socket it declared, and nothing warns.
    let before = read_pidfile(&greeter.scene.pidfile()).unwrap();
    let again = greeter.act_pid("restart", "restarted");
    assert_ne!(again, before);
    assert!(wait_gone(before, HANG));
    greeter.assert_serving(again);
    let outcomes = clients.finish();
    assert_none_refused(&outcomes);
    assert_eq!(greeting(greeter.address).unwrap(), "bonjour");
    let log = std::fs::read_to_string(greeter.log()).unwrap();
    assert!(!log.contains("WARN"), "{log}");
    assert_eq!(greeter.act("stop").0, Some(0));
    assert!(!greeter.scene.pidfile().exists());
}
