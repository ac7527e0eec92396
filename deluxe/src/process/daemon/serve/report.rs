//! What the daemon says about its life: log lines ([`say`]), the service manager's
//! notifications ([`notify`]), and the text of a panic ([`panic_message`]).

use super::super::sys;

/// Says something about the daemon's life: through the `log` crate when the program set up a
/// logger (in the daemon, it writes wherever that logger writes), else as a line on the
/// daemon's stderr (its log file, or `/dev/null`). Either way with the daemon's pid.
pub(crate) fn say(level: log::Level, message: &str) {
    let pid = std::process::id();
    if log::log_enabled!(target: "deluxe", level) {
        log::log!(target: "deluxe", level, "daemon {pid}: {message}");
    } else {
        let _ = sys::write_all(
            sys::stderr(),
            format!("deluxe[{pid}]: {level}: {message}\n").as_bytes(),
        );
    }
}

/// Tells the service manager, if any (`NOTIFY_SOCKET` is set), how the daemon is doing:
/// the readiness protocol of systemd and of `start-stop-daemon --notify-await`.
pub(super) fn notify(runtime_say: impl Fn(&str), states: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        runtime_say(&format!("cannot notify the service manager: {error}"));
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}
