//! A tour of deluxe, for a newcomer: `cargo run --example tour`.
//!
//! Runs commands without a shell, shows a failing command's typed error, and lists the
//! machine's real users.

use deluxe::process::{CommandError, get_real_users};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    step("Run a command: never through a shell, resolved on PATH when it is built");
    let uname = deluxe::command!("uname")?;
    println!(
        "   {} -> {}",
        uname.program().display(),
        text(&uname.call(["-sr"])?)
    );

    step("Arguments reach the program byte for byte: no globbing, no expansion");
    let echo = deluxe::command!("echo")?;
    let output = echo.call(["$HOME", "*", "; rm -rf /"])?;
    println!("   echo printed: {}", text(&output));

    step("A failing command is a typed error you can match");
    let ls = deluxe::command!("ls")?;
    match ls.call(["/definitely/not/here"]) {
        Err(CommandError::Exit { code, stderr, .. }) => {
            println!(
                "   ls exited with code {code}; its stderr: {}",
                text(stderr.as_bytes())
            );
        }
        other => println!("   unexpected: {other:?}"),
    }
    let error = ls.call(["/definitely/not/here"]).unwrap_err();
    println!("   as a message: {error}");

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

fn step(title: &str) {
    println!("\n== {title}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim_end().to_owned()
}
