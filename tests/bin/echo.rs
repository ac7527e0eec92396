//! A program the Windows tests run (it builds everywhere): it reports what it was given, or
//! ends the way it is asked to, so that what a `Command` passes can be checked exactly.
//!
//! - `deluxe-echo args ARG..`: one line per argument after `args`;
//! - `deluxe-echo cwd`: the working directory;
//! - `deluxe-echo env`: every environment variable, sorted, one `NAME=VALUE` a line;
//! - `deluxe-echo stdin`: standard input copied to standard output;
//! - `deluxe-echo fail TEXT CODE`: `TEXT` on standard error, then exit code `CODE`;
//! - `deluxe-echo crash`: a write to address 0 (an access violation, or `SIGSEGV`);
//! - `deluxe-echo resolve NAME`: what `Command::new(NAME)` finds here, or its error;
//! - `deluxe-echo hold FILE`: writes its pid into `FILE`, prints `ready`, then runs until
//!   killed.
//!
//! Arguments, directory and variables are printed as stable tokens that hold them exactly,
//! whatever they contain (line breaks, unpaired surrogates): the hex of their bytes
//! (`OsStr::as_encoded_bytes`, UTF-8 for valid text).

use std::ffi::OsStr;
use std::io::{Read, Write};

/// `text` as lower-case hex of its bytes: one token, exact, whatever it holds.
fn token(text: &OsStr) -> String {
    text.as_encoded_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let mode = args.next().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    match mode.to_str() {
        Some("args") => {
            for arg in args {
                writeln!(out, "{}", token(&arg)).expect("stdout");
            }
        }
        Some("cwd") => {
            let cwd = std::env::current_dir().expect("a working directory");
            writeln!(out, "{}", token(cwd.as_os_str())).expect("stdout");
        }
        Some("env") => {
            let mut vars: Vec<_> = std::env::vars_os().collect();
            vars.sort();
            for (name, value) in vars {
                let mut entry = name;
                entry.push("=");
                entry.push(value);
                writeln!(out, "{}", token(&entry)).expect("stdout");
            }
        }
        Some("stdin") => {
            let mut input = Vec::new();
            std::io::stdin().read_to_end(&mut input).expect("stdin");
            out.write_all(&input).expect("stdout");
        }
        Some("fail") => {
            let text = args.next().unwrap_or_default();
            let code: i32 = args
                .next()
                .and_then(|code| code.to_str()?.parse().ok())
                .expect("an exit code");
            eprintln!("{}", text.to_string_lossy());
            std::process::exit(code);
        }
        Some("crash") => {
            let address = std::hint::black_box(std::ptr::null_mut::<u8>());
            // SAFETY: none, deliberately: writing to address 0 is how this mode dies of an
            // access violation, the crash the tests expect to see reported.
            unsafe { address.write_volatile(1) };
            unreachable!("the write to address 0 ended the process");
        }
        Some("resolve") => {
            let name = args.next().unwrap_or_default();
            match deluxe::command::Command::new(&name) {
                Ok(command) => writeln!(out, "found {:?}", command.program()).expect("stdout"),
                Err(error) => writeln!(out, "error {error}").expect("stdout"),
            }
        }
        Some("hold") => {
            let file = std::path::PathBuf::from(args.next().expect("a pid file"));
            let staged = file.with_extension("tmp");
            std::fs::write(&staged, std::process::id().to_string()).expect("pid written");
            std::fs::rename(&staged, &file).expect("pid file in place");
            writeln!(out, "ready").expect("stdout");
            out.flush().expect("stdout");
            loop {
                std::thread::park();
            }
        }
        _ => {
            eprintln!("usage: deluxe-echo args|cwd|env|stdin|fail|crash|resolve|hold ..");
            std::process::exit(2);
        }
    }
}
