//! `Command`'s output people can use: streaming lines, failed programs keeping their output,
//! accepted exit codes, pipelines without a shell, redirection, environment changes, the
//! `path` of a program, and errors that print once, on one line.

use crate::common::{Scratch, scratch_dir};
use std::error::Error as _;
use std::time::Duration;

use deluxe::command::{Access, ArgumentProblem, SearchPathProblem, Stderr, SudoRefusal};
use deluxe::command::{CallOptions, Command, CommandError, NO_ARGS};
use deluxe::command::{ProgramProblem, UserNameProblem};

use crate::common::HANG;

fn sh() -> Command {
    Command::new("sh").unwrap()
}

fn tempdir(name: &str) -> Scratch {
    scratch_dir(&format!("output-{name}"))
}

#[test]
fn lines_arrive_while_the_program_still_runs() {
    // The program prints, then waits for a line on its input that only comes after we have
    // read its first line: without streaming this would wait until the hang guard.
    let dir = tempdir("stream");
    let fifo = dir.join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let script = format!(
        "echo first; read go < {0}; echo \"second $go\"",
        fifo.display()
    );
    let options = CallOptions::new().timeout(HANG);
    let mut running = sh().spawn(["-c", &script], &options).unwrap();
    let mut lines = running.lines();
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    std::fs::write(&fifo, "now\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "second now");
    assert!(lines.next().is_none());
    let output = running.wait().unwrap();
    assert_eq!((output.code, output.stdout.len()), (0, 0));
}

#[test]
fn a_last_line_without_newline_and_invalid_utf8_are_kept() {
    let mut running = sh()
        .spawn(["-c", "printf 'a\\n\\377b\\nlast'"], &CallOptions::new())
        .unwrap();
    let lines: Vec<String> = running.lines().map(Result::unwrap).collect();
    assert_eq!(lines, ["a", "\u{FFFD}b", "last"]);
}

#[test]
fn lines_of_a_timed_out_program_end_with_the_timeout() {
    let options = CallOptions::new().timeout(Duration::from_millis(200));
    let mut running = sh()
        .spawn(["-c", "echo one; sleep 7204.1"], &options)
        .unwrap();
    let items: Vec<_> = running.lines().collect();
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), "one");
    assert!(matches!(items[1], Err(CommandError::Timeout { .. })));
    assert!(matches!(running.wait(), Err(CommandError::Timeout { .. })));
}

