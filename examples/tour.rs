//! A tour of deluxe, for a newcomer: `cargo run --example tour`.
//!
//! Starts a real daemon made from a plain struct, shows its status, signals it and shows what
//! its hooks did, stops it; then runs commands without a shell and lists the real users. It
//! leaves nothing running, even if a step fails.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deluxe::command::CommandError;
use deluxe::daemon::{self, Controller, Status};
use deluxe::users::get_real_users;

#[path = "support/logger.rs"]
mod logger;

/// A daemon that greets on SIGUSR1 and reports on SIGUSR2, logging to its log file.
#[deluxe::daemon(workdir = "/", stop_timeout = 5)]
#[derive(Default)]
struct Greeter {
    greetings: AtomicU64,
}

#[deluxe::daemon]
impl Greeter {
    fn run(&self) {
        println!("run: up as pid {}", std::process::id());
        daemon::wait_for_stop(Duration::MAX);
        println!("run: asked to stop, returning");
    }

    #[on_user1]
    fn wave(&self) {
        let count = self.greetings.fetch_add(1, Ordering::SeqCst) + 1;
        println!("on_user1: hello #{count}");
    }

    #[on_user2]
    fn report(&self) {
        println!(
            "on_user2: {} greetings so far",
            self.greetings.load(Ordering::SeqCst)
        );
    }

    #[atexit]
    fn farewell(&self) {
        println!("atexit: goodbye");
    }
}

/// Stops the daemon if the tour ends early, so that nothing is left running.
/// Stops the daemon if the tour ends early (an error, a panic); disarmed once it has stopped.
struct StopOnDrop<'a>(Option<&'a Controller<Greeter>>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(controller) = self.0 {
            let _ = controller.stop();
        }
    }
}

/// A status as a person reads it.
fn describe(status: &Status) -> String {
    match status {
        Status::Running { pid, since } => format!(
            "Running {{ pid: {pid}, since: {:.1?} ago }}",
            since.elapsed().unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    logger::install();
    let dir = std::env::temp_dir().join(format!("deluxe-tour-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pidfile = dir.join("greeter.pid");
    let log = dir.join("greeter.log");
    daemon_tour(&pidfile, &log)?;
    command_tour()?;
    let _ = std::fs::remove_dir_all(&dir);
    println!("\nDone: nothing is left running.");
    Ok(())
}

fn daemon_tour(pidfile: &Path, log: &Path) -> Result<(), Box<dyn std::error::Error>> {
    step("A daemon from a plain struct: #[deluxe::daemon] on the struct and on its impl");
    let controller = Greeter::controller().configure(|c| c.pidfile(pidfile).log_file(log));
    let pid = controller.start()?;
    let mut guard = StopOnDrop(Some(&controller));
    println!("   start() returned once the daemon was ready: pid {pid}");
    println!(
        "   pidfile {} holds {:?}",
        pidfile.display(),
        std::fs::read_to_string(pidfile)?
    );
    if let Some(detached) = detachment(pid.as_u32()) {
        println!("   {detached}");
    }

    step("Its status, from the pidfile and its lock");
    println!("   status() = {}", describe(&controller.status()?));
    println!(
        "   a second start() = {} (and the `log` warning above)",
        controller.start().unwrap_err()
    );

    step("Signals run the hooks, on an ordinary thread of the daemon");
    controller.signal_user1()?;
    wait_for_line(log, "on_user1: hello #1")?;
    controller.signal_user1()?;
    wait_for_line(log, "on_user1: hello #2")?;
    controller.signal_user2()?;
    wait_for_line(log, "on_user2: 2 greetings so far")?;
    show_log(log)?;

    step("Stop: SIGTERM, run() returns, atexit runs, the pidfile goes");
    println!("   stop() = {:?}", controller.stop()?);
    guard.0 = None;
    wait_for_line(log, "atexit: goodbye")?;
    show_log(log)?;
    println!("   pidfile still there: {}", pidfile.exists());
    assert_eq!(controller.status()?, Status::Stopped);
    println!("   status() = {}", describe(&controller.status()?));
    Ok(())
}

fn command_tour() -> Result<(), Box<dyn std::error::Error>> {
    step("Run a command: never through a shell, resolved on PATH when it is built");
    let uname = deluxe::command!("uname")?;
    println!(
        "   {} -> {}",
        uname.program().display(),
        text(&uname.call(["-sr"])?)
    );

    step("Arguments reach the program byte for byte: no globbing, no expansion");
    let echo = deluxe::command!("echo")?;
    println!(
        "   echo printed: {}",
        text(&echo.call(["$HOME", "*", "; rm -rf /"])?)
    );

    step("A failing command is a typed error you can match");
    let ls = deluxe::command!("ls")?;
    match ls.call(["/definitely/not/here"]) {
        Err(CommandError::Exit { code, stderr, .. }) => {
            println!(
                "   CommandError::Exit {{ code: {code}, .. }}, stderr: {}",
                text(&stderr)
            );
        }
        other => println!("   unexpected: {other:?}"),
    }
    println!(
        "   as a message: {}",
        ls.call(["/definitely/not/here"]).unwrap_err()
    );

    step("The machine's real users (UID >= UID_MIN, with a login shell)");
    let users = get_real_users()?;
    if users.is_empty() {
        println!("   none on this machine");
    }
    for user in &users {
        println!("   {user}");
    }
    Ok(())
}

/// What /proc says of the daemon: its parent, session and terminal.
fn detachment(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(format!(
        "/proc/{pid}/stat: parent {}, session {} (not its own pid: it can never get a terminal), tty {}",
        fields[1], fields[3], fields[4]
    ))
}

/// Waits (up to 10 s) for the daemon to log `line`.
fn wait_for_line(log: &Path, line: &str) -> Result<(), String> {
    let start = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| l == line)
    {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("the daemon did not log {line:?} within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn show_log(log: &Path) -> std::io::Result<()> {
    println!("   its log, {}:", log.display());
    for line in std::fs::read_to_string(log)?.lines() {
        println!("     | {line}");
    }
    Ok(())
}

fn step(title: &str) {
    println!("\n== {title}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}
