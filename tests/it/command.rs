//! `Command` against real programs: resolution, byte-exact arguments, typed failures, large
//! concurrent streams, options, and `sudo`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use deluxe::command::ArgumentProblem;
use deluxe::command::{CallOptions, Command, CommandError, NO_ARGS};
use deluxe::command::{ProgramProblem, UserNameProblem};

use crate::common::{TEST_USER, has_sudo_setup, scratch_dir};

fn sh(script: &str) -> Result<Vec<u8>, CommandError> {
    Command::new("sh")?.call(["-c", script])
}

#[test]
fn new_resolves_on_path_to_an_absolute_executable() {
    let ls = Command::new("ls").unwrap();
    assert!(ls.program().is_absolute(), "{:?}", ls.program());
    assert!(ls.program().ends_with("ls"));
    assert_eq!(ls.name(), "ls");
    assert_eq!(ls.run_as(), None);
}

#[test]
fn with_path_searches_only_the_given_directories_in_order() {
    let dir = scratch_dir("with-path");
    let first = dir.join("first");
    let second = dir.join("second");
    for d in [&first, &second] {
        std::fs::create_dir(d).unwrap();
        let tool = d.join("tool");
        crate::common::write_executable(
            &tool,
            format!("#!/bin/sh\necho {}\n", d.display()).as_bytes(),
            0o755,
        );
    }
    let list = format!("{}:{}", first.display(), second.display());
    let tool = Command::with_path("tool", &list).unwrap();
    assert_eq!(tool.program(), first.join("tool"));
    assert_eq!(
        tool.call(NO_ARGS).unwrap(),
        format!("{}\n", first.display()).into_bytes()
    );
    let only_second = Command::with_path("tool", &second).unwrap();
    assert_eq!(only_second.program(), second.join("tool"));
    // A non-executable file is passed over, not picked.
    chmod(&first.join("tool"), 0o644);
    assert_eq!(
        Command::with_path("tool", &list).unwrap().program(),
        second.join("tool")
    );
    assert!(matches!(
        Command::with_path("ls", &list),
        Err(CommandError::NotFound { .. })
    ));
}

