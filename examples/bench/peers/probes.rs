//! What each library did in the situations deluxe's tests cover, printed as a second table
//! (deluxe's column is what those tests assert).

use serde::Deserialize;

/// What one library did in the probes; the fields `examples/peers/peers.py probe` prints.
#[derive(Deserialize)]
pub struct Facts {
    /// A second start while the daemon runs: the caller's exit code...
    pub second_start_exit: i32,
    /// ...and whether what it printed names the running daemon's pid.
    pub second_start_reported_pid: bool,
    /// A start whose pidfile's directory does not exist: the caller's exit code...
    pub missing_pidfile_dir_start_exit: i32,
    /// ...and whether the library made the directory.
    pub created_missing_pidfile_dir: bool,
    /// Whether a stop signalled the unrelated live process a stale pidfile names; `None`: the
    /// library has no stop.
    pub stale_pidfile_unrelated_process_signalled: Option<bool>,
    /// Whether a pidfile that is a symbolic link left the file it points to alone.
    pub symlink_target_untouched: bool,
    /// A restart of a daemon serving TCP while a client connects every millisecond: the
    /// connections refused and those tried; `None`: the library has no restart.
    pub restart_refused: Option<(u32, u32)>,
}

/// A library's name and its facts.
pub struct Probe {
    pub library: String,
    pub facts: Facts,
}

/// A situation, what deluxe's tests assert in it, and how to read a library's facts.
struct Situation {
    name: &'static str,
    deluxe: &'static str,
    theirs: fn(&Facts) -> String,
}

const SITUATIONS: [Situation; 5] = [
    Situation {
        name: "second start while running",
        deluxe: "typed AlreadyRunning { pid } + warning (tests/it/daemon.rs)",
        theirs: |facts| {
            let said = if facts.second_start_reported_pid {
                "reports the pid"
            } else {
                "says nothing"
            };
            format!("{said}, exit {}", facts.second_start_exit)
        },
    },
    Situation {
        name: "start, pidfile directory missing",
        deluxe: "typed Pidfile error: \"its directory does not exist\" (tests/it/ticker.rs)",
        theirs: |facts| {
            if facts.created_missing_pidfile_dir {
                "creates the directory".to_owned()
            } else {
                format!(
                    "caller exits {}, the daemon fails unseen",
                    facts.missing_pidfile_dir_start_exit
                )
            }
        },
    },
    Situation {
        name: "stop, stale pidfile naming an unrelated live process",
        deluxe: "never signalled: an unlocked pidfile is not running (tests/it/daemon.rs)",
        theirs: |facts| {
            match facts.stale_pidfile_unrelated_process_signalled {
                Some(true) => "SIGTERMs that process",
                Some(false) => "leaves it alone",
                None => "has no stop",
            }
            .to_owned()
        },
    },
    Situation {
        name: "pidfile is a symlink to another file",
        deluxe: "refused with a typed error, target untouched (tests/it/daemon.rs)",
        theirs: |facts| {
            if facts.symlink_target_untouched {
                "target untouched"
            } else {
                "overwrites the target"
            }
            .to_owned()
        },
    },
    Situation {
        name: "restart while clients connect",
        deluxe: "0 refused: sockets handed over, new daemon ready first; a failing one leaves \
                 the old serving (tests/it/restart.rs, tests/it/greeter.rs)",
        theirs: |facts| match facts.restart_refused {
            Some((refused, tried)) => {
                format!("stop then start: {refused} of {tried} connections refused")
            }
            None => "has no restart".to_owned(),
        },
    },
];

/// The situations' table, a column per library.
pub fn print_probes(probes: &[Probe]) {
    if probes.is_empty() {
        return;
    }
    print!("\n| situation | deluxe");
    for probe in probes {
        print!(" | {}", probe.library);
    }
    print!(" |\n|---|---");
    for _ in probes {
        print!("|---");
    }
    println!("|");
    for situation in &SITUATIONS {
        print!("| {} | {}", situation.name, situation.deluxe);
        for probe in probes {
            print!(" | {}", (situation.theirs)(&probe.facts));
        }
        println!(" |");
    }
}
