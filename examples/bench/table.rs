//! The table: one row per figure, ours against its peer, and the goal the ratio is held to.
//!
//! A new row is `Row::new(figure, peer, ours, theirs)` and its goal: `.ratio_at_most(t)` when
//! lower is better (times, sizes), `.ratio_at_least(t)` when higher is better (rates),
//! `.count_at_most(n)` for an absolute bound; none for a comparison held to no goal.

use crate::stats::Stats;

/// One row of the table.
pub struct Row {
    pub figure: String,
    pub peer: String,
    pub ours: Stats,
    pub theirs: Stats,
    goal: Goal,
}

#[derive(Clone, Copy)]
enum Goal {
    /// Ours / peer's time (or size): met when at most this.
    RatioAtMost(f64),
    /// Ours / peer's rate: met when at least this.
    RatioAtLeast(f64),
    /// An absolute count of ours: met when at most this.
    CountAtMost(f64),
    /// A comparison held to no goal (the peers).
    None,
}

impl Row {
    /// A comparison with a peer, held to no goal until one is set.
    pub fn new(
        figure: impl Into<String>,
        peer: impl Into<String>,
        ours: Stats,
        theirs: Stats,
    ) -> Self {
        Self {
            figure: figure.into(),
            peer: peer.into(),
            ours,
            theirs,
            goal: Goal::None,
        }
    }

    /// A time or a size, lower is better: met when ours / theirs is at most `target`.
    pub fn ratio_at_most(self, target: f64) -> Self {
        Self {
            goal: Goal::RatioAtMost(target),
            ..self
        }
    }

    /// A rate, higher is better: met when ours / theirs is at least `target`.
    pub fn ratio_at_least(self, target: f64) -> Self {
        Self {
            goal: Goal::RatioAtLeast(target),
            ..self
        }
    }

    /// An absolute count: met when ours is at most `target`, whatever the peer's.
    pub fn count_at_most(self, target: f64) -> Self {
        Self {
            goal: Goal::CountAtMost(target),
            ..self
        }
    }

    fn ratio(&self) -> f64 {
        self.ours.median / self.theirs.median
    }

    fn ratio_text(&self) -> String {
        match self.goal {
            Goal::CountAtMost(_) => "-".into(),
            _ => format!("{:.3}x", self.ratio()),
        }
    }

    fn target_text(&self) -> String {
        match self.goal {
            Goal::RatioAtMost(target) => format!("<= {target:.2}x"),
            Goal::RatioAtLeast(target) => format!(">= {target:.2}x"),
            Goal::CountAtMost(target) => format!("<= {target}"),
            Goal::None => "-".into(),
        }
    }

    fn met_text(&self) -> &'static str {
        let met = match self.goal {
            Goal::RatioAtMost(target) => self.ratio() <= target,
            Goal::RatioAtLeast(target) => self.ratio() >= target,
            Goal::CountAtMost(target) => self.ours.median <= target,
            Goal::None => return "-",
        };
        if met { "yes" } else { "NO" }
    }
}

/// Our figure in the row named `figure`, for the peers compared with it.
pub fn ours(rows: &[Row], figure: &str) -> Stats {
    rows.iter().find(|row| row.figure == figure).map_or_else(
        || panic!("{figure:?} is measured before the peers"),
        |row| row.ours.clone(),
    )
}

/// The table, in Markdown.
pub fn print(rows: &[Row]) {
    println!(
        "| figure | deluxe | peer | peer's figure | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.figure,
            cell(&row.ours),
            row.peer,
            cell(&row.theirs),
            row.ratio_text(),
            row.target_text(),
            row.met_text(),
        );
    }
}

fn cell(stats: &Stats) -> String {
    format!("{:.1} {} (±{:.0}%)", stats.median, stats.unit, stats.spread)
}
