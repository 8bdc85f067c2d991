//! Which records the engine believes. CloudTrail content is partly written by
//! whoever makes the call, and files get damaged or mixed up: a record dated
//! 1970 or 9999, or one a year away from the rest of its delivery, would make
//! the engine walk years of empty intervals and learn nothing true. Such a
//! record is left out and named, and the run goes on.
//!
//! - [`TimeFence`]: the span of plausible times. Never before CloudTrail
//!   began, never more than [`FUTURE_MARGIN`] ahead of this machine's clock,
//!   and, per input, never far outside the bulk of that input's own times
//!   ([`TimeFence::around_bulk`]).
//! - [`Exclusions`]: what was left out and why, a few named and the rest
//!   counted, for the caller to report against the input.
//!
//! Implausible numbers (NaN, infinities, negatives, absurd sizes) are judged
//! where they are read, by [`crate::cloudtrail::quantity`].

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// How far ahead of this machine's clock a record may be dated (clock skew,
/// time zones written wrong).
pub const FUTURE_MARGIN: Duration = Duration::days(1);

/// The least spread around the bulk of an input's times: CloudTrail delivers
/// within minutes, so a record a day from the rest of its delivery is not
/// late, it is wrong.
pub const BULK_MARGIN: Duration = Duration::days(1);

/// Records named one by one per input; the rest are counted.
pub const NAMED: usize = 10;

/// CloudTrail's launch day: no genuine record is older.
pub fn cloudtrail_launch() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2013, 11, 13)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// The span of times a record may have, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeFence {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// What counts as the future: [`FUTURE_MARGIN`] after this machine's clock.
    pub future: DateTime<Utc>,
}

impl TimeFence {
    /// From CloudTrail's launch to [`FUTURE_MARGIN`] after `now`.
    pub fn plausible(now: DateTime<Utc>) -> Self {
        TimeFence {
            not_before: cloudtrail_launch(),
            not_after: now + FUTURE_MARGIN,
            future: now + FUTURE_MARGIN,
        }
    }

    /// Why `t` is outside the fence, or None when it is inside.
    pub fn reject(&self, t: DateTime<Utc>) -> Option<String> {
        if t < cloudtrail_launch() {
            Some(format!(
                "dated {}, before CloudTrail began ({})",
                t.to_rfc3339(),
                cloudtrail_launch().date_naive()
            ))
        } else if t < self.not_before {
            Some(format!(
                "dated {}, far before the rest of its input (from {})",
                t.to_rfc3339(),
                self.not_before.to_rfc3339()
            ))
        } else if t > self.future {
            Some(format!(
                "dated {}, in the future (more than {} h ahead of this machine's clock)",
                t.to_rfc3339(),
                FUTURE_MARGIN.num_hours()
            ))
        } else if t > self.not_after {
            Some(format!(
                "dated {}, far after the rest of its input (until {})",
                t.to_rfc3339(),
                self.not_after.to_rfc3339()
            ))
        } else {
            None
        }
    }

    /// This fence narrowed around the bulk of `times` (Unix seconds, any
    /// order; sorted here): the middle 90 % of them, widened on each side by
    /// its own width, and by at least [`BULK_MARGIN`]. None when every time
    /// is inside already, so there is nothing to leave out.
    pub fn around_bulk(&self, times: &mut [i64]) -> Option<TimeFence> {
        if times.len() < 2 {
            return None;
        }
        times.sort_unstable();
        let n = times.len();
        let tail = (n - 1) * 5 / 100;
        let (lo, hi) = (times[tail], times[n - 1 - tail]);
        let margin = (hi - lo).max(BULK_MARGIN.num_seconds());
        let (from, to) = (lo.saturating_sub(margin), hi.saturating_add(margin));
        if times[0] >= from && times[n - 1] <= to {
            return None;
        }
        let at = |s: i64| DateTime::from_timestamp(s, 0);
        Some(TimeFence {
            not_before: at(from).map_or(self.not_before, |t| t.max(self.not_before)),
            not_after: at(to).map_or(self.not_after, |t| t.min(self.not_after)),
            future: self.future,
        })
    }
}

/// Records left out of one input: the first [`NAMED`] described, all counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exclusions {
    pub named: Vec<String>,
    pub count: u64,
}

impl Exclusions {
    /// One more record left out; `describe` runs only for the first few.
    pub fn add(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.named.len() < NAMED {
            self.named.push(describe());
        }
    }

    /// The messages to report: each named record, then a count of the rest.
    pub fn messages(&self) -> Vec<String> {
        let mut out = self.named.clone();
        let rest = self.count - self.named.len() as u64;
        if rest > 0 {
            out.push(format!(
                "{rest} more record(s) left out for the same kinds of reason"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn before_cloudtrail_and_far_in_the_future_are_rejected() {
        let fence = TimeFence::plausible(t("2026-12-01T00:00:00Z"));
        assert!(fence.reject(t("2023-07-10T12:00:00Z")).is_none());
        assert!(fence.reject(t("2026-12-01T23:00:00Z")).is_none());
        let old = fence.reject(t("1970-01-01T00:00:00Z")).unwrap();
        assert!(
            old.contains("before CloudTrail began (2013-11-13)"),
            "{old}"
        );
        let ahead = fence.reject(t("9999-12-31T00:00:00Z")).unwrap();
        assert!(ahead.contains("9999-12-31"), "{ahead}");
    }

    #[test]
    fn the_bulk_of_an_input_leaves_out_only_what_is_far_from_it() {
        let fence = TimeFence::plausible(t("2026-12-01T00:00:00Z"));
        let base = t("2023-07-10T12:00:00Z").timestamp();
        // A five-minute delivery: nothing to leave out, even an hour late.
        let mut delivery: Vec<i64> = (0..300).map(|i| base + i).collect();
        delivery.push(base - 3600);
        assert_eq!(fence.around_bulk(&mut delivery), None);
        // The same delivery with a record from a year before.
        delivery.push(base - 365 * 86_400);
        let narrowed = fence.around_bulk(&mut delivery).unwrap();
        assert!(narrowed.reject(t("2022-07-10T12:00:00Z")).is_some());
        assert!(narrowed.reject(t("2023-07-10T11:00:00Z")).is_none());
        // A year-long export spread evenly keeps all of it.
        let mut export: Vec<i64> = (0..365).map(|d| base + d * 86_400).collect();
        assert_eq!(fence.around_bulk(&mut export), None);
        assert_eq!(fence.around_bulk(&mut [base, base + 400 * 86_400]), None);
    }

    #[test]
    fn a_few_are_named_and_the_rest_counted() {
        let mut x = Exclusions::default();
        for i in 0..25 {
            x.add(|| format!("record {i}"));
        }
        let m = x.messages();
        assert_eq!(m.len(), NAMED + 1);
        assert_eq!(
            m[NAMED],
            "15 more record(s) left out for the same kinds of reason"
        );
    }
}
