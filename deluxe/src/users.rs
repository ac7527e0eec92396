//! The machine's real user accounts: people who can log in, not system accounts.
//!
//! [`get_real_users`] reads the system's user database and configuration; [`real_users`] is
//! its pure core, which takes those inputs as values so it can be tested (and reused on
//! data from elsewhere) without touching the machine.
//!
//! ```
//! use deluxe::users::{real_users, Account};
//! let users = real_users(Some("UID_MIN 1000"), None, [Account::new("ann", 1000, "/bin/sh")]);
//! assert_eq!(users.len(), 1);
//! ```

#[allow(unsafe_code)]
mod sys;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use sys::enumerate;

/// The minimum UID of a real user when no `UID_MIN` is configured, and on Unix systems other
/// than Linux (macOS and the BSDs number their first user 501 or 1000).
///
/// ```
/// use deluxe::users::{real_users, DEFAULT_UID_MIN, Account};
/// let users = real_users(None, None, [Account::new("mac", DEFAULT_UID_MIN + 1, "/bin/zsh")]);
/// assert!(users.contains("mac"));
/// ```
pub const DEFAULT_UID_MIN: u32 = 500;

/// Where `UID_MIN` is looked up on Linux, in order: the first file that exists is read.
///
/// ```
/// assert_eq!(deluxe::users::LOGIN_DEFS[0], "/etc/login.defs");
/// ```
pub const LOGIN_DEFS: [&str; 2] = ["/etc/login.defs", "/usr/etc/login.defs"];

/// The list of valid login shells; when it exists, a real user's shell must be listed in it.
///
/// ```
/// assert_eq!(deluxe::users::SHELLS, "/etc/shells");
/// ```
pub const SHELLS: &str = "/etc/shells";

/// Shells (by file name) that mark an account as unable to log in.
///
/// ```
/// use deluxe::users::{is_login_shell, NON_LOGIN_SHELLS};
/// for name in NON_LOGIN_SHELLS {
///     assert!(!is_login_shell(&format!("/usr/sbin/{name}"), None));
/// }
/// ```
pub const NON_LOGIN_SHELLS: [&str; 6] = ["nologin", "false", "true", "sync", "shutdown", "halt"];

/// One account of the user database, as [`real_users`] sees it.
///
/// ```
/// use deluxe::users::Account;
/// let root = deluxe::users::all_accounts()?.into_iter().find(|a| a.uid == 0).unwrap();
/// assert_eq!(root.name, "root");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// The numeric user id.
    pub uid: u32,
    /// The login shell, empty when the field is empty.
    pub shell: String,
}

impl Account {
    /// Builds an account entry.
    ///
    /// ```
    /// use deluxe::users::Account;
    ///
    /// let alice = Account::new("alice", 1000, "/bin/bash");
    /// assert_eq!(alice.uid, 1000);
    /// ```
    pub fn new(name: impl Into<String>, uid: u32, shell: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid,
            shell: shell.into(),
        }
    }
}

/// Returns the set of real user accounts on this machine: every account whose UID is at least
/// `UID_MIN` and whose shell is a login shell. There is no upper bound (`UID_MAX` is not
/// read): an account such as `nobody` (65534) counts when its shell is a login shell.
///
/// On Linux, `UID_MIN` is read from `/etc/login.defs` (or `/usr/etc/login.defs` when the
/// former does not exist); where no value is configured, and on other Unix systems, the minimum
/// is [`DEFAULT_UID_MIN`]. A login shell is non-empty, is not a `nologin`/`false`-style shell,
/// and is listed in `/etc/shells` when that file exists. Accounts come from the system's user
/// database through `getpwent`, so every NSS source (files, LDAP, sssd, ...) counts.
///
/// A real user whose name is not UTF-8 cannot be a `String`: it is left out with a `log`
/// warning naming it, and [`get_real_users_os`] lists it.
///
/// # Errors
///
/// Fails when the configuration files exist but cannot be read, or when the user database
/// reports an error while being enumerated.
///
/// ```
/// let users = deluxe::users::get_real_users()?;
/// for name in &users {
///     println!("{name}");
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn get_real_users() -> io::Result<BTreeSet<String>> {
    Ok(get_real_users_os()?
        .into_iter()
        .filter_map(|name| match name.into_string() {
            Ok(name) => Some(name),
            Err(name) => {
                log::warn!(
                    "real user {:?} left out: its name is not UTF-8 (get_real_users_os lists it)",
                    name
                );
                None
            }
        })
        .collect())
}

