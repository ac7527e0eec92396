//! `Command` as another user, honestly: sudo's refusals are typed, variables reach the real
//! program through sudo's own command line (which a rule for exactly that program allows and
//! the sudo log names), the current user runs directly, what the target user cannot reach is
//! said so, and the program sees the name it was asked by as `argv[0]` without sudo ever
//! running another file of that name. The refusals are seen from the test account
//! (`deluxe-user`), whose sudoers rules `.ci/deluxe-tests.sudoers` sets (and the tests install
//! when missing): it has no `secure_path`, so sudo finds bare names on its caller's `PATH`.

use std::os::unix::fs::PermissionsExt;

use deluxe::command::Access;
use deluxe::command::{CallOptions, Command, CommandError};

use crate::common::{TEST_USER, has_sudo_setup, has_test_sudoers};

/// The account the test account may run `/usr/bin/id` as.
const TARGET: &str = "deluxe-nologin";
const SUDO_LOG: &str = "/var/log/deluxe-tests-sudo.log";

/// Runs the probe as the test account: `(stdout, stderr)`.
fn probe_as_test_user(args: &[&str]) -> (String, String) {
    probe_as_test_user_with_path(None, args)
}

/// Runs the probe as the test account, with `PATH` set to `path` when given.
fn probe_as_test_user_with_path(path: Option<&str>, args: &[&str]) -> (String, String) {
    let probe = env!("CARGO_BIN_EXE_deluxe-probe");
    // The test account must be able to run the probe: it lives under target/, which may sit
    // in a directory it cannot enter; a copy in a world-readable place is used instead.
    // Made once per test binary (a copy still open for writing could not be executed).
    static COPY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let copy = COPY.get_or_init(|| {
        let copy = std::env::temp_dir().join(format!("deluxe-probe-copy-{}", std::process::id()));
        crate::common::copy_executable(std::path::Path::new(probe), &copy);
        crate::common::remove_at_exit(copy.clone());
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    });
    let mut sudo = std::process::Command::new("sudo");
    sudo.args(["-n", "-u", TEST_USER, "--"]);
    if let Some(path) = path {
        sudo.arg("/usr/bin/env").arg(format!("PATH={path}"));
    }
    let output = sudo.arg(copy).args(args).current_dir("/").output().unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sudo_refusals_are_typed_errors_naming_the_user() {
    if !has_test_sudoers("sudo_refusals_are_typed_errors_naming_the_user") {
        return;
    }
    // Allowed: exactly /usr/bin/id, without a password.
    let (out, err) = probe_as_test_user(&["run-as", TARGET, "/usr/bin/id", "-un"]);
    assert_eq!(out, format!("ok {TARGET}\n"), "{err}");
    // A rule that wants a password: never prompted for, typed.
    let (out, err) = probe_as_test_user(&["run-as", TARGET, "/usr/bin/whoami"]);
    assert_eq!(out, "error Sudo PasswordRequired\n", "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "sudo refused to run /usr/bin/whoami as `{TARGET}`: a password is required (commands \
             never prompt: allow it with a NOPASSWD rule)"
        )
    );
    // No rule at all.
    let (out, err) = probe_as_test_user(&["run-as", TARGET, "/usr/bin/ls", "/"]);
    assert_eq!(out, "error Sudo NotAllowed\n", "{err}");
    assert!(err.contains(&format!("as `{TARGET}`")), "{err}");
    // A variable the rule does not allow setting: refused, not run without it.
    let (out, err) = probe_as_test_user(&["run-as", TARGET, "--set", "X=1", "/usr/bin/id"]);
    assert_eq!(out, "error Sudo EnvironmentNotAllowed\n", "{err}");
    // The program's own exit code 1 is still the program's.
    let (out, _) = probe_as_test_user(&["run-as", TARGET, "/usr/bin/id", "no-such-user-xyz"]);
    assert!(out.starts_with("error Exit 1"), "{out}");
}

