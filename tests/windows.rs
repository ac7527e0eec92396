//! `Command` on Windows, against real Windows programs: `cmd.exe`, `hostname.exe`, `.cmd`
//! scripts written here, and `deluxe-echo` (tests/bin/echo.rs), which reports the arguments,
//! working directory, environment and input it was given. CI runs these under Wine
//! (`.ci/run`); they run as they are on Windows.
#![cfg(windows)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use deluxe::command::ArgumentProblem;
use deluxe::command::ProgramProblem;
use deluxe::command::{CallOptions, Command, CommandError, NO_ARGS};

/// `deluxe-echo.exe`, built next to this test's directory (`target/<triple>/debug`).
fn echo() -> Command {
    let test = std::env::current_exe().expect("the test's own path");
    let debug = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<triple>/debug/deps/TEST.exe");
    Command::new(debug.join("deluxe-echo.exe")).expect("deluxe-echo.exe is built with the tests")
}

/// The lines `deluxe-echo args ARGS..` printed: one token per argument.
fn echoed_args<S: AsRef<OsStr>>(
    command: &Command,
    args: &[S],
) -> Result<Vec<String>, CommandError> {
    let mut all: Vec<OsString> = vec!["args".into()];
    all.extend(args.iter().map(|arg| arg.as_ref().to_owned()));
    let output = command.call(&all)?;
    Ok(lines(&output))
}

/// The tokens `deluxe-echo` prints for `args`: the hex of their bytes.
fn tokens<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter().map(|arg| token(arg.as_ref())).collect()
}

