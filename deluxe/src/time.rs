//! Deadlines: every wait a setting or a bound times, for commands and daemons alike, ends at
//! an instant made here, so that any `Duration` is accepted (`Duration::MAX` included: no
//! overflow panic, no wrap-around). An instant the clock cannot hold is `None`: no end.
//!
//! Plain arithmetic on the monotonic clock: no allocation, no lock, usable after `fork`.
//! (Windows calls use [`deadline_from`] only.)
#![cfg_attr(windows, allow(dead_code))]

use std::time::{Duration, Instant};

/// When a wait of `wait` that starts at `at` ends; `None` (no end: wait however long) when the
/// clock cannot hold that instant.
pub(crate) fn deadline_from(at: Instant, wait: Duration) -> Option<Instant> {
    at.checked_add(wait)
}

/// [`deadline_from`] now.
pub(crate) fn deadline_after(wait: Duration) -> Option<Instant> {
    deadline_from(Instant::now(), wait)
}

/// Whether `deadline` has passed at `now` (never, without one).
pub(crate) fn passed(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|deadline| now >= deadline)
}

/// What is left of a wait at `now`: zero once `deadline` has passed, `Duration::MAX` without
/// one.
pub(crate) fn left_at(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(now)
    })
}

/// [`left_at`] now.
pub(crate) fn time_left(deadline: Option<Instant>) -> Duration {
    left_at(deadline, Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any wait gives a deadline or none, never a panic; what is left never grows.
        #[test]
        fn any_wait_is_accepted(secs in proptest::prelude::any::<u64>(), nanos in 0..1_000_000_000u32) {
            let wait = Duration::new(secs, nanos);
            let now = Instant::now();
            let deadline = deadline_from(now, wait);
            let left = left_at(deadline, now);
            match deadline {
                Some(_) => proptest::prop_assert_eq!(left, wait),
                None => proptest::prop_assert_eq!(left, Duration::MAX),
            }
            proptest::prop_assert!(left_at(deadline, now + Duration::from_secs(1)) <= left);
            proptest::prop_assert_eq!(passed(deadline, now), deadline.is_some() && wait.is_zero());
        }
    }
}
