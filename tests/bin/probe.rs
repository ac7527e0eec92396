//! A helper the integration tests run as a separate process, for behaviour that depends on
//! process-wide state (the environment, the standard output):
//! - `deluxe-probe user NAME` builds `/usr/bin/id` run as NAME and prints the outcome
//!   (`ok run-as NAME`, or `error KIND DETAIL` with the message on stderr);
//! - `deluxe-probe passthrough` runs `echo through` with capture off, then reports how many
//!   bytes the call returned;
//! - `deluxe-probe calls N`: N calls, then what the process holds;
//! - `deluxe-probe sigpipe`: with `SIGPIPE` at its default action, feeds input to a program
//!   that does not read it, and says it survived;
//! - `deluxe-probe sigchld`: with `SIGCHLD` ignored, reports the outcome of calls;
//! - `deluxe-probe memory`: a program writes 300 MB on stderr; reports the peak memory;
//! - `deluxe-probe flood`: `yes` with the default output limit; reports how the call ended,
//!   what it kept and the peak memory;
//! - `deluxe-probe inherit-stdin`: runs `cat` on the probe's own stdin;
//! - `deluxe-probe hold PIDFILE`: runs a shell that writes its pid and sleeps (for Ctrl-C);
//! - `deluxe-probe grace-fork SCRIPT`: runs `sh -c SCRIPT` with a 300 ms limit and a 2 s grace
//!   (from a terminal's foreground job, the caller's process group);
//! - `deluxe-probe run-as USER [--set NAME=VALUE].. [--timeout MS] [--path PATH] PROGRAM
//!   ARGS..`: one call as USER (the program found in PATH with `Command::with_path` when
//!   given);
//! - `deluxe-probe find NAME PATH`: `Command::with_path`;
//! - `deluxe-probe new NAME`: `Command::new`, on the probe's own `PATH`.
//!
//! Outcomes are printed as stable tokens: `ok ...`, or `error VARIANT[ DETAIL]` then the
//! error's message on stderr.

#[cfg(unix)]
use deluxe::command::{CallOptions, Command, CommandError};

#[cfg(unix)]
#[path = "support.rs"]
mod support;

#[cfg(unix)]
use support::resources;

/// The most memory this process has held (`VmHWM`), in kB.
#[cfg(unix)]
fn peak_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc")
        .lines()
        .find_map(|line| {
            line.strip_prefix("VmHWM:")
                .map(|kb| kb.trim().trim_end_matches(" kB").to_owned())
        })
        .unwrap_or_default()
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
        ["user", name] => {
            let command = Command::new("/usr/bin/id").and_then(|id| id.user(*name));
            let described =
                command.map(|command| format!("run-as {}", command.run_as().unwrap_or("-")));
            if !report(described) {
                std::process::exit(1);
            }
        }
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
            truth.call(deluxe::command::NO_ARGS).expect("runs");
            let before = resources();
            for _ in 0..count {
                truth.call(deluxe::command::NO_ARGS).expect("runs");
            }
            // A failing call too, each time: its stderr pipe must be closed as well.
            let failing = Command::new("/bin/false").expect("/bin/false exists");
            for _ in 0..count / 10 {
                let _ = failing.call(deluxe::command::NO_ARGS);
            }
            println!("calls {count} {before} -> {}", resources());
        }
        ["sigpipe"] => {
            // SAFETY: setting a signal's action to its default before any thread starts.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let options = CallOptions::new().input(vec![b'x'; 8 * 1024 * 1024]);
            for _ in 0..20 {
                let returned = Command::new("true")
                    .and_then(|program| program.call_with(deluxe::command::NO_ARGS, &options));
                report(returned.map(|bytes| format!("{} bytes", bytes.len())));
            }
            println!("survived");
        }
        ["sigchld"] => {
            // SAFETY: ignoring SIGCHLD before any thread starts, as classic daemons do.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            let sh = Command::new("sh").expect("sh");
            report(sh.call(["-c", "echo fine"]).map(lossy));
            report(sh.call(["-c", "echo partial; exit 3"]).map(lossy));
            let options = CallOptions::new().success_codes([4]);
            report(
                sh.output(["-c", "exit 4"], &options)
                    .map(|output| format!("code {}", output.code)),
            );
            println!("{}", resources());
        }
        ["memory"] => {
            let sh = Command::new("sh").expect("sh");
            let error = sh
                .call([
                    "-c",
                    "head -c 300000000 /dev/zero >&2; echo END >&2; exit 1",
                ])
                .expect_err("exits 1");
            let kept = error.stderr().unwrap_or_default().len();
            println!("kept {kept} peak_kb {}", peak_kb());
        }
        ["flood"] => {
            let options = CallOptions::new().timeout(std::time::Duration::from_secs(60));
            let error = Command::new("yes")
                .and_then(|yes| yes.call_with(deluxe::command::NO_ARGS, &options))
                .expect_err("yes never ends");
            let kind = match &error {
                CommandError::OutputLimit { .. } => "OutputLimit",
                CommandError::Timeout { .. } => "Timeout",
                _ => "other",
            };
            let kept = error.stdout().map_or(0, <[u8]>::len);
            println!("{kind} kept {kept} peak_kb {}", peak_kb());
        }
        ["inherit-stdin"] => {
            let options = CallOptions::new().inherit_stdin();
            report(
                Command::new("cat")
                    .and_then(|cat| cat.call_with(deluxe::command::NO_ARGS, &options))
                    .map(lossy),
            );
        }
        ["hold", pidfile] => {
            let script = format!(
                "echo $$ > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}; sleep 7203; echo never"
            );
            let result = Command::new("sh").and_then(|sh| sh.call(["-c", &script]));
            report(result.map(lossy));
        }
        ["grace-fork", script] => {
            let options = CallOptions::new()
                .timeout(std::time::Duration::from_millis(300))
                .kill_grace(std::time::Duration::from_secs(2));
            let result = Command::new("sh").and_then(|sh| sh.call_with(["-c", script], &options));
            report(result.map(lossy));
        }
        ["run-as", user, rest @ ..] => {
            let mut options = CallOptions::new();
            let mut rest = rest;
            while let ["--set", assignment, tail @ ..] = rest {
                let (name, value) = assignment.split_once('=').expect("NAME=VALUE");
                options = options.set_env(name, value);
                rest = tail;
            }
            if let ["--timeout", millis, tail @ ..] = rest {
                let millis = millis.parse().expect("a number of milliseconds");
                options = options.timeout(std::time::Duration::from_millis(millis));
                rest = tail;
            }
            let mut path = None;
            if let ["--path", search, tail @ ..] = rest {
                path = Some(*search);
                rest = tail;
            }
            let [program, args @ ..] = rest else {
                panic!("run-as USER PROGRAM ARGS..")
            };
            let result = path
                .map_or_else(
                    || Command::new(program),
                    |path| Command::with_path(program, path),
                )
                .and_then(|command| command.user(*user))
                .and_then(|command| command.call_with(args, &options));
            report(result.map(lossy));
        }
        ["users"] => {
            log::set_logger(&StderrLogger).expect("one logger");
            log::set_max_level(log::LevelFilter::Warn);
            // The String form, then the OsString form (names escaped: they may be any bytes).
            let users = deluxe::users::get_real_users().expect("users");
            println!("users {}", users.into_iter().collect::<Vec<_>>().join(" "));
            let users = deluxe::users::get_real_users_os().expect("users");
            let names: Vec<String> = users
                .iter()
                .map(|name| name.to_string_lossy().escape_debug().to_string())
                .collect();
            println!("users_os {}", names.join(" "));
        }
        ["find", name, path] => {
            report(
                Command::with_path(name, path)
                    .map(|command| command.program().display().to_string()),
            );
        }
        ["new", name] => {
            report(Command::new(name).map(|command| command.program().display().to_string()));
        }
        _ => {
            eprintln!(
                "usage: deluxe-probe user NAME | passthrough | calls N | sigpipe | sigchld | memory | inherit-stdin | hold PIDFILE | run-as USER [--set NAME=VALUE].. [--path PATH] PROGRAM ARGS.. | find NAME PATH | new NAME"
            );
            std::process::exit(2);
        }
    }
}