/// [`get_real_users`] with the names as the user database holds them, UTF-8 or not: no
/// account is ever left out.
///
/// # Errors
///
/// As [`get_real_users`].
///
/// ```
/// let users = deluxe::users::get_real_users_os()?;
/// assert!(users.len() >= deluxe::users::get_real_users()?.len());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn get_real_users_os() -> io::Result<BTreeSet<OsString>> {
    let login_defs = if cfg!(target_os = "linux") {
        read_first_existing(&LOGIN_DEFS)?
    } else {
        None
    };
    let shells = read_optional(Path::new(SHELLS))?;
    let uid_min = login_defs
        .as_deref()
        .and_then(parse_uid_min)
        .unwrap_or(DEFAULT_UID_MIN);
    Ok(enumerate()?
        .into_iter()
        .filter(|entry| {
            entry.uid >= uid_min
                && is_login_shell(&String::from_utf8_lossy(&entry.shell), shells.as_deref())
        })
        .map(|entry| OsString::from(std::ffi::OsStr::from_bytes(&entry.name)))
        .collect())
}

/// The pure core of [`get_real_users`]: from the text of `login.defs` (`None` when there is
/// none), the text of `/etc/shells` (`None` when there is none) and the accounts, the names of
/// the real users.
///
/// ```
/// use deluxe::users::{real_users, Account};
///
/// let accounts = [
///     Account::new("root", 0, "/bin/bash"),
///     Account::new("alice", 1000, "/bin/bash"),
///     Account::new("svc", 1001, "/usr/sbin/nologin"),
///     Account::new("bob", 1002, "/bin/zsh"),
/// ];
/// let users = real_users(Some("UID_MIN\t1000\n"), Some("/bin/bash\n"), accounts);
/// assert_eq!(users.into_iter().collect::<Vec<_>>(), ["alice"]);
/// ```
pub fn real_users(
    login_defs: Option<&str>,
    shells: Option<&str>,
    accounts: impl IntoIterator<Item = Account>,
) -> BTreeSet<String> {
    let uid_min = login_defs
        .and_then(parse_uid_min)
        .unwrap_or(DEFAULT_UID_MIN);
    accounts
        .into_iter()
        .filter(|account| account.uid >= uid_min && is_login_shell(&account.shell, shells))
        .map(|account| account.name)
        .collect()
}

/// Reads `UID_MIN` from the text of a `login.defs` file.
///
/// Lines are `NAME VALUE`, separated by spaces or tabs; `#` starts a comment; the value may be
/// decimal, octal (`0750`) or hexadecimal (`0x3e8`), optionally in double quotes. When the
/// name occurs more than once the last valid occurrence wins. `None` when there is no valid
/// `UID_MIN`.
///
/// ```
/// use deluxe::users::parse_uid_min;
///
/// assert_eq!(parse_uid_min("# users\nUID_MIN\t\t 1000\n"), Some(1000));
/// assert_eq!(parse_uid_min("UID_MIN 0x3e8"), Some(1000));
/// assert_eq!(parse_uid_min("UID_MIN 01750"), Some(1000));
/// assert_eq!(parse_uid_min("UID_MIN 500\nUID_MIN 2000"), Some(2000));
/// assert_eq!(parse_uid_min("SYS_UID_MIN 100"), None);
/// ```
pub fn parse_uid_min(login_defs: &str) -> Option<u32> {
    login_defs.lines().rev().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_ascii_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some("UID_MIN"), Some(value), None) => parse_number(unquote(value)),
            _ => None,
        }
    })
}

/// Whether `shell` lets its account log in: it is non-empty, is not a `nologin`/`false`-style
/// shell, and, when the text of `/etc/shells` is given, is listed there.
///
/// ```
/// use deluxe::users::is_login_shell;
///
/// assert!(is_login_shell("/bin/bash", None));
/// assert!(!is_login_shell("/usr/sbin/nologin", None));
/// assert!(!is_login_shell("", None));
/// assert!(!is_login_shell("/bin/zsh", Some("/bin/sh\n/bin/bash\n")));
/// ```
pub fn is_login_shell(shell: &str, shells: Option<&str>) -> bool {
    let shell = shell.trim();
    let file_name = shell.rsplit('/').next().unwrap_or(shell);
    if shell.is_empty() || NON_LOGIN_SHELLS.contains(&file_name) {
        return false;
    }
    shells.is_none_or(|listed| {
        listed
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default().trim())
            .any(|line| line == shell)
    })
}

