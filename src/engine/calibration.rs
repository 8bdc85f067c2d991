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

/// What the budget lets chance do at each of [`GRADES`], a day, for each
/// insight type with a budget of `budget_per_day`.
pub fn budget_rates(budget_per_day: f64) -> [f64; 3] {
    GRADES.map(|g| budget_per_day * 10f64.powf(-(g - THRESHOLD_GRADE) * 10.0))
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
    fn the_budget_is_ten_times_smaller_for_each_tenth_of_grade() {
        let r = budget_rates(0.2);
        for (got, want) in r.iter().zip([0.2, 0.02, 0.002]) {
            assert!((got - want).abs() < 1e-12, "{r:?}");
        }
    }
}
