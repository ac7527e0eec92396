//! A helper the integration tests run as a separate process, for behaviour that depends on
//! process-wide state (the environment, the standard output):
//! - `deluxe-probe user NAME` builds `/usr/bin/id` run as NAME and prints the outcome;
//! - `deluxe-probe passthrough` runs `echo through` with capture off, then reports how many
//!   bytes the call returned.

use deluxe::process::{CallOptions, Command};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["user", name] => match Command::new("/usr/bin/id").and_then(|id| id.user(*name)) {
            Ok(command) => println!("ok {:?}", command.run_as()),
            Err(error) => {
                println!("{error:?}");
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
        _ => {
            eprintln!("usage: deluxe-probe user NAME | passthrough");
            std::process::exit(2);
        }
    }
}