#[test]
fn the_sudo_log_names_the_real_program_when_variables_are_set() {
    if !has_test_sudoers("the_sudo_log_names_the_real_program_when_variables_are_set") {
        return;
    }
    // As root (whose policy allows setting variables): the program sees them, and sudo's own
    // record of what it ran (SUDO_COMMAND, what it logs) is the program, not `env`.
    let env = Command::new("env").unwrap().user(TEST_USER).unwrap();
    let options = CallOptions::new().set_env("DELUXE_GREETING", "hi");
    let listed = String::from_utf8(env.call_with(["-u", "X"], &options).unwrap()).unwrap();
    assert!(
        listed.lines().any(|line| line == "DELUXE_GREETING=hi"),
        "{listed}"
    );
    let program = env.program().display().to_string();
    assert!(
        listed
            .lines()
            .any(|line| line == format!("SUDO_COMMAND={program} -u X")),
        "{listed}"
    );
    // From the test account, whose rule allows exactly /usr/bin/id: the log names it.
    let marker = format!("deluxe-log-{}", std::process::id());
    let (out, err) = probe_as_test_user(&["run-as", TARGET, "/usr/bin/id", "-un", &marker]);
    assert!(out.starts_with("error Exit 1"), "{out} {err}");
    let log = std::fs::read_to_string(SUDO_LOG).unwrap();
    let entry = log.replace("\n    ", " ");
    assert!(
        entry.contains(&format!("COMMAND=/usr/bin/id -un {marker}")),
        "{log}"
    );
}

#[test]
fn the_current_user_runs_directly_without_sudo() {
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    // No sudo on PATH: none is needed to be oneself.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .args(["run-as", &me, "/usr/bin/id", "-un"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("ok {me}\n"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = Command::new("id").unwrap().user(me.clone()).unwrap();
    assert_eq!(id.run_as(), Some(me.as_str()));
    // Run directly, it sees the name it was asked by; an exact environment is possible.
    let options = CallOptions::new().env([("ONLY", "this")]);
    assert_eq!(
        Command::new("env")
            .unwrap()
            .user(me)
            .unwrap()
            .call_with(deluxe::command::NO_ARGS, &options)
            .unwrap(),
        b"ONLY=this\n"
    );
}

#[test]
fn what_the_target_user_cannot_reach_is_said_so() {
    if !has_sudo_setup("what_the_target_user_cannot_reach_is_said_so") {
        return;
    }
    let dir = crate::common::scratch_dir("sudo-reach");
    let private = dir.join("private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let tool = private.join("tool");
    crate::common::copy_executable(std::path::Path::new("/bin/true"), &tool);

    let pwd = Command::new("pwd").unwrap().user(TEST_USER).unwrap();
    match pwd.call_with(deluxe::command::NO_ARGS, &CallOptions::new().cwd(&private)) {
        Err(CommandError::UserCannotAccess { user, what, path }) => {
            assert_eq!(
                (user.as_str(), what, path),
                (TEST_USER, Access::WorkingDirectory, private.clone())
            );
        }
        other => panic!("{other:?}"),
    }
    let error = Command::new(&tool)
        .unwrap()
        .user(TEST_USER)
        .unwrap()
        .call(deluxe::command::NO_ARGS)
        .unwrap_err();
    assert!(
        matches!(&error, CommandError::UserCannotAccess { what: Access::Program, path, .. } if *path == tool),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "user `{TEST_USER}` cannot reach the program {}: permission denied to that user",
            tool.display()
        )
    );
    // A directory the caller may not search: not a bare "not found".
    if has_test_sudoers("what_the_target_user_cannot_reach_is_said_so") {
        let (out, err) = probe_as_test_user(&["find", "tool", private.to_str().unwrap()]);
        assert_eq!(out, "error NotFound tool denied=1\n", "{err}");
        assert!(err.contains("permission denied searching"), "{err}");
    }
}

/// A directory both accounts can read, holding `id`, a script that prints `planted` and its
/// `argv[0]`: a file named like a system tool, first on a caller's `PATH`.
struct Planted {
    dir: crate::common::Scratch,
}