#[test]
fn failed_programs_keep_their_stdout_and_stderr() {
    let error = sh()
        .call(["-c", "echo partial result; echo why >&2; exit 2"])
        .unwrap_err();
    match &error {
        CommandError::Exit {
            code,
            stdout,
            stderr,
            ..
        } => {
            assert_eq!(*code, 2);
            assert_eq!(stdout, b"partial result\n");
            assert_eq!(stderr, b"why\n");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.stdout(), Some(&b"partial result\n"[..]));
    let error = sh().call(["-c", "echo before; kill -TERM $$"]).unwrap_err();
    assert!(matches!(error, CommandError::Signal { ref stdout, .. } if stdout == b"before\n"));
}

#[test]
fn accepted_exit_codes_return_the_full_output() {
    let grep = Command::new("grep").unwrap();
    let options = CallOptions::new().input("apple\n").success_codes([1]);
    let none = grep.output(["pear"], &options).unwrap();
    assert_eq!(none.code, 1);
    assert!(none.stdout.is_empty());
    let found = grep.output(["app"], &options).unwrap();
    assert_eq!((found.code, found.stdout.as_slice()), (0, &b"apple\n"[..]));
    // grep's real errors (code 2) are still errors.
    assert!(matches!(
        grep.output(["-E", "("], &options),
        Err(CommandError::Exit { code: 2, .. })
    ));
    let dir = tempdir("diff");
    std::fs::write(dir.join("a"), "1\n").unwrap();
    std::fs::write(dir.join("b"), "2\n").unwrap();
    let diff = Command::new("diff").unwrap();
    let output = diff
        .output(
            [dir.join("a"), dir.join("b")],
            &CallOptions::new().success_codes([1]),
        )
        .unwrap();
    assert_eq!(output.code, 1);
    assert!(String::from_utf8_lossy(&output.stdout).contains("> 2"));
    // call_with accepts them too, returning stdout.
    assert_eq!(
        sh().call_with(
            ["-c", "echo x; exit 5"],
            &CallOptions::new().success_codes([5])
        )
        .unwrap(),
        b"x\n"
    );
}

#[test]
fn a_successful_programs_stderr_can_be_had() {
    let output = sh()
        .output(
            ["-c", "echo data; echo 'warning: odd' >&2"],
            &CallOptions::new(),
        )
        .unwrap();
    assert_eq!(output.stdout, b"data\n");
    assert_eq!(output.stderr, b"warning: odd\n");
}

#[test]
fn pipelines_stream_through_os_pipes() {
    // 200 MB through three stages: nothing collects a whole stage's output.
    let head = Command::new("head").unwrap();
    let tr = Command::new("tr").unwrap();
    let wc = Command::new("wc").unwrap();
    let pipeline = head
        .with_args(["-c", "200000000", "/dev/zero"])
        .pipe(tr.with_args(["\\0", "a"]))
        .pipe(wc.with_args(["-c"]));
    let counted = pipeline.call(&CallOptions::new()).unwrap();
    assert_eq!(String::from_utf8_lossy(&counted).trim(), "200000000");
    // Input goes to the first stage, output comes from the last.
    let sort = Command::new("sort").unwrap();
    let uniq = Command::new("uniq").unwrap();
    let sorted = sort
        .with_args(NO_ARGS)
        .pipe(uniq.with_args(["-c"]))
        .call(&CallOptions::new().input("b\na\nb\n"))
        .unwrap();
    let text = String::from_utf8(sorted).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words, ["1", "a", "2", "b"]);
    // yes dies of SIGPIPE when head has enough: that is not a failure.
    let yes = Command::new("yes").unwrap();
    assert_eq!(
        yes.with_args(["y"])
            .pipe(head.with_args(["-n", "2"]))
            .call(&CallOptions::new())
            .unwrap(),
        b"y\ny\n"
    );
}

#[test]
fn a_failing_stage_is_named_like_pipefail() {
    let cat = Command::new("cat").unwrap();
    let first_fails = sh()
        .with_args(["-c", "echo oops >&2; exit 3"])
        .pipe(cat.with_args(NO_ARGS));
    let error = first_fails.call(&CallOptions::new()).unwrap_err();
    match &error {
        CommandError::Stage {
            stage: 1,
            stages: 2,
            error,
        } => assert!(matches!(**error, CommandError::Exit { code: 3, .. })),
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().starts_with("pipeline stage 1 of 2: ")
            && error.to_string().ends_with("exited with code 3: oops"),
        "{error}"
    );
    assert_eq!(error.stderr(), Some(&b"oops\n"[..]));
    // The rightmost failure wins, as with `set -o pipefail`.
    let both = sh()
        .with_args(["-c", "exit 3"])
        .pipe(sh().with_args(["-c", "cat >/dev/null; exit 4"]));
    assert!(matches!(
        both.call(&CallOptions::new()),
        Err(CommandError::Stage { stage: 2, ref error, .. }) if matches!(**error, CommandError::Exit { code: 4, .. })
    ));
    // An argument no program can take is refused before anything starts, naming its stage.
    assert!(matches!(
        cat.with_args(NO_ARGS)
            .pipe(cat.with_args(["a\0b"]))
            .call(&CallOptions::new()),
        Err(CommandError::Stage { stage: 2, .. })
    ));
}

