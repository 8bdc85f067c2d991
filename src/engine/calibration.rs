//! How each kind's grades compare: how often a run's findings of each kind
//! reach a grade, a day, beside what the false-alarm budget promises for
//! insights at that grade (0.7 is the budget, 0.8 a tenth of it, 0.9 a
//! hundredth). RCF keeps the plugin's grade and new activity its own scale,
//! so these rates are how a reader learns what their 0.9 means. On data
//! with no incident, every finding is a chance one.

use super::anomaly::{Anomaly, AnomalyKind};
use super::chance::THRESHOLD_GRADE;
use chrono::{DateTime, Utc};

/// The grades calibration is told at: the budget's threshold and two
/// factors of ten rarer.
pub const GRADES: [f64; 3] = [THRESHOLD_GRADE, 0.8, 0.9];

/// One kind's findings a day at or above each of [`GRADES`], over `days`
/// (at least an hour counts); None when it found nothing.
pub fn grade_rates(anomalies: &[Anomaly], kind: AnomalyKind, days: f64) -> Option<[f64; 3]> {
    let days = days.max(1.0 / 24.0);
    let grades: Vec<f64> = anomalies
        .iter()
        .filter(|a| a.kind == kind)
        .map(|a| a.grade)
        .collect();
    (!grades.is_empty())
        .then(|| GRADES.map(|g| grades.iter().filter(|&&x| x >= g).count() as f64 / days))
}

/// The days from `from` to the last event: what a kind's findings a day are
/// counted over (new activity and insights report only after learning).
pub fn days_between(from: DateTime<Utc>, last_event: DateTime<Utc>) -> f64 {
    ((last_event - from).num_seconds() as f64 / 86_400.0).max(0.0)
}

/// One kind's rates, and the days they were counted over.
#[derive(Debug, Clone, PartialEq)]
pub struct KindRates {
    pub kind: AnomalyKind,
    pub days: f64,
    /// Findings a day at or above each of [`GRADES`].
    pub per_day: [f64; 3],
}

/// Every kind that found something, its findings a day at each of
/// [`GRADES`]: RCF and rules over the whole span, insights and new activity
/// from `learned` on (before it they report nothing).
pub fn by_kind(
    anomalies: &[Anomaly],
    first_event: DateTime<Utc>,
    learned: DateTime<Utc>,
    last_event: DateTime<Utc>,
) -> Vec<KindRates> {
    AnomalyKind::ALL
        .into_iter()
        .filter_map(|kind| {
            let from = match kind {
                AnomalyKind::Insight | AnomalyKind::NewEvent => learned,
                AnomalyKind::Rcf | AnomalyKind::Rule => first_event,
            };
            let days = days_between(from, last_event);
            grade_rates(anomalies, kind, days).map(|per_day| KindRates {
                kind,
                days,
                per_day,
            })
        })
        .collect()
}

/// What the budget lets chance do at each of [`GRADES`], a day, for each
/// insight type with a budget of `budget_per_day`.
pub fn budget_rates(budget_per_day: f64) -> [f64; 3] {
    GRADES.map(|g| budget_per_day * 10f64.powf(-(g - THRESHOLD_GRADE) * 10.0))
}

/// A rate a day as people read it: two decimals, or the digits a small
/// budget needs (0.002).
pub fn rate_text(r: f64) -> String {
    if r == 0.0 || r >= 0.01 {
        format!("{r:.2}")
    } else {
        format!("{}", (r * 1e6).round() / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(kind: AnomalyKind, grade: f64) -> Anomaly {
        let start = "2026-01-07T14:20:00Z".parse().unwrap();
        Anomaly {
            grade,
            ..Anomaly::sample(kind, "arn:aws:iam::1:user/bob", start)
        }
    }

    #[test]
    fn rates_count_each_kind_at_or_above_each_grade_per_day() {
        let found = [
            graded(AnomalyKind::Rcf, 0.95),
            graded(AnomalyKind::Rcf, 0.75),
            graded(AnomalyKind::Rcf, 0.4),
            graded(AnomalyKind::NewEvent, 0.8),
        ];
        assert_eq!(
            grade_rates(&found, AnomalyKind::Rcf, 2.0),
            Some([1.0, 0.5, 0.5])
        );
        assert_eq!(
            grade_rates(&found, AnomalyKind::NewEvent, 2.0),
            Some([0.5, 0.5, 0.0])
        );
        assert_eq!(grade_rates(&found, AnomalyKind::Rule, 2.0), None);
    }

    #[test]
    fn insights_and_new_activity_count_from_the_end_of_learning() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let found = [
            graded(AnomalyKind::Rcf, 1.0),
            graded(AnomalyKind::Insight, 1.0),
        ];
        let rates = by_kind(
            &found,
            t("2026-01-05T00:00:00Z"),
            t("2026-01-06T00:00:00Z"),
            t("2026-01-09T00:00:00Z"),
        );
        let days: Vec<(AnomalyKind, f64)> = rates.iter().map(|r| (r.kind, r.days)).collect();
        assert_eq!(days, [(AnomalyKind::Rcf, 4.0), (AnomalyKind::Insight, 3.0)]);
        assert_eq!(rates[1].per_day, [1.0 / 3.0; 3]);
    }

    #[test]
    fn the_budget_is_ten_times_smaller_for_each_tenth_of_grade() {
        let r = budget_rates(0.2);
        for (got, want) in r.iter().zip([0.2, 0.02, 0.002]) {
            assert!((got - want).abs() < 1e-12, "{r:?}");
        }
        assert_eq!(r.map(rate_text), ["0.20", "0.02", "0.002"]);
        assert_eq!(rate_text(8.6667), "8.67");
    }
}