impl Planted {
    fn new(test: &str) -> Self {
        let dir = crate::common::scratch_dir(test);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let id = dir.join("id");
        crate::common::write_executable(&id, b"#!/bin/sh\necho \"planted $0\"\n", 0o755);
        Self { dir }
    }

    fn id(&self) -> std::path::PathBuf {
        self.dir.join("id")
    }

    /// `PATH` with this directory first.
    fn path(&self) -> String {
        format!("{}:/usr/bin:/bin", self.dir.display())
    }
}

#[test]
fn under_sudo_the_program_sees_the_name_it_was_asked_by() {
    if !has_sudo_setup("under_sudo_the_program_sees_the_name_it_was_asked_by") {
        return;
    }
    let echo_zero = ["-c", "echo $0"];
    // Found on PATH: sudo, asked with `sudo -l`, would run that very file: it gets the name.
    let sh = Command::new("sh").unwrap().user(TEST_USER).unwrap();
    assert_eq!(sh.call(echo_zero).unwrap(), b"sh\n");
    // With a variable on sudo's command line, a time limit, in a pipeline, spawned.
    let options = CallOptions::new()
        .set_env("DELUXE_WORD", "hi")
        .timeout(std::time::Duration::from_secs(600));
    assert_eq!(
        sh.call_with(["-c", "echo $0 $DELUXE_WORD"], &options)
            .unwrap(),
        b"sh hi\n"
    );
    let cat = Command::new("cat").unwrap();
    let piped = sh
        .with_args(echo_zero)
        .pipe(cat.with_args(deluxe::command::NO_ARGS));
    assert_eq!(piped.call(&CallOptions::new()).unwrap(), b"sh\n");
    let mut running = sh.spawn(echo_zero, &CallOptions::new()).unwrap();
    assert_eq!(running.lines().next().unwrap().unwrap(), "sh");
    running.wait().unwrap();
    // Found by a search of `with_path`: where /bin is a link to /usr/bin, sudo names the file
    // /usr/bin/sh; the same file (device and inode) as /bin/sh, so the name is kept.
    let bin_sh = Command::with_path("sh", "/bin")
        .unwrap()
        .user(TEST_USER)
        .unwrap();
    assert_eq!(bin_sh.program(), std::path::Path::new("/bin/sh"));
    assert_eq!(bin_sh.call(echo_zero).unwrap(), b"sh\n");
    // sudo's answer counts in the time limit: a limit already over ends the call, typed.
    let over = CallOptions::new().timeout(std::time::Duration::ZERO);
    match sh.call_with(echo_zero, &over) {
        Err(CommandError::Timeout { program, .. }) => assert_eq!(program, sh.program()),
        other => panic!("{other:?}"),
    }
    // A name starting with `-`, after variables (where sudo takes no `--`), would be read as
    // an option of sudo's: the path is passed then (and without variables too here, as sudo's
    // secure_path does not hold the directory).
    let dir = crate::common::scratch_dir("argv0-dash");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dash = dir.join("-x");
    crate::common::write_executable(&dash, b"#!/bin/sh\necho \"$0 $DELUXE_WORD\"\n", 0o755);
    let dashed = Command::with_path("-x", &dir)
        .unwrap()
        .user(TEST_USER)
        .unwrap();
    let out = dashed.call(deluxe::command::NO_ARGS).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("{} \n", dash.display())
    );
    let out = dashed
        .call_with(
            deluxe::command::NO_ARGS,
            &CallOptions::new().set_env("DELUXE_WORD", "hi"),
        )
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("{} hi\n", dash.display())
    );
    drop(dir);
    // Given by its path: the path, as given.
    let absolute = Command::new("/bin/sh").unwrap().user(TEST_USER).unwrap();
    assert_eq!(absolute.call(echo_zero).unwrap(), b"/bin/sh\n");
}