#[test]
fn not_found_names_the_program_and_every_place_searched() {
    let error = Command::with_path("no-such-tool-xyz", "/usr/bin:/bin").unwrap_err();
    match &error {
        CommandError::NotFound {
            program, searched, ..
        } => {
            assert_eq!(program, "no-such-tool-xyz");
            assert_eq!(
                searched,
                &[PathBuf::from("/usr/bin"), PathBuf::from("/bin")]
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "program `no-such-tool-xyz` not found; searched /usr/bin, /bin; install it, or name \
         it by its full path or with `Command::with_path`"
    );

    let error = Command::new("no-such-tool-xyz").unwrap_err();
    let CommandError::NotFound { searched, .. } = error else {
        panic!("{error:?}")
    };
    let path = std::env::var_os("PATH").unwrap();
    let mut expected: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(&path).filter(|dir| dir.is_absolute()) {
        // Each directory once, in order.
        if !expected.contains(&dir) {
            expected.push(dir);
        }
    }
    assert_eq!(searched, expected);
}

#[test]
fn absolute_paths_are_checked_to_be_executable_files() {
    assert_eq!(
        Command::new("/bin/sh").unwrap().program(),
        Path::new("/bin/sh")
    );
    assert!(matches!(
        Command::new("/etc/passwd"),
        Err(CommandError::NotExecutable { path }) if path == Path::new("/etc/passwd")
    ));
    assert!(matches!(
        Command::new("/tmp"),
        Err(CommandError::NotExecutable { .. })
    ));
    assert!(matches!(
        Command::new("/no/such/program"),
        Err(CommandError::NotFound { searched, .. }) if searched == [PathBuf::from("/no/such/program")]
    ));
}

#[test]
fn names_that_can_name_no_program_are_refused_with_the_macros_rules() {
    let cases: [(&[u8], ProgramProblem); 6] = [
        (b"", ProgramProblem::Empty),
        (b"ls -la", ProgramProblem::Whitespace),
        (b"ls|wc", ProgramProblem::ShellSyntax(b'|')),
        (b"echo$HOME", ProgramProblem::ShellSyntax(b'$')),
        (b"bin/tool", ProgramProblem::RelativePath),
        (b"ls\0", ProgramProblem::Nul),
    ];
    for (name, expected) in cases {
        match Command::new(OsStr::from_bytes(name)) {
            Err(CommandError::InvalidProgram { problem, .. }) => assert_eq!(problem, expected),
            other => panic!("{name:?}: expected InvalidProgram, got {other:?}"),
        }
    }
    let message = Command::new("ls -la").unwrap_err().to_string();
    assert_eq!(
        message,
        "program name \"ls -la\" contains whitespace or an invisible character; give the \
         program alone and pass its arguments to `call()`"
    );
    assert!(matches!(
        Command::with_path("ls", "bin:/usr/bin"),
        Err(CommandError::InvalidSearchPath { path, .. }) if path == Path::new("bin")
    ));
}

#[test]
fn unicode_whitespace_and_invisible_characters_are_refused_in_names() {
    for blank in [
        '\u{a0}', '\u{2003}', '\u{3000}', '\u{200b}', '\u{2060}', '\u{feff}',
    ] {
        let name = format!("ls{blank}-la");
        match Command::new(&name) {
            Err(CommandError::InvalidProgram { problem, .. }) => {
                assert_eq!(problem, ProgramProblem::Whitespace, "{name:?}");
            }
            other => panic!("{name:?}: expected InvalidProgram, got {other:?}"),
        }
        let user = format!("root{blank}");
        assert!(
            matches!(
                Command::new("id").unwrap().user(user.clone()),
                Err(CommandError::InvalidUser {
                    problem: UserNameProblem::Whitespace,
                    ..
                })
            ),
            "{user:?}"
        );
    }
    assert_eq!(
        Command::new("ls\u{a0}-la").unwrap_err().to_string(),
        "program name \"ls\u{a0}-la\" contains whitespace or an invisible character; give the \
         program alone and pass its arguments to `call()`"
    );
    // Letters of other scripts are names like any other.
    assert!(matches!(
        Command::new("outil-é"),
        Err(CommandError::NotFound { .. })
    ));
}

#[test]
fn relative_path_entries_are_named_as_skipped_not_as_an_empty_path() {
    let probe = |path: &str, name: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
            .args(["new", name])
            .env("PATH", path)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        )
    };
    let (out, err) = probe("bin:.", "no-such-tool-xyz");
    assert!(out.starts_with("error NotFound"), "{out}");
    assert_eq!(
        err,
        "program `no-such-tool-xyz` not found; searched nowhere; skipped the relative entries \
         of PATH \"bin\", \".\" (a command must not depend on the working directory of whoever \
         runs it); install it, or name it by its full path or with `Command::with_path`"
    );
    let (_, err) = probe("/usr/bin:tools", "no-such-tool-xyz");
    assert!(
        err.contains("searched /usr/bin; skipped the relative entries of PATH \"tools\""),
        "{err}"
    );
    // A program found in an absolute entry is found, whatever the relative ones.
    let (out, _) = probe("bin:/usr/bin:.", "env");
    assert_eq!(out, "ok /usr/bin/env\n");
}

#[test]
fn arguments_reach_the_program_byte_for_byte() {
    let args: Vec<&OsStr> = [
        &b"$HOME"[..],
        b"; rm -rf /",
        b"`id`",
        b"*",
        b"two words",
        b"'quoted' \"double\"",
        b"\\n",
        b"",
        b"\xff\xfe not utf-8",
        b"-n",
        b"\n",
    ]
    .into_iter()
    .map(OsStr::from_bytes)
    .collect();
    let printf = Command::new("printf").unwrap();
    let mut call = vec![OsStr::new("%s\\0")];
    call.extend(&args);
    let output = printf.call(&call).unwrap();
    let expected: Vec<u8> = args
        .iter()
        .flat_map(|arg| arg.as_bytes().iter().copied().chain([0]))
        .collect();
    assert_eq!(output, expected);
}

