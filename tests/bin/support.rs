//! What a helper process holds, read from `/proc`: shared by the helper programs.

/// Open descriptors, threads, and children (zombies too) of this process.
pub fn resources() -> String {
    let fds = std::fs::read_dir("/proc/self/fd").expect("/proc").count();
    let threads = std::fs::read_to_string("/proc/self/status")
        .expect("/proc")
        .lines()
        .find_map(|line| line.strip_prefix("Threads:").map(|n| n.trim().to_owned()))
        .unwrap_or_default();
    let me = std::process::id().to_string();
    let children = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|ppid| ppid == me))
                    .unwrap_or(false)
            })
        })
        .count();
    format!("fds={fds} threads={threads} children={children}")
}
