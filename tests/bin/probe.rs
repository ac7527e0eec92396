//! A helper the integration tests run as a separate process, for behaviour that depends on
//! process-wide state (the environment, the standard output):
//! - `deluxe-probe user NAME` builds `/usr/bin/id` run as NAME and prints the outcome
//!   (`ok run-as NAME`, or `error KIND DETAIL` with the message on stderr);
//! - `deluxe-probe passthrough` runs `echo through` with capture off, then reports how many
//!   bytes the call returned.

#[cfg(unix)]
use deluxe::process::{CallOptions, Command};

#[cfg(unix)]
#[path = "support.rs"]
mod support;

#[cfg(unix)]
use support::resources;

/// The error's variant, as the tests match it, with what they check about it.
#[cfg(unix)]
fn error_token(error: &deluxe::process::CommandError) -> String {
    use deluxe::process::CommandError;
    match error {
        CommandError::SudoMissing { searched } => {
            let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
            format!("SudoMissing {}", searched.join(":"))
        }
        CommandError::UnknownUser { user } => format!("UnknownUser {user}"),
        CommandError::InvalidUser { user, .. } => format!("InvalidUser {user}"),
        CommandError::NotFound { program, .. } => format!("NotFound {program}"),
        CommandError::NotExecutable { path } => format!("NotExecutable {}", path.display()),
        // Nothing else can come from `Command::new(..).user(..)`.
        _ => "Unexpected".to_owned(),
    }
}

#[cfg(unix)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["user", name] => match Command::new("/usr/bin/id").and_then(|id| id.user(*name)) {
            Ok(command) => println!("ok run-as {}", command.run_as().unwrap_or("-")),
            Err(error) => {
                println!("error {}", error_token(&error));
                eprintln!("{error}");
                std::process::exit(1);
            }
        },
        ["passthrough"] => {
            let options = CallOptions::new().capture(false);
            let returned = Command::new("echo")
                .and_then(|echo| echo.call_with(["through"], &options))
                .expect("echo runs");
            println!("returned {} bytes", returned.len());
        }
        ["calls", count] => {
            // Many calls from one process: no descriptor or child is left behind by any.
            let count: usize = count.parse().expect("a number of calls");
            let truth = Command::new("/bin/true").expect("/bin/true exists");
            truth.call(deluxe::process::NO_ARGS).expect("runs");
            let before = resources();
            for _ in 0..count {
                truth.call(deluxe::process::NO_ARGS).expect("runs");
            }
            // A failing call too, each time: its stderr pipe must be closed as well.
            let failing = Command::new("/bin/false").expect("/bin/false exists");
            for _ in 0..count / 10 {
                let _ = failing.call(deluxe::process::NO_ARGS);
            }
            println!("calls {count} {before} -> {}", resources());
        }
        _ => {
            eprintln!("usage: deluxe-probe user NAME | passthrough | calls N");
            std::process::exit(2);
        }
    }
}

/// The helper drives Unix processes: elsewhere it only says so.
#[cfg(not(unix))]
fn main() {
    eprintln!("deluxe-probe is a test helper for Unix only");
    std::process::exit(2);
}