#[test]
fn a_pipeline_is_one_unit_for_timeouts_and_cancelling() {
    let sleep = Command::new("sleep").unwrap();
    let cat = Command::new("cat").unwrap();
    let pipeline = sleep.with_args(["7204.2"]).pipe(cat.with_args(NO_ARGS));
    let options = CallOptions::new().timeout(Duration::from_millis(200));
    let error = pipeline.call(&options).unwrap_err();
    assert!(matches!(error, CommandError::Timeout { .. }), "{error:?}");
    assert!(crate::common::live_processes_mentioning("7204.2").is_empty());
    // All stages share the first one's process group.
    let running = pipeline.spawn(&CallOptions::new()).unwrap();
    let leader = running.id() as i32;
    let children =
        std::fs::read_to_string(format!("/proc/{}/task/{0}/children", std::process::id()))
            .unwrap_or_default();
    let interactive = nix::unistd::tcgetpgrp(std::io::stdin())
        .is_ok_and(|foreground| foreground == nix::unistd::getpgrp());
    for child in children
        .split_whitespace()
        .map(|pid| pid.parse::<i32>().unwrap())
    {
        let Some(stat) = crate::common::stat(child) else {
            continue;
        };
        let cmd = std::fs::read_to_string(format!("/proc/{child}/cmdline")).unwrap_or_default();
        if cmd.contains("7204.2") || (cmd.starts_with("cat") && child > leader) {
            let group = stat.pgrp;
            if !interactive {
                assert_eq!(group, leader, "{cmd}");
            }
        }
    }
    drop(running);
    assert!(crate::common::live_processes_mentioning("7204.2").is_empty());
}

#[test]
fn stderr_merged_into_stdout_or_sent_to_a_file() {
    let script = ["-c", "echo out; echo err >&2; echo out2"];
    let merged = sh()
        .call_with(script, &CallOptions::new().stderr(Stderr::Merge))
        .unwrap();
    assert_eq!(merged, b"out\nerr\nout2\n");
    let dir = tempdir("stderr-file");
    let log = dir.join("log");
    let output = sh()
        .output(
            script,
            &CallOptions::new().stderr(Stderr::File(log.clone())),
        )
        .unwrap();
    assert_eq!(output.stdout, b"out\nout2\n");
    assert_eq!(output.stderr, b"", "stderr went to the file, not the call");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "err\n");
    let error = sh()
        .call_with(
            script,
            &CallOptions::new().stderr(Stderr::File(dir.join("no/such/dir/log"))),
        )
        .unwrap_err();
    assert!(
        matches!(error, CommandError::StderrFile { .. }),
        "{error:?}"
    );
}

#[test]
fn stdin_can_be_inherited_for_interactive_programs() {
    use std::io::Write;
    let mut probe = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("inherit-stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    probe
        .stdin
        .take()
        .unwrap()
        .write_all(b"typed by a person\n")
        .unwrap();
    let output = probe.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ok typed by a person\n"
    );
}

#[test]
fn environment_changes_apply_on_top_of_the_inherited_environment() {
    // SAFETY: no other thread of this test binary reads or writes the environment now
    // (each test sets variables only through CallOptions; this one variable is unique).
    unsafe { std::env::set_var("DELUXE_TEST_INHERITED", "kept") };
    let options = CallOptions::new()
        .set_env("DELUXE_TEST_ADDED", "added")
        .remove_env("HOME");
    let output = sh()
        .call_with(
            [
                "-c",
                "echo $DELUXE_TEST_INHERITED $DELUXE_TEST_ADDED ${HOME-nohome}",
            ],
            &options,
        )
        .unwrap();
    assert_eq!(output, b"kept added nohome\n");
    // On top of a whole environment too.
    let options = CallOptions::new()
        .env([("A", "1"), ("B", "2")])
        .remove_env("A")
        .set_env("C", "3");
    let env = Command::new("env")
        .unwrap()
        .call_with(NO_ARGS, &options)
        .unwrap();
    assert_eq!(env, b"B=2\nC=3\n");
    assert!(matches!(
        sh().call_with(NO_ARGS, &CallOptions::new().set_env("A=B", "1")),
        Err(CommandError::InvalidArgument {
            problem: ArgumentProblem::VariableNameWithEquals,
            ..
        })
    ));
}

