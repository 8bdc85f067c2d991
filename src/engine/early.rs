//! Paging from a partial interval: a detector's interval need not close
//! before what it counts is plainly beyond normal. A Lambda invoking itself
//! 300 times a minute, or a burst of large volumes, shows in its first
//! minutes; waiting for the 10-minute interval (and then for RCF) costs the
//! user those minutes of spend.
//!
//! Each bucket of a counted or summed detector keeps its value per minute
//! ([`ByMinute`]). As an interval fills, its running total is compared,
//! as if it were the whole interval's, with the series' recent history: it
//! must exceed every whole interval of the past week (so a daily scale-out
//! or the usual burst never qualifies), pass the detector's own alert rule
//! against the history's mean, and be rarer than the false-alarm budget
//! allows under that history ([`super::chance`]), which also grades it. The
//! series' model must have learnt (its data confidence at the detector's
//! bar). A partial finding is reported at the first minute that passes, and
//! again each time the total has doubled since, so an incident that needs
//! more (a runaway's thousand calls over its expectation) pages the minute
//! it has it. The interval's own RCF finding follows when it closes.
//!
//! Everything here looks only at the past and the interval so far, so a
//! one-shot run over files finds what `--follow` would have found live.

use super::aggregate::Series;
use super::anomaly::Anomaly;
use super::chance::{Budget, CountModel};
use crate::context::trim_number;
use crate::detector::{Detector, Direction, ValueSpec};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

/// One bucket's value by minute: (minutes after the interval start, value),
/// sorted, only minutes with a contribution.
pub type ByMinute = Vec<(u16, f64)>;

/// Adds `x` at minute `offset`.
pub fn add(by_minute: &mut ByMinute, offset: u16, x: f64) {
    match by_minute.binary_search_by_key(&offset, |(m, _)| *m) {
        Ok(i) => by_minute[i].1 += x,
        Err(i) => by_minute.insert(i, (offset, x)),
    }
}

/// Folds `other` into `into`.
pub fn merge(into: &mut ByMinute, other: &ByMinute) {
    for &(m, x) in other {
        add(into, m, x);
    }
}

/// Whether `d`'s buckets keep their values by minute: it counts or sums,
/// alerts on rises, and its interval is longer than a minute.
pub fn watches(d: &Detector) -> bool {
    !matches!(d.value, ValueSpec::Distinct(_))
        && d.alert.direction == Direction::Up
        && d.interval.as_secs() > 60
}

/// Intervals of history a partial total is held against: a week at the
/// usual 10-minute interval (the model's memory, [`super::rcf::REBUILD_HISTORY`]).
pub const HISTORY: i64 = super::rcf::REBUILD_HISTORY;

/// The largest whole-interval value of a series over the last [`HISTORY`]
/// intervals, kept as intervals are scored (a monotone queue: amortised
/// constant time per interval).
#[derive(Debug, Default)]
pub struct Ceiling {
    /// (interval, value), values strictly falling.
    queue: VecDeque<(i64, f64)>,
}

impl Ceiling {
    /// Records interval `bucket`'s whole value (intervals in order), and
    /// lets go of those the next interval's week no longer holds.
    pub fn push(&mut self, bucket: i64, value: f64) {
        while self.queue.back().is_some_and(|&(_, v)| v <= value) {
            self.queue.pop_back();
        }
        self.queue.push_back((bucket, value));
        while self
            .queue
            .front()
            .is_some_and(|&(b, _)| b < bucket + 1 - HISTORY)
        {
            self.queue.pop_front();
        }
    }

    /// The largest value of the intervals recorded in
    /// `[bucket - HISTORY, bucket)` (0 when none was). It changes nothing,
    /// so a look at an interval still open (`--follow`) leaves the next
    /// interval's week whole.
    pub fn before(&self, bucket: i64) -> f64 {
        // Values fall along the queue: the first in the window is its largest.
        self.queue
            .iter()
            .find(|(b, _)| *b >= bucket - HISTORY && *b < bucket)
            .map_or(0.0, |&(_, v)| v)
    }
}

/// What a partial look at one interval needs besides the series.
pub struct Look<'a> {
    pub detector: &'a Detector,
    /// The interval's index.
    pub bucket: i64,
    /// The first interval the series was scored from.
    pub first: i64,
    /// [`Ceiling::before`] the interval.
    pub ceiling: f64,
    /// The series' model confidence after the interval before.
    pub confidence: f64,
    /// The kind's budget over every series watched.
    pub budget: Budget,
}

