//! `get_real_users` against this machine's real user database.

use std::collections::BTreeSet;

use deluxe::users::get_real_users;

use crate::common::{NOLOGIN_USER, SYSTEM_USER, TEST_USER, has_sudo_setup};

/// The real users computed another way: `getent passwd` (NSS), the last `UID_MIN` line of
/// login.defs read with a plain split, and `/etc/shells` as a list of lines.
fn real_users_by_hand() -> BTreeSet<String> {
    let passwd = std::process::Command::new("getent")
        .arg("passwd")
        .output()
        .unwrap();
    assert!(passwd.status.success());
    let uid_min = std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|text| {
            text.lines().rev().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() == 2 && fields[0] == "UID_MIN").then(|| fields[1].parse().ok())?
            })
        })
        .unwrap_or(500u32);
    let shells = std::fs::read_to_string("/etc/shells").ok();
    String::from_utf8(passwd.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let (name, uid, shell) = (fields[0], fields[2].parse::<u32>().ok()?, fields[6]);
            let listed = shells
                .as_deref()
                .is_none_or(|shells| shells.lines().any(|l| l.trim() == shell));
            let nologin = ["nologin", "false", "true", "sync", "shutdown", "halt"]
                .contains(&shell.rsplit('/').next().unwrap());
            (uid >= uid_min && !shell.is_empty() && !nologin && listed).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn matches_the_user_database_read_another_way() {
    let users = get_real_users().unwrap();
    assert_eq!(users, real_users_by_hand());
    assert!(!users.contains("root"), "root is below UID_MIN");
}

#[test]
fn test_accounts_are_classified() {
    if !has_sudo_setup("test_accounts_are_classified") {
        return;
    }
    let users = get_real_users().unwrap();
    assert!(users.contains(TEST_USER), "{users:?}");
    assert!(!users.contains(NOLOGIN_USER), "nologin shell: {users:?}");
    assert!(!users.contains(SYSTEM_USER), "below UID_MIN: {users:?}");
}

#[test]
fn concurrent_enumerations_see_the_same_accounts() {
    let expected = deluxe::users::all_accounts().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                (0..20)
                    .map(|_| deluxe::users::all_accounts().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for accounts in thread.join().unwrap() {
            assert_eq!(accounts, expected);
        }
    }
}

#[test]
fn a_real_user_whose_name_is_not_utf8_is_never_dropped_silently() {
    if !has_sudo_setup("a_real_user_whose_name_is_not_utf8_is_never_dropped_silently") {
        return;
    }
    // The account exists only in a private mount namespace of the probe, so the machine's
    // user database (shared with everything else running) is untouched.
    let dir = crate::common::scratch_dir("users-os");
    let passwd = dir.join("passwd");
    let mut text = std::fs::read("/etc/passwd").unwrap();
    text.extend_from_slice(b"deluxe-\xff:x:4999:4999::/nonexistent:/bin/bash\n");
    std::fs::write(&passwd, text).unwrap();
    let output = std::process::Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/passwd && exec \"$2\" users",
            "sh",
        ])
        .arg(&passwd)
        .arg(env!("CARGO_BIN_EXE_deluxe-probe"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout} {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines[0].contains("deluxe-\u{FFFD}"), "{stdout}");
    assert!(
        lines[1].split(' ').any(|name| name == "deluxe-\u{FFFD}"),
        "the OsString form lists it: {stdout}"
    );
    assert!(
        stderr.contains("left out: its name is not UTF-8"),
        "the String form says what it skipped: {stderr}"
    );
}