#[test]
fn path_may_name_the_programs_own_file() {
    let dir = tempdir("path-file");
    let tool = dir.join("my-ls");
    crate::common::copy_executable(std::path::Path::new("/bin/echo"), &tool);
    let ls = Command::with_path("ls", &tool).unwrap();
    assert_eq!(ls.program(), tool);
    assert_eq!(ls.name(), "ls");
    assert_eq!(ls.call(["from", "path"]).unwrap(), b"from path\n");
    // A directory, or a PATH-like list, is still searched.
    assert_eq!(Command::with_path("my-ls", &dir).unwrap().program(), tool);
    // A path that does not exist is an error, never a fall-back to PATH.
    let missing = dir.join("nothing-here");
    assert!(matches!(
        Command::with_path("ls", &missing),
        Err(CommandError::InvalidSearchPath { ref path, problem: SearchPathProblem::Missing }) if *path == missing
    ));
    // An absolute program with a path: the path would be ignored, so it is refused.
    assert!(matches!(
        Command::with_path("/usr/bin/ls", "/opt"),
        Err(CommandError::InvalidSearchPath {
            problem: SearchPathProblem::AbsoluteProgram,
            ..
        })
    ));
    for (path, problem) in [
        ("", SearchPathProblem::Empty),
        ("/usr/bin::/bin", SearchPathProblem::EmptyEntry),
        ("/usr/bin:", SearchPathProblem::EmptyEntry),
        ("bin", SearchPathProblem::Relative),
    ] {
        match Command::with_path("ls", path) {
            Err(CommandError::InvalidSearchPath { problem: found, .. }) => {
                assert_eq!(found, problem, "{path:?}")
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    let message = Command::with_path("ls", "/usr/bin::/bin")
        .unwrap_err()
        .to_string();
    assert!(message.contains("empty entry"), "{message}");
    // A file that is not executable is said so.
    std::fs::write(dir.join("plain"), "text").unwrap();
    assert!(matches!(
        Command::with_path("plain", dir.join("plain")),
        Err(CommandError::NotExecutable { .. })
    ));
}

#[test]
fn not_found_lists_each_directory_once() {
    let error = Command::with_path("no-such-tool-xyz", "/usr/bin:/bin:/usr/bin").unwrap_err();
    assert_eq!(
        error.to_string(),
        "program `no-such-tool-xyz` not found; searched /usr/bin, /bin; install it, or name \
         it by its full path or with `Command::with_path`"
    );
}

/// Every variant the crate can return, built the ways a user meets them (or by hand).
fn one_of_each() -> Vec<CommandError> {
    let io = || std::io::Error::from_raw_os_error(libc::EACCES);
    vec![
        Command::new("ls -la").unwrap_err(),
        Command::with_path("ls", "bin").unwrap_err(),
        Command::new("no-such-tool-xyz").unwrap_err(),
        Command::new("/etc/passwd").unwrap_err(),
        Command::new("id").unwrap().user("-r").unwrap_err(),
        Command::new("id")
            .unwrap()
            .user("no-such-user-xyz")
            .unwrap_err(),
        CommandError::UserLookup {
            user: "u".into(),
            error: io(),
        },
        CommandError::SudoMissing {
            searched: vec!["/bin".into()],
        },
        CommandError::Sudo {
            user: "u".into(),
            program: "/usr/bin/id".into(),
            refusal: SudoRefusal::PasswordRequired,
            message: "sudo: a password is required\n".into(),
        },
        CommandError::UserCannotAccess {
            user: "u".into(),
            what: Access::Program,
            path: "/root/x".into(),
        },
        Command::new("echo").unwrap().call(["a\0b"]).unwrap_err(),
        Command::new("pwd")
            .unwrap()
            .call_with(NO_ARGS, &CallOptions::new().cwd("/no/such"))
            .unwrap_err(),
        CommandError::StderrFile {
            path: "/x".into(),
            error: io(),
        },
        sh().call(["-c", "exit 3"]).unwrap_err(),
        sh().call(["-c", "kill -TERM $$"]).unwrap_err(),
        sh().call_with(
            ["-c", "sleep 7204.3"],
            &CallOptions::new().timeout(Duration::from_millis(50)),
        )
        .unwrap_err(),
        sh().with_args(["-c", "exit 3"])
            .pipe(sh().with_args(["-c", "cat"]))
            .call(&CallOptions::new())
            .unwrap_err(),
        sh().call_with(
            ["-c", "echo abc; echo oops >&2"],
            &CallOptions::new().max_output(2),
        )
        .unwrap_err(),
        CommandError::NotEnded {
            user: "deluxe-sys".into(),
            pids: vec![7, 8],
            error: Box::new(CommandError::Timeout {
                program: "/bin/sh".into(),
                timeout: Duration::from_millis(50),
                stdout: Vec::new(),
                stderr: b"slow\n".to_vec(),
            }),
        },
        sh().read(["-c", "printf 'a\\377'"]).unwrap_err(),
        CommandError::Io {
            program: "/bin/x".into(),
            error: io(),
        },
    ]
}

#[test]
fn every_error_prints_its_cause_once_on_one_line() {
    for error in one_of_each() {
        let mut messages = vec![error.to_string()];
        let mut source = error.source();
        while let Some(cause) = source {
            messages.push(cause.to_string());
            source = cause.source();
        }
        let first = &messages[0];
        assert!(!first.contains('\n'), "{first:?}");
        for cause in &messages[1..] {
            assert!(
                !first.contains(cause.as_str()),
                "{error:?}: {cause:?} printed twice"
            );
        }
        // The OS error of the I/O variants is in the message, not in a source.
        if matches!(
            error,
            CommandError::Io { .. } | CommandError::WorkingDirectory { .. }
        ) {
            assert!(error.source().is_none());
            assert!(
                first.contains("denied") || first.contains("No such file"),
                "{first}"
            );
        }
    }
}

#[test]
fn control_characters_in_names_and_stderr_are_escaped() {
    let error = Command::new("evil\x1b[31m").unwrap_err();
    let text = error.to_string();
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("\\u{1b}[31m"), "{text:?}");
    let error = sh()
        .call(["-c", "printf 'red \\033[31m\\n' >&2; exit 1"])
        .unwrap_err();
    assert!(!error.to_string().contains('\x1b'), "{error}");
    assert_eq!(
        error.stderr(),
        Some(&b"red \x1b[31m\n"[..]),
        "the data itself is kept as written"
    );
    let error = Command::new("id").unwrap().user("a\x1bb").unwrap_err();
    assert!(matches!(
        error,
        CommandError::InvalidUser {
            problem: UserNameProblem::Whitespace,
            ..
        } | CommandError::UnknownUser { .. }
    ));
    assert!(!error.to_string().contains('\x1b'));
    assert!(matches!(
        Command::new("ls\0"),
        Err(CommandError::InvalidProgram {
            problem: ProgramProblem::Nul,
            ..
        })
    ));
}

#[cfg(feature = "tokio")]
#[test]
fn spawn_async_is_a_stream_of_lines() {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// `StreamExt::next` without a dependency for it.
    async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
        std::future::poll_fn(|cx: &mut Context<'_>| -> Poll<Option<S::Item>> {
            Pin::new(&mut *stream).poll_next(cx)
        })
        .await
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempdir("async-stream");
    let fifo = dir.join("go");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    runtime.block_on(async {
        let script = format!(
            "echo first; read go < {0}; echo \"then $go\"; exit 6",
            fifo.display()
        );
        let options = CallOptions::new().success_codes([6]).timeout(HANG);
        let mut running = sh().spawn_async(["-c", &script], &options).unwrap();
        assert_eq!(next(&mut running).await.unwrap().unwrap(), "first");
        std::fs::write(&fifo, "more\n").unwrap();
        assert_eq!(running.next_line().await.unwrap().unwrap(), "then more");
        assert!(next(&mut running).await.is_none());
        assert_eq!(running.wait().await.unwrap().code, 6);

        // Dropping the handle kills the program and everything it started.
        let mut running = sh()
            .spawn_async(["-c", "sleep 7204.4 & echo $!; wait"], &CallOptions::new())
            .unwrap();
        let sleep: i32 = running.next_line().await.unwrap().unwrap().parse().unwrap();
        let shell = running.id() as i32;
        drop(running);
        // The termination happens on the call's thread, after the drop returns.
        assert!(crate::common::wait_gone(shell, HANG));
        assert!(crate::common::wait_gone(sleep, HANG));
    });
}

#[cfg(feature = "tokio")]
#[test]
fn async_pipelines_and_output() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let seq = Command::new("seq").unwrap();
        let wc = Command::new("wc").unwrap();
        let counted = seq
            .with_args(["1000"])
            .pipe(wc.with_args(["-l"]))
            .call_async(&CallOptions::new())
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&counted).trim(), "1000");
        let output = sh()
            .output_async(
                ["-c", "echo o; echo e >&2; exit 1"],
                &CallOptions::new().success_codes([1]),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                output.code,
                output.stdout.as_slice(),
                output.stderr.as_slice()
            ),
            (1, &b"o\n"[..], &b"e\n"[..])
        );
    });
}

