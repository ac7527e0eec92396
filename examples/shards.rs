//! Several instances of one daemon type from one program, each with its own pidfile, log and
//! process name (`ps` shows `shard-1`, `shard-2`) chosen at run time, and deluxe's command line
//! flattened into a larger one (clap, with the `clap` feature) whose exit codes are passed on.
//!
//! ```sh
//! cargo run --example shards -- --dir /tmp/shards daemon 1 start   # started (pid N)
//! cargo run --example shards -- --dir /tmp/shards daemon 2 start
//! cargo run --example shards -- --dir /tmp/shards list             # each shard's status
//! ps -o pid,comm -C shard-1                                        # its own name
//! cargo run --example shards -- --dir /tmp/shards daemon 1 reload  # its log says so
//! cargo run --example shards -- --dir /tmp/shards daemon 1 stop --stop-timeout 2
//! cargo run --example shards -- --dir /tmp/shards daemon 1 status; echo $?   # 3: not running
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Arg, Args, Command, FromArgMatches, value_parser};
use deluxe::cli::{Action, Invocation};
use deluxe::daemon::{self, Config, Instance, Status};

#[deluxe::daemon(stop_timeout = 5)]
struct Shard {
    id: u16,
}

#[deluxe::daemon]
impl Shard {
    fn run(&self) {
        println!("shard {} serving", self.id);
        daemon::wait_for_stop(std::time::Duration::MAX);
    }

    #[on_reload]
    fn reload(&self) {
        println!("shard {} reloaded", self.id);
    }

    #[atexit]
    fn bye(&self) {
        println!("shard {} stopped", self.id);
    }
}

/// One instance's settings: its own pidfile, log and process name, chosen at run time.
fn shard_config(dir: &Path, id: u16) -> Config {
    Config::new(dir.join(format!("shard-{id}.pid")))
        .log_file(dir.join(format!("shard-{id}.log")))
        .process_name(format!("shard-{id}"))
}

fn main() -> ExitCode {
    // `daemon ID [deluxe's options] ACTION`: deluxe's arguments flattened into this program's
    // subcommand, beside its own `ID` (with clap's derive: `#[command(flatten)] Invocation`).
    let daemon = Command::new("daemon")
        .about("one shard's init script: exit codes as deluxe::cli's")
        .arg(
            Arg::new("id")
                .required(true)
                .value_parser(value_parser!(u16)),
        );
    let command = Command::new("shards")
        .about("Runs numbered shards of one daemon")
        .arg(
            Arg::new("dir")
                .long("dir")
                .value_parser(value_parser!(PathBuf))
                .default_value("/tmp/deluxe-shards")
                .help("where the shards keep their pidfiles and logs"),
        )
        .subcommand_required(true)
        .subcommand(Invocation::augment_args(daemon))
        .subcommand(Command::new("list").about("every shard's status, starting nothing"));
    let matches = command.get_matches();
    let dir: &PathBuf = matches.get_one("dir").expect("has a default");
    if let Err(error) = std::fs::create_dir_all(dir) {
        eprintln!("error: cannot create {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    let dir = std::path::absolute(dir).expect("an absolute path");
    match matches.subcommand() {
        Some(("daemon", daemon)) => {
            let id: u16 = *daemon.get_one("id").expect("required");
            let invocation = match Invocation::from_arg_matches(daemon) {
                Ok(invocation) => invocation,
                Err(error) => error.exit(),
            };
            let config = shard_config(&dir, id);
            // deluxe performs the action and prints; its exit code is this program's. Only
            // starting needs the daemon value: the rest acts on the instance its settings name.
            match invocation.action {
                Action::Start | Action::Restart => {
                    let controller = Shard { id }.into_controller().configure(|_| config);
                    deluxe::cli::execute(controller, &invocation).into()
                }
                _ => deluxe::cli::execute_instance(&Instance::new(config), &invocation).into(),
            }
        }
        Some(("list", _)) => list(&dir),
        _ => unreachable!("a subcommand is required"),
    }
}

/// The status of every shard with a pidfile in `dir`: no daemon value is needed for that.
fn list(dir: &Path) -> ExitCode {
    let mut pidfiles: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "pid"))
                .collect()
        })
        .unwrap_or_default();
    pidfiles.sort();
    for pidfile in pidfiles {
        let name = pidfile.file_stem().unwrap_or_default().to_string_lossy();
        match Instance::new(Config::new(&pidfile)).status() {
            Ok(Status::Running { pid, .. }) => println!("{name}: running (pid {pid})"),
            Ok(Status::Stale { .. }) => println!("{name}: dead (stale pidfile)"),
            Ok(Status::RunningElsewhere { .. }) => println!("{name}: running in another namespace"),
            Ok(Status::Stopped) => {}
            Err(error) => println!("{name}: unknown ({error})"),
        }
    }
    ExitCode::SUCCESS
}