#[test]
fn a_non_zero_exit_is_typed_with_code_and_stderr() {
    let error = sh("echo out; echo 'something broke' >&2; exit 3").unwrap_err();
    match &error {
        CommandError::Exit {
            program,
            code,
            stderr,
            ..
        } => {
            assert!(program.ends_with("sh"));
            assert_eq!(*code, 3);
            assert_eq!(stderr, b"something broke\n");
        }
        other => panic!("expected Exit, got {other:?}"),
    }
    assert_eq!(error.stderr(), Some(&b"something broke\n"[..]));
    assert!(
        error
            .to_string()
            .ends_with("exited with code 3: something broke")
    );

    let error = Command::new("false").unwrap().call(NO_ARGS).unwrap_err();
    assert!(matches!(error, CommandError::Exit { code: 1, .. }));
}

#[test]
fn a_signal_death_is_typed_with_the_signal_name() {
    let error = sh("echo dying >&2; kill -KILL $$").unwrap_err();
    match &error {
        CommandError::Signal {
            signal,
            signal_name,
            core_dumped,
            stderr,
            ..
        } => {
            assert_eq!(*signal, libc::SIGKILL);
            assert_eq!(signal_name, "SIGKILL");
            assert!(!core_dumped);
            assert_eq!(stderr, b"dying\n");
        }
        other => panic!("expected Signal, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("was killed by SIGKILL (signal 9): dying"),
        "{error}"
    );
    let error = sh("kill -TERM $$").unwrap_err();
    assert!(
        matches!(error, CommandError::Signal { signal: 15, ref signal_name, .. } if signal_name == "SIGTERM")
    );
}

#[test]
fn stderr_kept_in_errors_is_the_last_64_kib() {
    let error = sh("head -c 300000 /dev/zero | tr '\\0' x >&2; echo END >&2; exit 1").unwrap_err();
    let stderr = error.stderr().unwrap();
    assert_eq!(stderr.len(), deluxe::command::STDERR_CAP);
    assert!(stderr.ends_with(b"xxxEND\n"));
    assert!(error.to_string().len() < 500, "Display stays short");
}

#[test]
fn fifty_megabytes_in_and_on_both_streams_at_once_do_not_deadlock() {
    const SIZE: usize = 50 * 1024 * 1024;
    let input: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    // tee copies stdin to stdout and to stderr as it reads: the three pipes are busy at once.
    let tee = Command::new("sh").unwrap();
    let options = CallOptions::new().input(input.clone());
    let output = tee
        .call_with(["-c", "tee /dev/stderr; exit 7"], &options)
        .unwrap_err();
    let CommandError::Exit {
        code: 7, stderr, ..
    } = &output
    else {
        panic!("{output:?}")
    };
    // Binary bytes are replaced by U+FFFD, cut on a character boundary within the cap.
    let cap = deluxe::command::STDERR_CAP;
    assert!((cap - 3..=cap).contains(&stderr.len()), "{}", stderr.len());

    let output = tee.call_with(["-c", "tee /dev/stderr"], &options).unwrap();
    assert_eq!(output.len(), SIZE);
    assert!(output == input);

    // 50 MB on stdout and 50 MB on stderr, written at the same time, no input.
    let both = sh("head -c 52428800 /dev/zero & head -c 52428800 /dev/zero >&2; wait").unwrap();
    assert_eq!(both.len(), SIZE);
}

#[test]
fn a_program_that_ignores_its_input_is_not_an_error() {
    let options = CallOptions::new().input(vec![b'x'; 4 * 1024 * 1024]);
    let output = Command::new("echo")
        .unwrap()
        .call_with(["done"], &options)
        .unwrap();
    assert_eq!(output, b"done\n");
}

#[test]
fn stdin_is_empty_without_input() {
    assert_eq!(Command::new("cat").unwrap().call(NO_ARGS).unwrap(), b"");
}

#[test]
fn capture_false_lets_stdout_through_and_returns_nothing() {
    // The probe runs `echo through` with capture off, then says how many bytes it got back:
    // the program's output must reach the probe's own stdout, before the probe's report.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .arg("passthrough")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, b"through\nreturned 0 bytes\n");
}

#[test]
fn cwd_and_env_apply_and_env_replaces_the_environment() {
    let options = CallOptions::new().cwd("/tmp").env([("ONLY", "this one")]);
    assert_eq!(
        Command::new("pwd")
            .unwrap()
            .call_with(NO_ARGS, &options)
            .unwrap(),
        b"/tmp\n"
    );
    assert_eq!(
        Command::new("env")
            .unwrap()
            .call_with(NO_ARGS, &options)
            .unwrap(),
        b"ONLY=this one\n"
    );
    let empty = CallOptions::new().env(Vec::<(String, String)>::new());
    assert_eq!(
        Command::new("env")
            .unwrap()
            .call_with(NO_ARGS, &empty)
            .unwrap(),
        b""
    );
}

#[test]
fn a_missing_working_directory_is_not_command_not_found() {
    let options = CallOptions::new().cwd("/no/such/dir");
    match Command::new("pwd").unwrap().call_with(NO_ARGS, &options) {
        Err(CommandError::WorkingDirectory { path, error }) => {
            assert_eq!(path, Path::new("/no/such/dir"));
            assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected WorkingDirectory, got {other:?}"),
    }
    let options = CallOptions::new().cwd("/etc/passwd");
    assert!(matches!(
        Command::new("pwd").unwrap().call_with(NO_ARGS, &options),
        Err(CommandError::WorkingDirectory { .. })
    ));
}

#[test]
fn unpassable_arguments_and_environment_are_typed_errors() {
    let echo = Command::new("echo").unwrap();
    assert!(matches!(
        echo.call([OsStr::from_bytes(b"a\0b")]),
        Err(CommandError::InvalidArgument { .. })
    ));
    for bad in [("A=B", "1"), ("", "1"), ("K", "v\0")] {
        let options = CallOptions::new().env([bad]);
        assert!(
            matches!(
                echo.call_with(NO_ARGS, &options),
                Err(CommandError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn user_names_are_validated_before_reaching_sudo() {
    let id = Command::new("id").unwrap();
    let cases = [
        ("", UserNameProblem::Empty),
        ("-r", UserNameProblem::LeadingDash),
        ("--help", UserNameProblem::LeadingDash),
        ("#0", UserNameProblem::LeadingHash),
        ("a b", UserNameProblem::Whitespace),
        ("a:b", UserNameProblem::Colon),
        ("a/b", UserNameProblem::Slash),
        ("a\0b", UserNameProblem::Nul),
    ];
    for (name, expected) in cases {
        match id.clone().user(name) {
            Err(CommandError::InvalidUser { user, problem }) => {
                assert_eq!(user, name);
                assert_eq!(problem, expected);
            }
            other => panic!("{name:?}: expected InvalidUser, got {other:?}"),
        }
    }
    assert!(matches!(
        id.user("no-such-user-xyz"),
        Err(CommandError::UnknownUser { user }) if user == "no-such-user-xyz"
    ));
}

#[test]
fn a_missing_sudo_is_its_own_error() {
    // Another user than the one running the probe: sudo is needed, and missing.
    let other = if nix::unistd::geteuid().is_root() {
        TEST_USER
    } else {
        "root"
    };
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .args(["user", other])
        .env("PATH", "/nonexistent-a:/nonexistent-b")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("error SudoMissing"), "{stdout}");
    assert!(stdout.contains("/nonexistent-a") && stdout.contains("/nonexistent-b"));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "running a command as another user needs `sudo`, which is not installed; searched \
         /nonexistent-a, /nonexistent-b"
    );
}

#[test]
fn commands_run_as_another_user_through_sudo() {
    if !has_sudo_setup("commands_run_as_another_user_through_sudo") {
        return;
    }
    let id = Command::new("id").unwrap().user(TEST_USER).unwrap();
    assert_eq!(id.run_as(), Some(TEST_USER));
    assert_eq!(
        id.call(["-un"]).unwrap(),
        format!("{TEST_USER}\n").into_bytes()
    );
    // Real, effective ids are the user's, not root's.
    let uid = nix::unistd::User::from_name(TEST_USER)
        .unwrap()
        .unwrap()
        .uid;
    assert_eq!(id.call(["-ru"]).unwrap(), format!("{uid}\n").into_bytes());

    // Arguments still arrive byte for byte through sudo.
    let printf = Command::new("printf").unwrap().user(TEST_USER).unwrap();
    assert_eq!(
        printf.call(["%s|", "-u", "root", "$(id)", "a b"]).unwrap(),
        b"-u|root|$(id)|a b|"
    );

    // Input, working directory and environment apply to the program run as the user.
    let options = CallOptions::new()
        .input("from stdin")
        .cwd("/tmp")
        .set_env("GREETING", "hello there");
    let sh = Command::new("sh").unwrap().user(TEST_USER).unwrap();
    let output = sh
        .call_with(["-c", "cat; echo; pwd; id -un"], &options)
        .unwrap();
    assert_eq!(
        String::from_utf8(output).unwrap(),
        format!("from stdin\n/tmp\n{TEST_USER}\n")
    );
    // Variables set reach the program through sudo's own command line (sudo runs `env`
    // itself here, not `env -i ... PROGRAM`); an exact environment cannot be promised.
    let env = Command::new("env").unwrap().user(TEST_USER).unwrap();
    let listed = String::from_utf8(env.call_with(NO_ARGS, &options).unwrap()).unwrap();
    assert!(
        listed.lines().any(|line| line == "GREETING=hello there"),
        "{listed}"
    );
    assert!(
        listed
            .lines()
            .any(|line| line == format!("USER={TEST_USER}")),
        "{listed}"
    );
    assert!(matches!(
        env.call_with(NO_ARGS, &CallOptions::new().env([("ONLY", "this")])),
        Err(CommandError::InvalidArgument {
            problem: ArgumentProblem::ExactEnvironmentAsUser,
            ..
        })
    ));

    // Failures keep their type through sudo.
    let error = sh.call(["-c", "echo nope >&2; exit 5"]).unwrap_err();
    assert!(matches!(error, CommandError::Exit { code: 5, ref stderr, .. } if stderr == b"nope\n"));
    let error = sh.call(["-c", "kill -KILL $$"]).unwrap_err();
    assert!(
        matches!(error, CommandError::Signal { signal: 9, .. }),
        "{error:?}"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn call_async_has_the_same_behaviour_on_tokio() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cat = Command::new("sh").unwrap();
        let input: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
        let options = CallOptions::new().input(input.clone());
        let output = cat
            .call_async(["-c", "tee /dev/stderr"], &options)
            .await
            .unwrap();
        assert!(output == input);

        let error = cat
            .call_async(["-c", "echo bad >&2; exit 4"], &CallOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::Exit { code: 4, ref stderr, .. } if stderr == b"bad\n")
        );
        let error = cat
            .call_async(["-c", "kill -TERM $$"], &CallOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(error, CommandError::Signal { signal: 15, .. }));

        let options = CallOptions::new()
            .cwd("/tmp")
            .env([("X", "1")])
            .capture(true);
        let output = cat.call_async(["-c", "pwd"], &options).await.unwrap();
        assert_eq!(output, b"/tmp\n");
        let env = Command::new("env").unwrap();
        assert_eq!(env.call_async(NO_ARGS, &options).await.unwrap(), b"X=1\n");
        let options = CallOptions::new().capture(false);
        assert!(
            cat.call_async(["-c", "true"], &options)
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[cfg(feature = "tokio")]
#[test]
fn dropping_call_async_kills_and_reaps_the_child() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = scratch_dir("async-drop");
    let pidfile = dir.join("pid");
    runtime.block_on(async {
        let sh = Command::new("sh").unwrap();
        let script = format!(
            "echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 1000",
            pidfile.display()
        );
        let options = CallOptions::new();
        let call = sh.call_async(["-c", &script], &options);
        tokio::pin!(call);
        // Waited for off the runtime's thread, so that the call keeps being driven meanwhile.
        let started = tokio::task::spawn_blocking({
            let pidfile = pidfile.clone();
            move || {
                crate::common::eventually("the shell's pid in its file", || {
                    pidfile.exists().then_some(()).ok_or("no file yet")
                });
            }
        });
        tokio::select! {
            result = &mut call => panic!("sleep 1000 returned: {result:?}"),
            started = started => started.unwrap(),
        }
        // `call` is dropped here, with the child still running.
    });
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The child was killed when the future was dropped (`sleep 1000` never returns by itself).
    assert!(
        crate::common::wait_gone(pid, std::time::Duration::from_secs(30)),
        "child {pid} still alive after the call was dropped"
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_returns_text_with_only_trailing_newlines_trimmed() {
    let sh = Command::new("sh").unwrap();
    assert_eq!(
        sh.read(["-c", "printf '  two words \\n\\tkept\\t\\n\\n\\r\\n'"])
            .unwrap(),
        "  two words \n\tkept\t"
    );
    assert_eq!(sh.read(["-c", "true"]).unwrap(), "");
    // Not UTF-8: a typed error carrying the bytes.
    match sh.read(["-c", "printf 'ok\\377\\n'"]) {
        Err(CommandError::InvalidUtf8 {
            stdout,
            valid_up_to,
            ..
        }) => assert_eq!((stdout.as_slice(), valid_up_to), (&b"ok\xff\n"[..], 2)),
        other => panic!("expected InvalidUtf8, got {other:?}"),
    }
    let error = sh.read(["-c", "printf '\\377'"]).unwrap_err();
    assert_eq!(error.stdout(), Some(&b"\xff"[..]));
    assert!(error.to_string().contains("not UTF-8"), "{error}");
    // A failure is the call's failure, as with `call`.
    assert!(matches!(
        sh.read(["-c", "echo partial; exit 4"]),
        Err(CommandError::Exit { code: 4, .. })
    ));
}

#[test]
fn a_command_with_leading_arguments_is_a_base_called_many_times() {
    // `sh -c SCRIPT NAME` as the base, as `git -C repo` would be.
    let base = Command::new("sh")
        .unwrap()
        .args(["-c", "echo \"$0:$#:$*\""])
        .args(["base"]);
    assert_eq!(base.read(["a"]).unwrap(), "base:1:a");
    assert_eq!(base.read(["b c", "d"]).unwrap(), "base:2:b c d");
    assert_eq!(base.read(NO_ARGS).unwrap(), "base:0:");
    // Every form of call passes them first: output, spawn, pipelines.
    assert_eq!(
        base.output(["x"], &CallOptions::new()).unwrap().stdout,
        b"base:1:x\n"
    );
    let mut running = base.spawn(["y"], &CallOptions::new()).unwrap();
    assert_eq!(running.lines().next().unwrap().unwrap(), "base:1:y");
    running.wait().unwrap();
    let tr = Command::new("tr").unwrap().args(["a-z", "A-Z"]);
    let piped = base.with_args(["z"]).pipe(tr.with_args(NO_ARGS));
    assert_eq!(piped.call(&CallOptions::new()).unwrap(), b"BASE:1:Z\n");
    // Checked as the call's own arguments are.
    let broken = Command::new("echo").unwrap().args(["a\0b"]);
    assert!(matches!(
        broken.call(NO_ARGS),
        Err(CommandError::InvalidArgument {
            problem: ArgumentProblem::Nul,
            ..
        })
    ));
}

#[test]
fn arguments_of_mixed_string_types_go_in_one_call() {
    use std::ffi::OsString;
    let echo = Command::new("echo").unwrap();
    let branch = String::from("main");
    // `&str` and `&String` in one array.
    assert_eq!(echo.call(["log", &branch]).unwrap(), b"log main\n");
    let path = Path::new("/srv/data");
    let owned_path = PathBuf::from("/tmp/x");
    let os = OsString::from("os");
    let text = echo
        .read(deluxe::args![
            "log",
            &branch,
            branch.clone(),
            path,
            owned_path,
            os.as_os_str(),
            os,
        ])
        .unwrap();
    assert_eq!(text, "log main main /srv/data /tmp/x os os");
    // Byte for byte, not through a shell.
    assert_eq!(
        echo.read(deluxe::args!["$HOME", String::from("a;b")])
            .unwrap(),
        "$HOME a;b"
    );
}
