//! The user database through the C library (`getpwent`): the only module of `users` allowed
//! to use `unsafe`. NSS sources (LDAP, SSSD, ...) count, as they do for `getent passwd`.

use std::ffi::CStr;
use std::io;
use std::sync::Mutex;

/// One entry of the user database, its bytes as they are.
pub(super) struct RawAccount {
    pub(super) name: Vec<u8>,
    pub(super) uid: u32,
    pub(super) shell: Vec<u8>,
}

/// Every entry of the user database, through `getpwent`.
pub(super) fn enumerate() -> io::Result<Vec<RawAccount>> {
    // getpwent keeps one cursor for the whole process: two enumerations at once would skip
    // and repeat entries, so they take turns.
    static ENUMERATION: Mutex<()> = Mutex::new(());
    let _turn = ENUMERATION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);

    let mut accounts = Vec::new();
    // SAFETY: rewinding the database cursor; serialised by the lock above.
    unsafe { libc::setpwent() };
    let result = loop {
        nix::errno::Errno::clear();
        // SAFETY: serialised by the lock above; the returned entry is copied out before the
        // next call can overwrite it.
        let entry = unsafe { libc::getpwent() };
        if entry.is_null() {
            break match nix::errno::Errno::last() {
                // glibc reports the end of the database as "no error" or ENOENT.
                nix::errno::Errno::UnknownErrno | nix::errno::Errno::ENOENT => Ok(accounts),
                errno => Err(io::Error::from(errno)),
            };
        }
        // SAFETY: a non-null entry from getpwent points to a valid passwd record whose string
        // fields are NUL-terminated (pw_shell may be null on some systems).
        let (name, uid, shell) = unsafe {
            let entry = &*entry;
            let shell = if entry.pw_shell.is_null() {
                c""
            } else {
                CStr::from_ptr(entry.pw_shell)
            };
            (CStr::from_ptr(entry.pw_name), entry.pw_uid, shell)
        };
        accounts.push(RawAccount {
            name: name.to_bytes().to_vec(),
            uid,
            shell: shell.to_bytes().to_vec(),
        });
    };
    // SAFETY: closing the cursor opened above; serialised by the lock.
    unsafe { libc::endpwent() };
    result
}
