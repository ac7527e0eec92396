//! Samples and their summary: how rounds alternate between ours and the peer's, and the median
//! and spread a row reports.

use std::time::Instant;

/// How much to measure: the rounds of every figure, and whether this is the rough `--quick`
/// pass.
#[derive(Clone, Copy)]
pub struct Plan {
    pub rounds: usize,
    pub quick: bool,
}

impl Plan {
    /// `quick` in a `--quick` pass, `full` otherwise.
    pub fn pick<T>(self, quick: T, full: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// The median of some samples and their spread: the interquartile range, as a percentage of
/// the median.
#[derive(Clone)]
pub struct Stats {
    pub median: f64,
    pub spread: f64,
    pub unit: &'static str,
}

impl Stats {
    pub fn of(mut samples: Vec<f64>, unit: &'static str) -> Self {
        assert!(!samples.is_empty(), "a figure needs at least one sample");
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        let median = at(0.5);
        let spread = at(0.75) - at(0.25);
        Self {
            median,
            // A zero median (no wakeups at all) has no relative spread to speak of.
            spread: if median == 0.0 {
                0.0
            } else {
                spread / median * 100.0
            },
            unit,
        }
    }

    /// A figure measured once (a size, a count, a fixed bound).
    pub fn one(value: f64, unit: &'static str) -> Self {
        Self::of(vec![value], unit)
    }
}

/// Microseconds since `start`.
pub fn micros(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6
}

/// Calls both `times` times, alternating which goes first, so that neither is always the one
/// that runs on a warm (or cold) machine.
pub fn alternately(times: usize, mut ours: impl FnMut(), mut theirs: impl FnMut()) {
    for time in 0..times {
        if time % 2 == 0 {
            ours();
            theirs();
        } else {
            theirs();
            ours();
        }
    }
}

/// Times `calls` calls of each closure per round, alternating which goes first, and returns
/// the per-call times in microseconds of each.
pub fn per_call(
    plan: Plan,
    calls: usize,
    mut ours: impl FnMut(),
    mut theirs: impl FnMut(),
) -> (Vec<f64>, Vec<f64>) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        micros(start) / calls as f64
    };
    // Warm up both (page cache, dynamic loader, allocator).
    time(&mut ours);
    time(&mut theirs);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    alternately(
        plan.rounds,
        || a.push(time(&mut ours)),
        || b.push(time(&mut theirs)),
    );
    (a, b)
}