#[test]
fn a_slow_reader_of_lines_gets_every_line_of_a_program_that_has_exited() {
    // `seq` writes its 600 kB at once and exits; the reader then dawdles past the linger.
    let mut running = Command::new("seq")
        .unwrap()
        .spawn(["100000"], &CallOptions::new())
        .unwrap();
    let mut count = 0;
    for line in running.lines() {
        count += 1;
        assert_eq!(line.unwrap(), count.to_string());
        // Pauses after the call has seen the exit (and started its linger) between reads.
        if [10_000, 20_000, 40_000].contains(&count) {
            std::thread::sleep(deluxe::command::LINGER * 2);
        }
    }
    assert_eq!(count, 100_000);
    assert!(running.wait().unwrap().stdout.is_empty());
}

#[test]
fn stderr_bytes_that_are_not_utf8_are_kept_as_written() {
    let sh = Command::new("sh").unwrap();
    let error = sh
        .call(["-c", "printf 'bad \\377\\376\\n' >&2; exit 3"])
        .unwrap_err();
    match &error {
        CommandError::Exit {
            code: 3, stderr, ..
        } => assert_eq!(stderr, b"bad \xff\xfe\n"),
        other => panic!("expected Exit, got {other:?}"),
    }
    assert_eq!(error.stderr(), Some(&b"bad \xff\xfe\n"[..]));
    // Only the message is lossy.
    assert!(
        error
            .to_string()
            .ends_with("exited with code 3: bad \u{fffd}\u{fffd}"),
        "{error}"
    );
    let output = sh
        .output(["-c", "printf '\\377\\376' >&2"], &CallOptions::new())
        .unwrap();
    assert_eq!(output.stderr, b"\xff\xfe");
    let killed = sh
        .call(["-c", "printf '\\377' >&2; kill -TERM $$"])
        .unwrap_err();
    assert!(
        matches!(&killed, CommandError::Signal { stderr, .. } if stderr == b"\xff"),
        "{killed:?}"
    );
}
