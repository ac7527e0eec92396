// Every accepted form of `command!`, through the crate and through a renamed crate.
extern crate deluxe as renamed;

use deluxe::command::{Command, CommandError};

fn build() -> Result<Vec<Command>, CommandError> {
    Ok(vec![
        deluxe::command!("ls")?,
        deluxe::command!("ls",)?,
        deluxe::command!(r"ls")?,
        deluxe::command!("/bin/ls")?,
        deluxe::command!("ls", path = "/usr/bin:/bin")?,
        deluxe::command!("ls", path = "/bin",)?,
        deluxe::command!("true", path = "/bin/true")?, // the program's own file
        renamed::command!("ls")?,
    ])
}

fn with_user() -> Result<Command, CommandError> {
    deluxe::command!("id", user = "root", path = "/usr/bin")
}

fn main() {
    let _ = build;
    let _ = with_user;
}