#[cfg(unix)]
fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

/// `ok DETAIL`, or `error TOKEN` with the message on stderr; whether it was `ok`.
#[cfg(unix)]
fn report(result: Result<String, CommandError>) -> bool {
    match result {
        Ok(detail) => {
            println!("ok {detail}");
            true
        }
        Err(error) => {
            println!("error {}", token(&error));
            eprintln!("{error}");
            false
        }
    }
}

/// The error's variant, as the tests match it, with what they check about it.
#[cfg(unix)]
fn token(error: &CommandError) -> String {
    match error {
        CommandError::Exit { code, stdout, .. } => {
            format!("Exit {code} {}", String::from_utf8_lossy(stdout).trim_end())
        }
        CommandError::Signal { signal_name, .. } => format!("Signal {signal_name}"),
        CommandError::Sudo { refusal, .. } => format!("Sudo {refusal:?}"),
        CommandError::NotFound {
            program, denied, ..
        } => {
            format!("NotFound {program} denied={}", denied.len())
        }
        CommandError::SudoMissing { searched } => {
            let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
            format!("SudoMissing {}", searched.join(":"))
        }
        CommandError::UnknownUser { user } => format!("UnknownUser {user}"),
        CommandError::InvalidUser { user, .. } => format!("InvalidUser {user}"),
        CommandError::NotExecutable { path } => format!("NotExecutable {}", path.display()),
        CommandError::UserCannotAccess { what, .. } => format!("UserCannotAccess {what:?}"),
        CommandError::InvalidArgument { problem, .. } => {
            format!("InvalidArgument {problem:?}")
        }
        CommandError::InvalidSearchPath { problem, .. } => {
            format!("InvalidSearchPath {problem:?}")
        }
        CommandError::Io { .. } => "Io".to_owned(),
        CommandError::Timeout { .. } => "Timeout".to_owned(),
        CommandError::NotEnded { pids, error, .. } => {
            let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
            format!("NotEnded {} {}", token(error), pids.join(","))
        }
        CommandError::OutputLimit { .. } => "OutputLimit".to_owned(),
        other => format!("other {other:?}"),
    }
}

/// `log` records on stderr, as `LEVEL: message`.
#[cfg(unix)]
struct StderrLogger;

#[cfg(unix)]
impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("{}: {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

/// The helper drives Unix processes: elsewhere it only says so.
#[cfg(not(unix))]
fn main() {
    eprintln!("deluxe-probe is a test helper for Unix only");
    std::process::exit(2);
}