fn token(text: &OsStr) -> String {
    text.as_encoded_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn lines(output: &[u8]) -> Vec<String> {
    String::from_utf8(output.to_vec())
        .expect("UTF-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A new empty directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deluxe-windows-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn system32() -> PathBuf {
    let root = std::env::var_os("SystemRoot").expect("SystemRoot is set on Windows");
    PathBuf::from(root).join("System32")
}

fn same_path(a: &Path, b: &Path) -> bool {
    a.as_os_str().eq_ignore_ascii_case(b.as_os_str())
}

#[test]
fn cmd_resolves_through_pathext_to_system32() {
    let cmd = Command::new("cmd").expect("cmd is on PATH");
    assert!(
        same_path(cmd.program(), &system32().join("cmd.exe")),
        "{}",
        cmd.program().display()
    );
    assert_eq!(cmd.name(), "cmd");
    let macro_cmd = deluxe::command!("cmd").expect("command! works on Windows");
    assert_eq!(macro_cmd.program(), cmd.program());
}

#[test]
fn cmd_runs_and_its_output_comes_back() {
    let cmd = Command::new("cmd").unwrap();
    assert_eq!(cmd.call(["/C", "echo", "hello"]).unwrap(), b"hello\r\n");
}

#[test]
fn hostname_prints_the_machine_name() {
    let hostname = Command::new("hostname").unwrap();
    assert!(same_path(
        hostname.program(),
        &system32().join("hostname.exe")
    ));
    let output = String::from_utf8(hostname.call(NO_ARGS).unwrap()).unwrap();
    let name = output.trim();
    assert!(!name.is_empty() && !name.contains('\n'), "{output:?}");
    let computer = std::env::var("COMPUTERNAME").expect("COMPUTERNAME is set on Windows");
    // COMPUTERNAME is the NetBIOS name: upper case, at most 15 characters.
    assert!(
        name.to_ascii_uppercase()
            .starts_with(&computer.to_ascii_uppercase()),
        "{name} vs {computer}"
    );
}

#[test]
fn an_absolute_name_without_extension_finds_the_exe() {
    let cmd = Command::new(system32().join("cmd")).unwrap();
    assert!(same_path(cmd.program(), &system32().join("cmd.exe")));
    let error = Command::new(system32().join("no-such-program")).unwrap_err();
    assert!(matches!(error, CommandError::NotFound { .. }), "{error:?}");
}

#[test]
fn pathext_finds_scripts_and_programs_in_order() {
    let dir = scratch("pathext");
    std::fs::write(dir.join("script.cmd"), "@echo from script\r\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a program").unwrap();
    std::fs::copy(echo().program(), dir.join("tool.exe")).unwrap();
    std::fs::write(
        dir.join("tool.cmd"),
        "@echo the .cmd, which PATHEXT lists after .exe\r\n",
    )
    .unwrap();

    let script = Command::with_path("script", &dir).unwrap();
    assert!(same_path(script.program(), &dir.join("script.cmd")));
    assert_eq!(script.call(NO_ARGS).unwrap(), b"from script\r\n");
    let explicit = Command::with_path("script.cmd", &dir).unwrap();
    assert_eq!(explicit.program(), script.program());

    let tool = Command::with_path("tool", &dir).unwrap();
    assert!(same_path(tool.program(), &dir.join("tool.exe")));
    assert_eq!(tool.call(["args", "x"]).unwrap(), b"78\n");

    match Command::with_path("notes", &dir) {
        Err(CommandError::NotFound {
            program,
            searched,
            denied,
            ..
        }) => {
            assert_eq!(program, "notes");
            assert_eq!(searched, vec![dir.clone()]);
            assert!(denied.is_empty(), "{denied:?}");
        }
        other => panic!("{other:?}"),
    }
    match Command::new(dir.join("notes.txt")) {
        Err(CommandError::NotExecutable { path }) => assert_eq!(path, dir.join("notes.txt")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_current_directory_is_never_searched() {
    let dir = scratch("cwd-search");
    std::fs::write(dir.join("lonely.cmd"), "@echo should never run\r\n").unwrap();
    let options = CallOptions::new().cwd(&dir);
    let output = echo().call_with(["resolve", "lonely"], &options).unwrap();
    let text = String::from_utf8(output).unwrap();
    assert!(
        text.starts_with("error program `lonely` not found; searched "),
        "{text}"
    );
    assert!(!text.contains(&*dir.to_string_lossy()), "{text}");
    let found = echo().call_with(["resolve", "cmd"], &options).unwrap();
    assert!(String::from_utf8(found).unwrap().starts_with("found "));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_and_drive_relative_names_are_refused() {
    for name in [r"bin\tool", r"\tool", "C:tool", "bin/tool", r"..\tool"] {
        match Command::new(name) {
            Err(CommandError::InvalidProgram { problem, .. }) => {
                assert_eq!(problem, ProgramProblem::RelativePath, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match Command::new("cmd /C echo") {
        Err(CommandError::InvalidProgram { problem, .. }) => {
            assert_eq!(problem, ProgramProblem::Whitespace);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn absolute_paths_may_hold_spaces() {
    let dir = scratch("spaces").join("Program Files");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(echo().program(), dir.join("spaced tool.exe")).unwrap();
    let tool = Command::new(dir.join("spaced tool.exe")).unwrap();
    assert_eq!(tool.call(["args", "ok"]).unwrap(), b"6f6b\n");
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

/// Arguments that a naive `"` + arg + `"` command line would break.
const HARD_ARGUMENTS: &[&str] = &[
    "",
    "plain",
    "with space",
    "  leading and trailing  ",
    "\"quoted\"",
    "a\"b",
    "\"",
    "\"\"",
    r"back\slash",
    r"trailing\",
    r"trailing\\",
    r#"\""#,
    r#"a\\"b"#,
    r"\\server\share\",
    "tab\there",
    "new\nline",
    "ünïcødé ✓ 日本語 🦀",
    "%PATH%",
    "!x!",
    "a&b|c<d>e^f",
    "(parens)",
    "'single'",
    "-",
    "/C",
    "*?",
];

#[test]
fn arguments_reach_a_program_exactly() {
    let echo = echo();
    assert_eq!(
        echoed_args(&echo, HARD_ARGUMENTS).unwrap(),
        tokens(HARD_ARGUMENTS)
    );
    for argument in HARD_ARGUMENTS {
        assert_eq!(
            echoed_args(&echo, &[argument]).unwrap(),
            tokens(&[argument]),
            "{argument:?}"
        );
    }
}

#[test]
fn unpaired_surrogates_reach_a_program_exactly() {
    use std::os::windows::ffi::OsStringExt;
    let lone = OsString::from_wide(&[0x61, 0xD800, 0x62]);
    assert_eq!(echoed_args(&echo(), &[&lone]).unwrap(), tokens(&[&lone]));
}

#[test]
fn a_nul_byte_is_refused() {
    match echo().call(["args", "a\0b"]) {
        Err(CommandError::InvalidArgument { argument, .. }) => assert_eq!(argument, "a\0b"),
        other => panic!("{other:?}"),
    }
}

/// A `.cmd` script that hands its arguments (`%*`) to `deluxe-echo args`.
fn forwarding_script(dir: &Path) -> Command {
    let script = dir.join("forward.cmd");
    let body = format!("@\"{}\" args %*\r\n", echo().program().display());
    std::fs::write(&script, body).unwrap();
    Command::new(&script).unwrap()
}

/// What a batch file can receive: std quotes and escapes each argument for cmd.exe.
const BATCH_ARGUMENTS: &[&str] = &[
    "plain",
    "with space",
    "",
    "a&b",
    "a|b",
    "<in>",
    "^caret",
    "(parens)",
    r"back\slash",
    r"trailing\",
    "ünïcødé ✓",
    "quote\"inside",
    "!bang!",
];

#[test]
fn batch_file_arguments_follow_std_rules() {
    let dir = scratch("batch");
    let script = forwarding_script(&dir);
    assert_eq!(
        lines(&script.call(BATCH_ARGUMENTS).unwrap()),
        tokens(BATCH_ARGUMENTS)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether this runs under Wine, which sets `WINECONFIGDIR` in every process.
fn under_wine() -> bool {
    std::env::var_os("WINECONFIGDIR").is_some()
}

#[test]
fn percent_signs_reach_a_batch_file_on_windows() {
    let dir = scratch("batch-percent");
    let script = forwarding_script(&dir);
    let received = lines(&script.call(["%PATH%", "100%"]).unwrap());
    if under_wine() {
        // Wine 8's cmd.exe does not honour the `%%cd:~,%` escape std writes for `%`, so it
        // expands `%PATH%` and drops a trailing `%` (a Wine deviation; Windows keeps them). The
        // expansion stays inside the argument's quotes: it runs nothing.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            received,
            tokens(&[path.as_str(), "100"]),
            "Wine's cmd.exe changed: check std's escaping of `%` again"
        );
    } else {
        assert_eq!(received, tokens(&["%PATH%", "100%"]));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn batch_file_arguments_never_run_commands() {
    let dir = scratch("batbadbut");
    let script = forwarding_script(&dir);
    let marker = dir.join("pwned.txt");
    let attacks = [
        format!("\"&echo pwned>{}", marker.display()),
        format!("\" & echo pwned > \"{}", marker.display()),
        format!("%cd:~,%&echo pwned>{}", marker.display()),
        format!("\\\"&echo pwned>{}&rem ", marker.display()),
    ];
    for attack in &attacks {
        // Whatever the script receives, nothing the argument holds may run.
        let _ = script.call(["first", attack.as_str()]);
        assert!(!marker.exists(), "{attack:?} ran a command");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_line_break_for_a_batch_file_is_a_typed_error() {
    let dir = scratch("batch-newline");
    let script = forwarding_script(&dir);
    for argument in ["two\nlines", "carriage\rreturn"] {
        match script.call([argument]) {
            Err(CommandError::InvalidArgument {
                argument: given,
                problem,
            }) => {
                assert_eq!(given, argument);
                assert_eq!(problem, ArgumentProblem::LineBreakForBatchFile);
                assert!(problem.to_string().contains("batch file"), "{problem}");
            }
            other => panic!("{argument:?}: {other:?}"),
        }
    }
    // A program that is not a batch file takes line breaks.
    assert_eq!(
        echoed_args(&echo(), &["two\nlines"]).unwrap(),
        tokens(&["two\nlines"])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cwd_is_where_the_program_runs() {
    let dir = scratch("cwd");
    let options = CallOptions::new().cwd(&dir);
    let output = echo().call_with(["cwd"], &options).unwrap();
    let reported = lines(&output);
    assert_eq!(reported, tokens(&[&dir]));
    let cmd = Command::new("cmd").unwrap();
    let cd = cmd.call_with(["/C", "cd"], &options).unwrap();
    assert!(same_path(
        Path::new(String::from_utf8(cd).unwrap().trim_end()),
        &dir
    ));
    match echo().call_with(["cwd"], &CallOptions::new().cwd(dir.join("missing"))) {
        Err(CommandError::WorkingDirectory { path, .. }) => assert_eq!(path, dir.join("missing")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn env_replaces_the_whole_environment() {
    let options = CallOptions::new().env([("ONLY", "this"), ("UNICODE", "ünï ✓")]);
    let output = echo().call_with(["env"], &options).unwrap();
    // What the program sees, less what the system adds to every process: Wine adds
    // `SystemRoot`, `SystemDrive` and its own `WINE*` variables; Windows adds nothing.
    let added_by_the_system = |line: &String| {
        ["SystemRoot=", "SystemDrive=", "WINE"]
            .iter()
            .any(|prefix| line.starts_with(&token(OsStr::new(prefix))))
    };
    let seen: Vec<String> = lines(&output)
        .into_iter()
        .filter(|line| !added_by_the_system(line))
        .collect();
    assert_eq!(seen, tokens(&["ONLY=this", "UNICODE=ünï ✓"]));
    match echo().call_with(["env"], &CallOptions::new().env([("A=B", "x")])) {
        Err(CommandError::InvalidArgument { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn input_reaches_standard_input() {
    // More than any pipe buffer, while stdout is read back at the same time.
    let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let options = CallOptions::new().input(input.clone());
    let output = echo().call_with(["stdin"], &options).unwrap();
    assert!(
        output == input,
        "{} bytes back of {}",
        output.len(),
        input.len()
    );
    // cmd's `more` reads its input too.
    let cmd = Command::new("cmd").unwrap();
    let more = cmd
        .call_with(["/C", "more"], &CallOptions::new().input("one\r\ntwo\r\n"))
        .unwrap();
    assert!(String::from_utf8_lossy(&more).contains("two"));
}

#[test]
fn exit_codes_above_255_are_kept() {
    for code in [1, 255, 256, 300, 65_536, 1_000_000, -1] {
        match echo().call(["fail", "last words", &code.to_string()]) {
            Err(error @ CommandError::Exit { .. }) => {
                let CommandError::Exit {
                    code: got, stderr, ..
                } = &error
                else {
                    unreachable!()
                };
                assert_eq!(*got, code);
                assert_eq!(stderr.trim_ascii_end(), b"last words");
                assert!(
                    error
                        .to_string()
                        .ends_with(&format!("exited with code {code}: last words")),
                    "{error}"
                );
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    let cmd = Command::new("cmd").unwrap();
    match cmd.call(["/C", "exit", "300"]) {
        Err(CommandError::Exit { code, .. }) => assert_eq!(code, 300),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_access_violation_is_a_readable_crash() {
    match echo().call(["crash"]) {
        Err(error @ CommandError::Crashed { .. }) => {
            let CommandError::Crashed {
                status,
                status_name,
                ..
            } = &error
            else {
                unreachable!()
            };
            assert_eq!(*status, 0xC000_0005);
            assert_eq!(status_name, "STATUS_ACCESS_VIOLATION");
            let text = error.to_string();
            assert!(
                text.contains(
                    "crashed with STATUS_ACCESS_VIOLATION (0xC0000005: an invalid memory access)"
                ),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_ntstatus_exit_code_is_a_crash() {
    // Windows cannot tell an NTSTATUS a program exits with from the one it crashed with.
    match echo().call(["fail", "", &(0xC000_0409u32 as i32).to_string()]) {
        Err(CommandError::Crashed {
            status,
            status_name,
            ..
        }) => {
            assert_eq!(status, 0xC000_0409);
            assert_eq!(status_name, "STATUS_STACK_BUFFER_OVERRUN");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_user_is_refused_with_the_reason() {
    let error = Command::new("cmd")
        .unwrap()
        .user("Administrator")
        .unwrap_err();
    match &error {
        CommandError::UserUnsupported { user } => assert_eq!(user, "Administrator"),
        other => panic!("{other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("no passwordless way to switch user"),
        "{text}"
    );
}

#[test]
fn a_program_that_vanished_is_not_found() {
    let dir = scratch("vanish");
    std::fs::copy(echo().program(), dir.join("gone.exe")).unwrap();
    let gone = Command::with_path("gone", &dir).unwrap();
    std::fs::remove_file(dir.join("gone.exe")).unwrap();
    assert!(matches!(
        gone.call(NO_ARGS),
        Err(CommandError::NotFound { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn call_async_works_on_windows() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let echo = echo();
        let options = CallOptions::new().input("through tokio");
        assert_eq!(
            echo.call_async(["stdin"], &options).await.unwrap(),
            b"through tokio"
        );
        let args = ["args", "a b", "", "ü"];
        assert_eq!(
            lines(&echo.call_async(args, &CallOptions::new()).await.unwrap()),
            tokens(&args[1..])
        );
        match echo
            .call_async(["fail", "oops", "300"], &CallOptions::new())
            .await
        {
            Err(CommandError::Exit { code, stderr, .. }) => {
                assert_eq!(code, 300);
                assert_eq!(stderr.trim_ascii_end(), b"oops");
            }
            other => panic!("{other:?}"),
        }
    });
}

/// How long a test waits for an event that must come (a generous bound, never a delay).
const HANG: std::time::Duration = std::time::Duration::from_secs(60);

/// `cmd /C deluxe-echo.exe hold FILE`: a shell whose child writes its pid to `FILE`, prints
/// `ready` and runs until killed: a program with a process below it.
fn tree(dir: &Path) -> (Command, Vec<OsString>, PathBuf) {
    let pidfile = dir.join("held.pid");
    let args = vec![
        OsString::from("/C"),
        echo().program().as_os_str().to_owned(),
        "hold".into(),
        pidfile.as_os_str().to_owned(),
    ];
    (Command::new("cmd").unwrap(), args, pidfile)
}

/// Whether process `pid` has ended (or never was), waiting for it at most [`HANG`].
fn ends(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_SYNCHRONIZE, WaitForSingleObject,
    };
    // SAFETY: opening a process by id for SYNCHRONIZE only; checked for null.
    let handle = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
    if handle.is_null() {
        // No such process any more.
        return true;
    }
    // SAFETY: a valid process handle, waited on then closed once.
    let waited = unsafe { WaitForSingleObject(handle, HANG.as_millis() as u32) };
    // SAFETY: the handle was opened above and is closed once.
    unsafe { CloseHandle(handle) };
    waited == WAIT_OBJECT_0
}

/// Reads lines until `ready`; the pid the held child wrote.
fn held_pid(running: &mut deluxe::command::Running, pidfile: &Path) -> u32 {
    let first = running.lines().next().expect("a line").expect("no error");
    assert_eq!(first, "ready");
    std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn spawn_streams_lines_and_waits() {
    let mut running = echo()
        .spawn(["args", "one", "two"], &CallOptions::new())
        .unwrap();
    assert!(running.id() > 0);
    let lines: Vec<String> = running.lines().collect::<Result<_, _>>().unwrap();
    assert_eq!(lines, tokens(&["one", "two"]));
    let output = running.wait().unwrap();
    assert_eq!(output.code, 0);
    assert!(output.stdout.is_empty(), "the lines were taken");
}

#[test]
fn output_keeps_codes_and_stderr() {
    let options = CallOptions::new().success_codes([3]);
    let output = echo().output(["fail", "warned", "3"], &options).unwrap();
    assert_eq!(
        (output.code, output.stderr.trim_ascii_end()),
        (3, &b"warned"[..])
    );
    match echo().call(["fail", "warned", "4"]) {
        Err(CommandError::Exit {
            code: 4, stdout, ..
        }) => assert!(stdout.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_timeout_kills_the_whole_tree() {
    let dir = scratch("timeout-tree");
    let (cmd, args, pidfile) = tree(&dir);
    let options = CallOptions::new().timeout(std::time::Duration::from_secs(10));
    let mut running = cmd.spawn(&args, &options).unwrap();
    let shell = running.id();
    let held = held_pid(&mut running, &pidfile);
    match running.wait() {
        Err(CommandError::Timeout { timeout, .. }) => {
            assert_eq!(timeout, std::time::Duration::from_secs(10));
        }
        other => panic!("{other:?}"),
    }
    assert_tree_ended(shell, held);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Checks that `cmd.exe` (`shell`) and the child it started (`held`) have both ended.
fn assert_tree_ended(shell: u32, held: u32) {
    assert!(ends(shell), "cmd.exe {shell} is still running");
    assert!(ends(held), "its child {held} is still running");
}

#[test]
fn kill_ends_the_whole_tree() {
    let dir = scratch("kill-tree");
    let (cmd, args, pidfile) = tree(&dir);
    let mut running = cmd.spawn(&args, &CallOptions::new()).unwrap();
    let shell = running.id();
    let held = held_pid(&mut running, &pidfile);
    running.kill();
    match running.wait() {
        Err(CommandError::Exit { code: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_tree_ended(shell, held);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dropping_a_running_call_ends_the_whole_tree() {
    let dir = scratch("drop-tree");
    let (cmd, args, pidfile) = tree(&dir);
    let mut running = cmd.spawn(&args, &CallOptions::new()).unwrap();
    let shell = running.id();
    let held = held_pid(&mut running, &pidfile);
    drop(running);
    assert_tree_ended(shell, held);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_background_process_does_not_hold_the_call() {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE, TerminateProcess, WaitForSingleObject,
    };
    let dir = scratch("background");
    let pidfile = dir.join("held.pid");
    let cmd = Command::new("cmd").unwrap();
    let args = [
        OsString::from("/C"),
        "start".into(),
        "/B".into(),
        echo().program().as_os_str().to_owned(),
        "hold".into(),
        pidfile.as_os_str().to_owned(),
        "&".into(),
        "echo".into(),
        "hi".into(),
    ];
    // Returns although the background process holds the pipes, and runs until killed.
    let output = cmd.call(args).unwrap();
    assert!(lines(&output).contains(&"hi".to_owned()), "{output:?}");
    let started = std::time::Instant::now();
    let pid: u32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            break text.trim().parse().unwrap();
        }
        assert!(
            started.elapsed() < HANG,
            "the background process never wrote its pid"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // Still running: the call ended normally, so what the program left running is not killed.
    // SAFETY: opening a process by id; checked for null, waited on without blocking,
    // terminated (this test started it) and closed once.
    unsafe {
        let handle = OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_TERMINATE, 0, pid);
        assert!(!handle.is_null(), "the background process {pid} is gone");
        assert_eq!(WaitForSingleObject(handle, 0), WAIT_TIMEOUT);
        TerminateProcess(handle, 1);
        CloseHandle(handle);
    }
    assert!(ends(pid));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn spawn_async_streams_lines_and_kill_ends_the_tree() {
    let dir = scratch("async-spawn");
    let (cmd, args, pidfile) = tree(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut lines = echo()
            .spawn_async(["args", "one", "two"], &CallOptions::new())
            .unwrap();
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            tokens(&["one"])[0]
        );
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            tokens(&["two"])[0]
        );
        assert!(lines.next_line().await.is_none());
        assert_eq!(lines.wait().await.unwrap().code, 0);

        let mut running = cmd.spawn_async(&args, &CallOptions::new()).unwrap();
        let shell = running.id();
        assert_eq!(running.next_line().await.unwrap().unwrap(), "ready");
        let held: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        running.kill();
        assert!(running.wait().await.is_err());
        assert!(ends(shell), "cmd.exe {shell} is still running");
        assert!(ends(held), "its child {held} is still running");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pipelines_connect_programs_and_name_the_failing_stage() {
    let echo = echo();
    let piped = echo
        .with_args(["args", "a b", "c"])
        .pipe(echo.with_args(["stdin"]));
    assert_eq!(
        lines(&piped.call(&CallOptions::new()).unwrap()),
        tokens(&["a b", "c"])
    );
    let broken = echo
        .with_args(["fail", "first", "3"])
        .pipe(echo.with_args(["stdin"]));
    match broken.call(&CallOptions::new()) {
        Err(CommandError::Stage {
            stage: 1,
            stages: 2,
            error,
        }) => match *error {
            CommandError::Exit {
                code: 3, stderr, ..
            } => assert_eq!(stderr.trim_ascii_end(), b"first"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn killing_a_pipeline_ends_every_stage_and_what_they_started() {
    let dir = scratch("pipeline-tree");
    let (cmd, args, pidfile) = tree(&dir);
    let echo = echo();
    let pipeline = echo.with_args(["stdin"]).pipe(cmd.with_args(&args));
    let options = CallOptions::new().inherit_stdin();
    let mut running = pipeline.spawn(&options).unwrap();
    let first = running.id();
    let held = held_pid(&mut running, &pidfile);
    running.kill();
    assert!(running.wait().is_err());
    assert!(ends(first), "the first stage {first} is still running");
    assert!(
        ends(held),
        "the second stage's child {held} is still running"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn a_dropped_async_call_ends_the_whole_tree() {
    let dir = scratch("async-tree");
    let (cmd, args, pidfile) = tree(&dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = CallOptions::new();
        let call = cmd.call_async(&args, &options);
        tokio::pin!(call);
        // Poll the call until its child has written its pid, then drop it.
        let pidfile = pidfile.clone();
        let appeared = async move {
            while !pidfile.exists() {
                // Polled, not timed: the test goes on as soon as the file is there.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            result = &mut call => panic!("the call ended: {result:?}"),
            () = appeared => {}
        }
    });
    let held: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        ends(held),
        "the dropped call's child {held} is still running"
    );
    drop(runtime);
    std::fs::remove_dir_all(&dir).unwrap();
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any arguments without NUL reach the program exactly, together.
        #[test]
        fn any_arguments_round_trip(
            args in proptest::collection::vec("[^\u{0}]{0,12}", 0..6),
        ) {
            let echoed = echoed_args(&echo(), &args).unwrap();
            prop_assert_eq!(echoed, tokens(&args));
        }

        /// Quotes, backslashes and spaces, densely: the characters of the quoting rules.
        #[test]
        fn quoting_characters_round_trip(
            args in proptest::collection::vec("[\"\\\\ a\t]{0,10}", 1..5),
        ) {
            let echoed = echoed_args(&echo(), &args).unwrap();
            prop_assert_eq!(echoed, tokens(&args));
        }
    }
}
