//! What the helper does in a container (as pid 1 of a PID namespace, or its child): count the
//! zombies left in the namespace, and check exit codes while orphans are being reaped.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use deluxe::command::{Command, CommandError};

/// How long to wait for orphans to end and be reaped before counting what is left: a hang
/// guard, never reached when an init reaps them.
const SETTLE: Duration = Duration::from_secs(60);

/// A process of this PID namespace, from its `/proc/PID/stat`.
struct Process {
    pid: i32,
    state: char,
    ppid: i32,
}

fn processes() -> Vec<Process> {
    std::fs::read_dir("/proc")
        .expect("/proc is mounted")
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            Some(Process { pid, state, ppid })
        })
        .collect()
}

/// Waits until every process of the namespace but pid 1 and this one has ended, and every
/// zombie that someone else could reap has been reaped (zombies whose parent is this process
/// are its own: nobody else ever will); returns how many zombies are left.
pub fn zombies_once_settled() -> usize {
    let me = std::process::id() as i32;
    let start = Instant::now();
    loop {
        let others: Vec<Process> = processes()
            .into_iter()
            .filter(|process| process.pid != me && process.pid != 1)
            .collect();
        let settled = others
            .iter()
            .all(|process| process.state == 'Z' && process.ppid == me);
        if settled || start.elapsed() > SETTLE {
            return others.iter().filter(|process| process.state == 'Z').count();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `rounds` rounds of `Command::call` and `std::process::Command::status`, each helper
/// leaving an orphan behind for pid 1 to reap, and checks every exit code (0 to 4, and every
/// hundredth helper killed by `SIGKILL`). Returns `exit-codes ok N` or the first wrong one.
pub fn check_exit_codes(rounds: usize) -> String {
    let sh = Command::new("sh").expect("sh is on PATH");
    for round in 0..rounds {
        let (script, expected) = if round % 100 == 99 {
            (
                "sleep 0.01 </dev/null >/dev/null 2>&1 & kill -KILL $$".to_owned(),
                Err(libc::SIGKILL),
            )
        } else {
            let code = (round % 5) as i32;
            (
                format!("sleep 0.01 </dev/null >/dev/null 2>&1 & exit {code}"),
                Ok(code),
            )
        };
        let called = match sh.call(["-c", script.as_str()]) {
            Ok(_) => Ok(0),
            Err(CommandError::Exit { code, .. }) => Ok(code),
            Err(CommandError::Signal { signal, .. }) => Err(signal),
            Err(other) => return format!("exit-codes wrong at {round}: call failed: {other}"),
        };
        if called != expected {
            return format!("exit-codes wrong at {round}: call gave {called:?}, not {expected:?}");
        }
        let status = match std::process::Command::new("sh")
            .args(["-c", script.as_str()])
            .status()
        {
            Ok(status) => status,
            Err(error) => return format!("exit-codes wrong at {round}: status failed: {error}"),
        };
        let waited = status.code().ok_or(status.signal().unwrap_or(0));
        if waited != expected {
            return format!(
                "exit-codes wrong at {round}: status gave {waited:?}, not {expected:?}"
            );
        }
    }
    format!("exit-codes ok {rounds}")
}