#[test]
fn sudo_never_runs_another_file_of_the_name_than_the_one_resolved() {
    if !has_sudo_setup("sudo_never_runs_another_file_of_the_name_than_the_one_resolved") {
        return;
    }
    let planted = Planted::new("argv0-other-file");
    let id = planted.id();
    // Which `id` sudo itself would run for root's call: with root's `secure_path` (as here)
    // /usr/bin/id, not the planted one; without it, the planted one, first on PATH.
    let listed = std::process::Command::new("sudo")
        .args(["-n", "-l", "-u", TEST_USER, "--", "id"])
        .env("PATH", planted.path())
        .output()
        .unwrap();
    let sudo_runs_planted = String::from_utf8_lossy(&listed.stdout).trim() == id.to_str().unwrap();
    // When sudo would run another file, deluxe runs the one it resolved, and argv[0] is then
    // that file's absolute path (the bare name would let sudo run /usr/bin/id).
    let expected = if sudo_runs_planted {
        "planted id".to_owned()
    } else {
        format!("planted {}", id.display())
    };
    let command = Command::with_path("id", planted.path())
        .unwrap()
        .user(TEST_USER)
        .unwrap();
    assert_eq!(command.program(), id);
    let out = command.call(deluxe::command::NO_ARGS).unwrap();
    assert_eq!(String::from_utf8_lossy(&out).trim_end(), expected);
    // The same with the caller's own PATH (the probe's, which sudo sees as its caller's).
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_deluxe-probe"))
        .args(["run-as", TEST_USER, "id"])
        .env("PATH", planted.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("ok {expected}\n"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_listing_sudo_refuses_is_not_a_refused_call() {
    if !has_test_sudoers("a_listing_sudo_refuses_is_not_a_refused_call") {
        return;
    }
    // The test account has no secure_path: sudo looks bare names up on the caller's PATH.
    let planted = Planted::new("argv0-refused-listing");
    let path = planted.path();
    // /usr/bin/id, the one file the rule allows, found by a search of `with_path`, while the
    // caller's PATH would make sudo pick the planted `id`, which the rule does not allow:
    // `sudo -l id` refuses, yet the call is allowed; it runs /usr/bin/id by its path.
    let (out, err) = probe_as_test_user_with_path(
        Some(&path),
        &["run-as", TARGET, "--path", "/usr/bin", "id", "--help"],
    );
    assert!(
        out.starts_with("ok Usage: /usr/bin/id [OPTION]"),
        "{out} {err}"
    );
    // With a PATH on which sudo finds /usr/bin/id too: the name, as a shell would give it.
    let (out, err) =
        probe_as_test_user_with_path(Some("/usr/bin:/bin"), &["run-as", TARGET, "id", "--help"]);
    assert!(out.starts_with("ok Usage: id [OPTION]"), "{out} {err}");
    // The planted `id` found by both: sudo's refusal of that file is the typed error, and the
    // planted script never ran.
    let (out, err) = probe_as_test_user_with_path(Some(&path), &["run-as", TARGET, "id"]);
    assert_eq!(out, "error Sudo NotAllowed\n", "{err}");
    assert!(
        err.contains(&format!(
            "sudo refused to run {} as `{TARGET}`",
            planted.id().display()
        )),
        "{err}"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn on_tokio_argv0_through_sudo_is_the_name_and_a_dropped_call_starts_nothing() {
    if !has_sudo_setup("on_tokio_argv0_through_sudo_is_the_name_and_a_dropped_call_starts_nothing")
    {
        return;
    }
    let dir = crate::common::scratch_dir("argv0-async");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.join("started");
    let sh = Command::new("sh").unwrap().user(TEST_USER).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = CallOptions::new();
        assert_eq!(
            sh.call_async(["-c", "echo $0"], &options).await.unwrap(),
            b"sh\n"
        );
        let cat = Command::new("cat").unwrap();
        let piped = sh
            .with_args(["-c", "echo $0"])
            .pipe(cat.with_args(deluxe::command::NO_ARGS));
        assert_eq!(piped.call_async(&options).await.unwrap(), b"sh\n");
        // Polled once (it is then asking `sudo -l` on the blocking pool), then dropped. Were
        // the program started, it would write the marker during the grace `SIGTERM` gives it.
        let touch = format!("trap '' TERM; echo > {}", marker.display());
        let call = sh.call_async(["-c", touch.as_str()], &options);
        assert!(
            tokio::time::timeout(std::time::Duration::ZERO, call)
                .await
                .is_err()
        );
    });
    // Dropping the runtime waits for its blocking pool: the check has ended by now.
    drop(runtime);
    assert!(!marker.exists(), "the dropped call started its program");
}

/// The private directory of the service account, where the tests put a tool only it can reach
/// (`.ci/deluxe-tests.sudoers` lets the test account run it, and a missing one, as that account).
const PRIVATE_DIR: &str = "/var/lib/deluxe-tests-private";
/// A tool only the service account may execute (mode 0700), in a directory anyone may search.
const OWN_TOOL: &str = "/var/lib/deluxe-tests-own-tool";
const SERVICE_USER: &str = "deluxe-sys";

/// Writes a tool at `path` (it prints who runs it and its arguments), with `mode`, owned by
/// [`SERVICE_USER`]: written beside it, then renamed into place (tests may race to make it).
fn service_tool(path: &std::path::Path, mode: u32) {
    let staged = path.with_file_name(format!(".deluxe-tests-tool-{}", std::process::id()));
    crate::common::write_executable(
        &staged,
        b"#!/bin/sh\necho \"tool ran as $(id -un):\" \"$@\"\n",
        mode,
    );
    let account = nix::unistd::User::from_name(SERVICE_USER).unwrap().unwrap();
    std::os::unix::fs::chown(&staged, Some(account.uid.as_raw()), None).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// Makes [`PRIVATE_DIR`] (mode 0700, the service account's) with its `tool`.
fn private_tool() -> std::path::PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let dir = std::path::Path::new(PRIVATE_DIR);
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        created => created.unwrap(),
    }
    let account = nix::unistd::User::from_name(SERVICE_USER).unwrap().unwrap();
    std::os::unix::fs::chown(dir, Some(account.uid.as_raw()), Some(account.gid.as_raw())).unwrap();
    service_tool(&dir.join("tool"), 0o755);
    dir.join("tool")
}

#[test]
fn an_absolute_program_only_the_target_user_can_reach_is_judged_by_that_user() {
    if !has_test_sudoers(
        "an_absolute_program_only_the_target_user_can_reach_is_judged_by_that_user",
    ) {
        return;
    }
    let tool = private_tool();
    let tool = tool.to_str().unwrap();
    // The test account cannot see the file; the service account can run it, and does.
    let (out, err) = probe_as_test_user(&["run-as", SERVICE_USER, tool, "a b"]);
    assert_eq!(
        out,
        format!("ok tool ran as {SERVICE_USER}: a b\n"),
        "{err}"
    );
    // sudo's own verdict on a program that is not there, typed as sudo's.
    let absent = format!("{PRIVATE_DIR}/absent");
    let (out, err) = probe_as_test_user(&["run-as", SERVICE_USER, &absent]);
    assert_eq!(out, "error Sudo CannotExecute\n", "{err}");
    // A file only the service account may execute, in a directory anyone may search.
    service_tool(std::path::Path::new(OWN_TOOL), 0o700);
    let (out, err) = probe_as_test_user(&["run-as", SERVICE_USER, OWN_TOOL]);
    assert_eq!(out, format!("ok tool ran as {SERVICE_USER}:\n"), "{err}");
    let (out, err) = probe_as_test_user(&["run-as", TEST_USER, OWN_TOOL]);
    assert_eq!(out, format!("error NotExecutable {OWN_TOOL}\n"), "{err}");
    // Run as the test account itself (no sudo): not found, naming the directory denied.
    let (out, err) = probe_as_test_user(&["run-as", TEST_USER, tool]);
    assert_eq!(
        out, "error NotFound /var/lib/deluxe-tests-private/tool denied=1\n",
        "{err}"
    );
    assert!(
        err.contains("permission denied searching /var/lib/deluxe-tests-private"),
        "{err}"
    );
    // Passed: the fixtures go (a failing run keeps them for inspection).
    std::fs::remove_dir_all(PRIVATE_DIR).unwrap();
    std::fs::remove_file(OWN_TOOL).unwrap();
}

#[test]
fn a_program_that_writes_sudos_words_and_exits_1_is_the_programs_failure() {
    if !has_sudo_setup("a_program_that_writes_sudos_words_and_exits_1_is_the_programs_failure") {
        return;
    }
    // As root through sudo, a program that ran and says what a refusing sudo says.
    let sh = Command::new("sh").unwrap().user(TEST_USER).unwrap();
    for words in [
        "sudo: a password is required",
        "Sorry, user deluxe-user is not allowed to execute '/bin/sh' as deluxe-user on host.",
        "sudo: sorry, you are not allowed to set the following environment variables: X",
    ] {
        let script = format!("echo \"{words}\" >&2; exit 1");
        match sh.call(["-c", &script]) {
            Err(CommandError::Exit {
                code: 1, stderr, ..
            }) => {
                assert_eq!(stderr, format!("{words}\n").as_bytes());
            }
            other => panic!("{words}: expected the program's Exit, got {other:?}"),
        }
    }
}

#[test]
fn a_timeout_ends_another_users_tree_for_a_caller_that_is_not_root() {
    use crate::command_bounds::{end_escaped, pids, tempdir, tree_script};
    use crate::common::SYSTEM_USER;
    if !has_test_sudoers("a_timeout_ends_another_users_tree_for_a_caller_that_is_not_root") {
        return;
    }
    let dir = tempdir("sudo-tree-kill");
    let file = dir.join("pids");
    let script = tree_script(&file, "7206.1");
    // deluxe-user may run `kill` as deluxe-sys: everything ends, and the call says Timeout.
    let (out, err) = probe_as_test_user(&[
        "run-as",
        SYSTEM_USER,
        "--timeout",
        "500",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let pids = pids(&file);
    let left = crate::common::live_processes_mentioning("7206.1");
    left.iter().copied().for_each(end_escaped);
    assert_eq!(out, "error Timeout\n", "{err}");
    assert_eq!(pids.len(), 2, "{err}");
    assert!(left.is_empty(), "{left:?} still ran as {SYSTEM_USER}");
}

#[test]
fn a_timeout_names_what_it_could_not_end_for_a_caller_that_is_not_root() {
    use crate::command_bounds::{end_escaped, tempdir, tree_script};
    use crate::common::HANG;
    if !has_test_sudoers("a_timeout_names_what_it_could_not_end_for_a_caller_that_is_not_root") {
        return;
    }
    let dir = tempdir("sudo-tree-unended");
    let file = dir.join("pids");
    let script = tree_script(&file, "7206.2");
    // deluxe-user may not run `kill` as deluxe-nologin: sudo relays SIGTERM to the shell, and
    // the sleeps cannot be signalled. The call still returns, naming them.
    let returned = std::sync::mpsc::channel();
    let (sender, receiver) = returned;
    std::thread::spawn(move || {
        let _ = sender.send(probe_as_test_user(&[
            "run-as",
            TARGET,
            "--timeout",
            "500",
            "/bin/sh",
            "-c",
            &script,
        ]));
    });
    let outcome = receiver.recv_timeout(HANG);
    let left = crate::common::live_processes_mentioning("7206.2");
    left.iter().copied().for_each(end_escaped);
    let (out, err) = outcome.expect("the call hung on processes it could not end");
    let mut named: Vec<i32> = out
        .trim()
        .strip_prefix("error NotEnded Timeout ")
        .unwrap_or_else(|| panic!("{out} {err}"))
        .split(',')
        .map(|pid| pid.parse().unwrap())
        .collect();
    named.sort_unstable();
    let mut left = left;
    left.sort_unstable();
    assert_eq!(
        named, left,
        "the error names exactly what was left running: {err}"
    );
    assert_eq!(named.len(), 2, "both sleeps: {err}");
    assert!(err.contains(&format!("still run as `{TARGET}`")), "{err}");
}

/// Runs `script` as the system account through sudo, from the test account (a caller that is
/// not root, whose sudo policy lets it run `kill` as that account), with a 300 ms timeout;
/// returns the probe's outcome, or `None` if the call did not return within `HANG`. Whatever
/// still runs with `marker` in its command line is then ended (the shell first, so that it
/// stops forking) and returned too.
fn forking_on_term_as_another_user(script: &str, marker: &str) -> (Option<String>, Vec<i32>) {
    use crate::common::{HANG, SYSTEM_USER};
    let (sender, receiver) = std::sync::mpsc::channel();
    let script = script.to_owned();
    std::thread::spawn(move || {
        let _ = sender.send(probe_as_test_user(&[
            "run-as",
            SYSTEM_USER,
            "--timeout",
            "300",
            "/bin/sh",
            "-c",
            &script,
        ]));
    });
    let outcome = receiver.recv_timeout(HANG).ok();
    let left = crate::common::live_processes_mentioning(marker);
    for _ in 0..100 {
        let running = crate::common::live_processes_mentioning(marker);
        if running.is_empty() {
            break;
        }
        for pid in running {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGSTOP);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
        }
    }
    (outcome.map(|(out, err)| format!("{out}{err}")), left)
}

/// The call returned within its bound and told the truth: `Timeout` with nothing left, or
/// `NotEnded` naming every process still running (sudo's `kill` may itself fail to start as
/// an account that has run into its process limit, which a fork loop can reach on a busy
/// machine).
fn assert_ended_or_named(outcome: Option<String>, left: &[i32]) {
    let outcome = outcome.expect("the call returned within its bound");
    if let Some(named) = outcome.strip_prefix("error NotEnded Timeout ") {
        let named: Vec<i32> = named
            .lines()
            .next()
            .unwrap_or_default()
            .split(',')
            .filter_map(|pid| pid.trim().parse().ok())
            .collect();
        let unnamed: Vec<&i32> = left.iter().filter(|pid| !named.contains(pid)).collect();
        assert!(unnamed.is_empty(), "still running, not named: {unnamed:?}");
    } else {
        assert!(outcome.starts_with("error Timeout\n"), "{outcome}");
        assert!(left.is_empty(), "{} still ran after a Timeout", left.len());
    }
}

#[test]
fn a_program_forking_without_pause_in_its_term_handler_as_another_user_is_still_bounded() {
    if !has_test_sudoers(
        "a_program_forking_without_pause_in_its_term_handler_as_another_user_is_still_bounded",
    ) {
        return;
    }
    // The shell forks sleeps for as long as it runs once it is asked to end: only a tree that
    // is frozen as a whole can be ended, and the caller may signal none of it itself.
    let (outcome, left) = forking_on_term_as_another_user(
        "trap 'while :; do sleep 57206.3 & done' TERM; echo go; sleep 100; wait",
        "57206.3",
    );
    assert_ended_or_named(outcome, &left);
}

#[test]
fn orphans_a_program_double_forks_as_another_user_are_ended_with_its_group() {
    if !has_test_sudoers("orphans_a_program_double_forks_as_another_user_are_ended_with_its_group")
    {
        return;
    }
    // Each sleep is reparented to init at once, so no listing of the tree finds it; it stays
    // in the call's process group, which sudo's `kill` ends as the account.
    let (outcome, left) = forking_on_term_as_another_user(
        "trap 'while :; do (sleep 57206.4 &); done' TERM; echo go; sleep 100; wait",
        "57206.4",
    );
    assert_ended_or_named(outcome, &left);
}