/// A partial total that pages: when, and how it compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The end of the minute it was reached.
    pub at: DateTime<Utc>,
    pub total: f64,
    pub grade: f64,
    /// The history's mean whole-interval value.
    pub expected: f64,
    /// The largest whole interval of the past week.
    pub ceiling: f64,
}

/// The minutes of interval `look.bucket` at which its running total pages
/// ([module docs](self)): the first that passes, then each at twice the
/// total last reported. Minutes up to the interval's last only: the whole
/// interval is RCF's to judge.
pub fn crossings(look: &Look, series: &Series) -> Vec<Crossing> {
    let d = look.detector;
    let Some(bucket) = series.get(&look.bucket) else {
        return Vec::new();
    };
    if look.confidence < d.alert.confidence
        || bucket.cell.value() <= look.ceiling
        || bucket.by_minute.is_empty()
    {
        return Vec::new();
    }
    let secs = d.interval.as_secs() as i64;
    let minutes = (secs / 60) as u16;
    let Some(start) = DateTime::from_timestamp(look.bucket * secs, 0) else {
        return Vec::new();
    };
    let mut model: Option<CountModel> = None;
    let mut out: Vec<Crossing> = Vec::new();
    let mut total = 0.0;
    for &(minute, x) in &bucket.by_minute {
        total += x;
        if minute + 1 >= minutes {
            break;
        }
        if total <= look.ceiling || out.last().is_some_and(|c| total < 2.0 * c.total) {
            continue;
        }
        let model = model.get_or_insert_with(|| history_model(series, look));
        if !d.alert.keeps(total, model.mean) {
            continue;
        }
        let p = model.tail(total.ceil() as u64);
        if p >= look.budget.alpha() {
            continue;
        }
        out.push(Crossing {
            at: start + Duration::minutes(i64::from(minute) + 1),
            total,
            grade: look.budget.grade(p),
            expected: model.mean,
            ceiling: look.ceiling,
        });
    }
    out
}

/// The whole-interval values of the [`HISTORY`] intervals before the
/// look's (from the series' first), empty ones as zero, as a count model.
fn history_model(series: &Series, look: &Look) -> CountModel {
    let from = look.first.max(look.bucket - HISTORY);
    let mut values: Vec<f64> = series
        .range(from..look.bucket)
        .map(|(_, b)| b.cell.value())
        .collect();
    let window = (look.bucket - from).max(0) as usize;
    values.extend(std::iter::repeat_n(
        0.0,
        window.saturating_sub(values.len()),
    ));
    CountModel::from_windows(&values).unwrap_or_else(|| CountModel::poisson(0.0))
}

/// The partial finding of a crossing, from the interval's RCF finding
/// (`full`, built over the interval as it stood at the crossing): its span
/// ends at the crossing, and its summary says so after the count ("37 in
/// its first 2 minutes (no whole interval of the past week had more than
/// 6) against 1.0 expected; by …").
pub fn finding(mut full: Anomaly, c: &Crossing, d: &Detector) -> Anomaly {
    let minutes = (c.at - full.start).num_minutes();
    full.detected = c.at;
    full.score = 0.0;
    full.partial = true;
    let what = if d.description.is_empty() {
        &d.name
    } else {
        &d.description
    };
    let head = format!("{what}: {} against ", trim_number(c.total));
    let said = format!(
        "{what}: {} in its first {minutes} minute{} (no whole interval of the past week had more than {}) against ",
        trim_number(c.total),
        if minutes == 1 { "" } else { "s" },
        trim_number(c.ceiling),
    );
    full.summary = match full.summary.strip_prefix(&head) {
        Some(rest) => format!("{said}{rest}"),
        None => format!("{said}{}", full.summary),
    };
    full
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_add_and_merge_in_order() {
        let mut a = ByMinute::new();
        add(&mut a, 3, 1.0);
        add(&mut a, 1, 2.0);
        add(&mut a, 3, 4.0);
        assert_eq!(a, vec![(1, 2.0), (3, 5.0)]);
        let mut b = vec![(0, 1.0), (3, 1.0)];
        merge(&mut b, &a);
        assert_eq!(b, vec![(0, 1.0), (1, 2.0), (3, 6.0)]);
    }

    #[test]
    fn the_ceiling_is_the_largest_of_the_week_before() {
        let mut c = Ceiling::default();
        c.push(0, 5.0);
        c.push(1, 3.0);
        c.push(2, 4.0);
        assert_eq!(c.before(3), 5.0);
        assert_eq!(c.before(HISTORY), 5.0);
        // Interval 0 falls out of the week.
        assert_eq!(c.before(HISTORY + 1), 4.0);
        assert_eq!(c.before(HISTORY + 3), 0.0);
    }
}
