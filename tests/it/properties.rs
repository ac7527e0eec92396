//! Property tests of every parser and validator against simple reference models: no input
//! makes them panic, and they agree with the model on every generated input.

use deluxe::command::{SHELL_SYNTAX, check_program, check_user_name};
use deluxe::users::{Account, parse_uid_min, real_users};
use proptest::prelude::*;

/// One line of a generated login.defs, with the UID_MIN it sets when it is a valid one.
fn login_defs_line() -> impl Strategy<Value = (String, Option<u32>)> {
    let separator = prop::sample::select(vec![" ", "\t", " \t ", "\t\t"]);
    let indent = prop::sample::select(vec!["", " ", "\t"]);
    let valid = (0u32..100_000, 0..4usize).prop_map(|(n, form)| match form {
        0 => (n.to_string(), n),
        1 => (format!("0{n:o}"), n),
        2 => (format!("0x{n:x}"), n),
        _ => (format!("\"{n}\""), n),
    });
    prop_oneof![
        (indent.clone(), separator.clone(), valid)
            .prop_map(|(i, s, (text, n))| (format!("{i}UID_MIN{s}{text}"), Some(n))),
        (separator.clone(), "[a-z!+-]{1,6}")
            .prop_map(|(s, junk)| (format!("UID_MIN{s}{junk}"), None)),
        (separator.clone(), 0u32..100_000).prop_map(|(s, n)| (format!("#UID_MIN{s}{n}"), None)),
        (separator.clone(), 0u32..100_000).prop_map(|(s, n)| (format!("SYS_UID_MIN{s}{n}"), None)),
        (separator, 0u32..100_000).prop_map(|(s, n)| (format!("UID_MAX{s}{n}"), None)),
        Just((String::new(), None)),
        // Free text without a `U` can never set UID_MIN, whatever else it holds.
        "[ -TV-~]{0,40}".prop_map(|text| (text, None)),
    ]
}

/// Whether the name holds a blank character: Unicode whitespace (the no-break space U+00A0
/// among them) or an invisible format character, wherever the bytes are valid UTF-8 (invalid
/// bytes decode to U+FFFD here, which is not blank).
fn has_blank(name: &[u8]) -> bool {
    String::from_utf8_lossy(name)
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}'))
}

fn user_name_model(name: &[u8]) -> bool {
    !name.is_empty()
        && name[0] != b'-'
        && name[0] != b'#'
        && !name.iter().any(|&b| b == 0 || b == b':' || b == b'/')
        && !has_blank(name)
}

fn program_model(name: &[u8]) -> bool {
    !name.is_empty()
        && !name.iter().any(|&b| b == 0 || SHELL_SYNTAX.contains(&b))
        && !has_blank(name)
        && (name[0] == b'/' || !name.contains(&b'/'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn uid_min_never_panics(text in any::<String>()) {
        let _ = parse_uid_min(&text);
    }

    #[test]
    fn uid_min_is_the_last_valid_line(lines in prop::collection::vec(login_defs_line(), 0..12),
                                      crlf in any::<bool>()) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let text: Vec<&str> = lines.iter().map(|(line, _)| line.as_str()).collect();
        let expected = lines.iter().rev().find_map(|(_, value)| *value);
        prop_assert_eq!(parse_uid_min(&text.join(newline)), expected);
    }

    #[test]
    fn real_users_agree_with_the_model(
        uid_min in prop::option::of(0u32..3000),
        accounts in prop::collection::vec(
            ("[a-z]{1,8}", 0u32..4000, prop::sample::select(vec![
                "/bin/bash", "/bin/sh", "/bin/zsh", "/usr/sbin/nologin", "/sbin/nologin",
                "/bin/false", "/usr/bin/false", "", "/bin/true",
            ])),
            0..20,
        ),
        with_shells_file in any::<bool>(),
    ) {
        let login_defs = uid_min.map(|n| format!("UID_MIN {n}\n"));
        let shells = "/bin/sh\n/bin/bash\n/usr/sbin/nologin\n";
        let shells = with_shells_file.then_some(shells);
        let accounts: Vec<Account> = accounts
            .into_iter()
            .map(|(name, uid, shell)| Account::new(name, uid, shell))
            .collect();
        let minimum = uid_min.unwrap_or(500);
        let expected: std::collections::BTreeSet<String> = accounts
            .iter()
            .filter(|a| a.uid >= minimum)
            .filter(|a| !a.shell.is_empty())
            .filter(|a| !["nologin", "false", "true"].contains(&a.shell.rsplit('/').next().unwrap()))
            .filter(|a| shells.is_none_or(|s| s.lines().any(|l| l == a.shell)))
            .map(|a| a.name.clone())
            .collect();
        prop_assert_eq!(real_users(login_defs.as_deref(), shells, accounts), expected);
    }

    #[test]
    fn user_names_agree_with_the_model(name in prop::collection::vec(any::<u8>(), 0..12)) {
        prop_assert_eq!(check_user_name(&name).is_ok(), user_name_model(&name));
    }

    #[test]
    fn likely_user_names_agree_with_the_model(name in "[-#a-z0-9_ :/.\t]{0,10}") {
        prop_assert_eq!(check_user_name(name.as_bytes()).is_ok(), user_name_model(name.as_bytes()));
    }

    #[test]
    fn program_names_agree_with_the_model(name in prop::collection::vec(any::<u8>(), 0..12)) {
        prop_assert_eq!(check_program(&name).is_ok(), program_model(&name));
    }

    #[test]
    fn names_with_unicode_blanks_agree_with_the_model(
        before in "[a-z]{0,4}",
        blank in prop::sample::select(vec!['\u{a0}', '\u{2003}', '\u{200b}', '\u{2060}', '\u{feff}', '\u{3000}', '\u{85}']),
        after in "[a-z]{0,4}",
    ) {
        let name = format!("{before}{blank}{after}");
        prop_assert!(!user_name_model(name.as_bytes()) && !program_model(name.as_bytes()));
        prop_assert_eq!(check_user_name(name.as_bytes()).is_ok(), user_name_model(name.as_bytes()));
        prop_assert_eq!(check_program(name.as_bytes()).is_ok(), program_model(name.as_bytes()));
    }

    #[test]
    fn likely_program_names_agree_with_the_model(name in "[-/a-z0-9_. |;&$`<>*?]{0,12}") {
        prop_assert_eq!(check_program(name.as_bytes()).is_ok(), program_model(name.as_bytes()));
    }
}