/// Every account of the system's user database, read through `getpwent` (so every NSS source
/// counts). Accounts whose name or shell is not UTF-8 are skipped with a `log` warning.
///
/// # Errors
///
/// Fails when the user database reports an error while being enumerated.
///
/// ```
/// let accounts = deluxe::users::all_accounts()?;
/// assert!(accounts.iter().any(|account| account.uid == 0));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn all_accounts() -> io::Result<Vec<Account>> {
    Ok(enumerate()?
        .into_iter()
        .filter_map(|entry| {
            match (
                String::from_utf8(entry.name),
                String::from_utf8(entry.shell),
            ) {
                (Ok(name), Ok(shell)) => Some(Account::new(name, entry.uid, shell)),
                (name, _) => {
                    let name = name.unwrap_or_else(|error| {
                        String::from_utf8_lossy(error.as_bytes()).into_owned()
                    });
                    log::warn!(
                        "skipping account {name:?} (uid {}): its name or shell is not UTF-8",
                        entry.uid
                    );
                    None
                }
            }
        })
        .collect())
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// `strtoul(value, _, 0)` without its leniency: the whole value must be a number.
fn parse_number(value: &str) -> Option<u32> {
    let (digits, radix) = if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        (hex, 16)
    } else if value.len() > 1 && value.starts_with('0') {
        (&value[1..], 8)
    } else {
        (value, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

fn read_first_existing(paths: &[&str]) -> io::Result<Option<String>> {
    for path in paths {
        if let Some(text) = read_optional(Path::new(path))? {
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// The file's text, `None` when it does not exist. Invalid UTF-8 is replaced, not refused:
/// one odd byte in a comment must not hide the whole file.
fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io::Error::new(
            error.kind(),
            format!("cannot read {}: {error}", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_strtoul_base_zero() {
        assert_eq!(parse_number("0"), Some(0));
        assert_eq!(parse_number("1000"), Some(1000));
        assert_eq!(parse_number("0X3E8"), Some(1000));
        assert_eq!(parse_number("0x"), None);
        assert_eq!(parse_number("08"), None);
        assert_eq!(parse_number("+5"), None);
        assert_eq!(parse_number("-5"), None);
        assert_eq!(parse_number("12abc"), None);
        assert_eq!(parse_number("4294967296"), None);
    }

    #[test]
    fn last_valid_uid_min_wins_and_invalid_ones_are_skipped() {
        let text = "UID_MIN 1000\nUID_MIN\tbogus\n";
        assert_eq!(parse_uid_min(text), Some(1000));
        assert_eq!(parse_uid_min("UID_MIN \"2000\" # quoted\n"), Some(2000));
        assert_eq!(parse_uid_min("#UID_MIN 1000\n"), None);
        assert_eq!(parse_uid_min("UID_MIN\n"), None);
        assert_eq!(parse_uid_min("UID_MIN 1000 1001\n"), None);
        assert_eq!(parse_uid_min("uid_min 1000\n"), None);
        assert_eq!(parse_uid_min("  \tUID_MIN\t0x10\r\n"), Some(16));
    }

    #[test]
    fn shells_list_is_exact_and_ignores_comments() {
        let shells = "# valid shells\n/bin/sh\n  /bin/bash  \n";
        assert!(is_login_shell("/bin/bash", Some(shells)));
        assert!(!is_login_shell("/bin/bas", Some(shells)));
        assert!(!is_login_shell("/bin/false", Some("/bin/false\n")));
        assert!(!is_login_shell("/usr/bin/false", None));
        assert!(!is_login_shell("/sbin/nologin", None));
        assert!(!is_login_shell("   ", None));
    }

    #[test]
    fn no_login_defs_means_default_minimum() {
        let accounts = [
            Account::new("old", 499, "/bin/sh"),
            Account::new("mac", 501, "/bin/zsh"),
        ];
        let users = real_users(None, None, accounts.clone());
        assert_eq!(users, BTreeSet::from(["mac".to_owned()]));
        let users = real_users(Some("no value here"), None, accounts);
        assert_eq!(users, BTreeSet::from(["mac".to_owned()]));
    }
}
