//! Checks on program names and user names.
//!
//! The runtime ([`Command::new`](crate::command::Command::new),
//! [`Command::user`](crate::command::Command::user)) and the `command!` macro apply the
//! very same rules: this file is compiled into both crates (`deluxe-macros/src/names.rs`
//! is a link to it), so a name the macro accepts at compile time is a name the runtime
//! accepts, and the other way round. It therefore uses nothing but `core`.
//!
//! ```
//! use deluxe::command::{check_program, check_user_name};
//! assert!(check_program(b"ls").is_ok() && check_user_name(b"root").is_ok());
//! ```

use core::fmt;

/// Characters that only mean something to a shell. A program name holding one of them
/// is almost always a shell command line passed by mistake: deluxe never runs a shell.
///
/// ```
/// use deluxe::command::{check_program, SHELL_SYNTAX};
/// for &byte in SHELL_SYNTAX {
///     assert!(check_program(&[b'l', b's', byte]).is_err());
/// }
/// ```
pub const SHELL_SYNTAX: &[u8] = b"|;&$`<>*?";

/// What is wrong with a program name given to `Command` or `command!`.
///
/// ```
/// use deluxe::command::{check_program, ProgramProblem};
/// let problem = check_program(b"ls -la").unwrap_err();
/// assert_eq!(problem, ProgramProblem::Whitespace);
/// assert!(problem.to_string().contains("pass its arguments to `call()`"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgramProblem {
    /// The name is empty.
    Empty,
    /// The name holds a NUL byte, which no program name can contain.
    Nul,
    /// The name holds whitespace (any Unicode whitespace, such as a no-break space) or an
    /// invisible character (see [`is_blank`]): arguments were probably written into it.
    Whitespace,
    /// The name holds a shell metacharacter (the byte is given).
    ShellSyntax(u8),
    /// The name holds a `/` but does not start with one: it would depend on the
    /// working directory of whoever runs it.
    RelativePath,
}

impl fmt::Display for ProgramProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty; give a program name such as `ls`"),
            Self::Nul => f.write_str("contains a NUL byte, which no program name can hold"),
            Self::Whitespace => f.write_str(
                "contains whitespace or an invisible character; give the program alone and pass \
                 its arguments to `call()`",
            ),
            Self::ShellSyntax(byte) => write!(
                f,
                "contains `{}`; commands never run through a shell: give the program alone and \
                 pass its arguments to `call()`",
                char::from(*byte)
            ),
            Self::RelativePath => f.write_str(
                "is a relative path; give an absolute path such as `/usr/bin/ls`, or a bare name \
                 to look up on `PATH`",
            ),
        }
    }
}

/// Whether `c` is a character no program or user name may hold because a reader cannot see
/// it or takes it for a separator: any Unicode whitespace (a space, a tab, a no-break space
/// U+00A0, ...) and the invisible format characters U+200B (zero width space), U+2060 (word
/// joiner) and U+FEFF (zero width no-break space). `command!` and the runtime use this one
/// predicate.
///
/// ```
/// use deluxe::command::is_blank;
/// assert!(is_blank(' ') && is_blank('\u{a0}') && is_blank('\u{200b}') && is_blank('\u{feff}'));
/// assert!(!is_blank('l') && !is_blank('é'));
/// ```
pub fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}')
}

/// Checks a program name: not empty, no NUL, no whitespace or invisible character
/// ([`is_blank`]), no shell syntax (`` | ; & $ ` < > * ? ``), and either a bare name or an
/// absolute path.
///
/// ```
/// use deluxe::command::{check_program, ProgramProblem};
///
/// assert_eq!(check_program(b"ls"), Ok(()));
/// assert_eq!(check_program(b"/usr/bin/env"), Ok(()));
/// assert_eq!(check_program(b"ls -la"), Err(ProgramProblem::Whitespace));
/// assert_eq!(check_program("ls\u{a0}-la".as_bytes()), Err(ProgramProblem::Whitespace));
/// assert_eq!(check_program(b"ls|wc"), Err(ProgramProblem::ShellSyntax(b'|')));
/// assert_eq!(check_program(b"bin/tool"), Err(ProgramProblem::RelativePath));
/// ```
pub fn check_program(name: &[u8]) -> Result<(), ProgramProblem> {
    if name.is_empty() {
        return Err(ProgramProblem::Empty);
    }
    for c in name.utf8_chunks().flat_map(|chunk| chunk.valid().chars()) {
        if c == '\0' {
            return Err(ProgramProblem::Nul);
        }
        if is_blank(c) {
            return Err(ProgramProblem::Whitespace);
        }
        if let Ok(byte) = u8::try_from(c)
            && SHELL_SYNTAX.contains(&byte)
        {
            return Err(ProgramProblem::ShellSyntax(byte));
        }
    }
    if name[0] != b'/' && name.contains(&b'/') {
        return Err(ProgramProblem::RelativePath);
    }
    Ok(())
}

/// What is wrong with a user name given to `Command::user` or `command!(.., user = ..)`.
///
/// ```
/// use deluxe::command::{check_user_name, UserNameProblem};
/// assert_eq!(check_user_name(b"a:b"), Err(UserNameProblem::Colon));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UserNameProblem {
    /// The name is empty.
    Empty,
    /// The name starts with `-`: `sudo` would read it as an option.
    LeadingDash,
    /// The name starts with `#`: `sudo` would read it as a numeric user id.
    LeadingHash,
    /// The name holds whitespace or an invisible character (see [`is_blank`]).
    Whitespace,
    /// The name holds `:`, the field separator of the user database.
    Colon,
    /// The name holds `/`.
    Slash,
    /// The name holds a NUL byte.
    Nul,
}

impl fmt::Display for UserNameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty; give an account name such as `root`",
            Self::LeadingDash => {
                "starts with `-`, which tools such as `sudo` would take for an option"
            }
            Self::LeadingHash => {
                "starts with `#`, which tools such as `sudo` read as a numeric user id"
            }
            Self::Whitespace => {
                "contains whitespace or an invisible character, which no account name can hold"
            }
            Self::Colon => "contains `:`, which no account name can hold",
            Self::Slash => "contains `/`, which no account name can hold",
            Self::Nul => "contains a NUL byte, which no account name can hold",
        })
    }
}

/// Checks a user name: not empty, no leading `-` or `#`, and no whitespace or invisible
/// character ([`is_blank`]), `:`, `/` or NUL.
///
/// ```
/// use deluxe::command::{check_user_name, UserNameProblem};
///
/// assert_eq!(check_user_name(b"www-data"), Ok(()));
/// assert_eq!(check_user_name(b"-r"), Err(UserNameProblem::LeadingDash));
/// assert_eq!(check_user_name(b"#0"), Err(UserNameProblem::LeadingHash));
/// ```
pub fn check_user_name(name: &[u8]) -> Result<(), UserNameProblem> {
    match name.first() {
        None => return Err(UserNameProblem::Empty),
        Some(b'-') => return Err(UserNameProblem::LeadingDash),
        Some(b'#') => return Err(UserNameProblem::LeadingHash),
        Some(_) => {}
    }
    for c in name.utf8_chunks().flat_map(|chunk| chunk.valid().chars()) {
        match c {
            '\0' => return Err(UserNameProblem::Nul),
            ':' => return Err(UserNameProblem::Colon),
            '/' => return Err(UserNameProblem::Slash),
            c if is_blank(c) => return Err(UserNameProblem::Whitespace),
            _ => {}
        }
    }
    Ok(())
}
