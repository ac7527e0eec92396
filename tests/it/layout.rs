//! The runtime crate's layout rules that the compiler checks only once they are written down:
//! `unsafe` is denied at the crate root and allowed only on the modules that wrap system
//! calls (and on `launch`'s one borrow handed across the fork), nowhere else.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("the crate's sources are readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn unsafe_code_is_allowed_only_in_the_system_call_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deluxe/src");
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("lib.rs");
    assert!(
        lib.lines()
            .any(|line| line.trim() == "#![deny(unsafe_code)]"),
        "deluxe/src/lib.rs must deny unsafe_code"
    );
    let mut files = Vec::new();
    sources(&root, &mut files);
    // Each allowance, as `file:item`: the file (its path's end, so that the rule survives a
    // move of the area modules) and the first line of the item it allows.
    let mut allowed: Vec<String> = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a source file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (index, line) in lines.iter().enumerate() {
            if line.starts_with("#[allow(unsafe_code)]")
                || line.starts_with("#![allow(unsafe_code)]")
            {
                let item = lines[index + 1..]
                    .iter()
                    .find(|next| !next.starts_with("#["))
                    .copied()
                    .unwrap_or_default();
                let name = file
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                allowed.push(format!("{name}:{item}"));
            }
        }
    }
    let expected = [
        ("daemon/mod.rs", "mod sys;"),
        ("daemon/mod.rs", "mod sys_handover;"),
        ("command.rs", "pub(crate) mod sys;"),
        ("users.rs", "mod sys;"),
        ("command/windows.rs", "mod job;"),
        ("daemon/launch.rs", "unsafe impl Send for Borrowed {}"),
        (
            "daemon/launch.rs",
            "fn fork_locked(borrowed: &Borrowed, locks: OutputLocks) -> io::Result<(libc::pid_t, OwnedFd)> {",
        ),
        ("daemon/launch.rs", "unsafe fn become_daemon<D: Daemon>("),
    ];
    allowed.sort();
    let unexpected: Vec<&String> = allowed
        .iter()
        .filter(|found| {
            !expected
                .iter()
                .any(|(file, item)| found.ends_with(&format!("{file}:{item}")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "unsafe allowed outside the system-call modules: {unexpected:#?}"
    );
    assert_eq!(allowed.len(), expected.len(), "allowances: {allowed:#?}");
}
