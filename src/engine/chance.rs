//! Chance: how likely a window's count is under its baseline, and the daily
//! false-alarm budget that turns that likelihood into a threshold and a grade.
//!
//! A rate test runs once a minute for every series it watches: thousands of
//! tests a day. A fixed per-series rule ("mean plus three deviations")
//! passes by chance many times a day at low rates. Here instead:
//! - a window's count is modelled by the baseline's predictive distribution
//!   ([`CountModel`]): negative binomial with the baseline's mean, its
//!   overdispersion (bursty series vary more than Poisson), and the
//!   uncertainty of a mean estimated from few calls;
//! - a [`Budget`] of chance alarms a day, shared by every series of a kind,
//!   gives the tail probability a window must fall under (Bonferroni over
//!   series × windows a day), so the expected number of chance alarms stays
//!   under the budget however many APIs an organisation has;
//! - [`grade`] maps a tail probability to a grade that means the same in
//!   every kind: 0.7 at the budget's threshold, 0.1 more for every ten times
//!   rarer than that, 1.0 at a thousand times rarer.

/// Minutes in a day: the number of windows a per-minute test runs a day.
pub const WINDOWS_A_DAY: f64 = 1440.0;

/// The default budget of each kind (and insight type): chance findings a day
/// at its threshold grade.
pub const DEFAULT_BUDGET_PER_DAY: f64 = 0.2;

/// The grade of a finding exactly at its kind's threshold.
pub const THRESHOLD_GRADE: f64 = 0.7;

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, nine terms; about 15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The distribution of one window's count under the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountModel {
    pub mean: f64,
    pub variance: f64,
}

/// The prior count (Jeffreys') that keeps a baseline with no calls from
/// predicting exactly none.
const PRIOR_CALLS: f64 = 0.5;

impl CountModel {
    /// The predictive model from baseline windows of the same length as the
    /// tested one (their counts): mean `(K + ½) / n` for `K` calls in `n`
    /// windows; variance the mean times the baseline's dispersion (its
    /// variance over its mean, at least 1), plus what the mean's own
    /// uncertainty adds (`mean² / (K + ½)`). `None` without windows.
    pub fn from_windows(counts: &[f64]) -> Option<CountModel> {
        if counts.is_empty() {
            return None;
        }
        let n = counts.len() as f64;
        let calls: f64 = counts.iter().sum();
        let sample_mean = calls / n;
        let dispersion = if sample_mean > 0.0 && n > 1.0 {
            let var = counts
                .iter()
                .map(|c| (c - sample_mean).powi(2))
                .sum::<f64>()
                / (n - 1.0);
            (var / sample_mean).max(1.0)
        } else {
            1.0
        };
        let mean = (calls + PRIOR_CALLS) / n;
        Some(CountModel {
            mean,
            variance: mean * dispersion + mean * mean / (calls + PRIOR_CALLS),
        })
    }

    /// A Poisson model of this mean.
    pub fn poisson(mean: f64) -> CountModel {
        CountModel {
            mean,
            variance: mean,
        }
    }

    /// `P(X ≥ k)`, summed from `k` up (so a tail of 1e-30 is exact, not
    /// lost under 1 − …).
    pub fn tail(&self, k: u64) -> f64 {
        if k == 0 {
            return 1.0;
        }
        let mean = self.mean.max(1e-12);
        if (k as f64) <= mean {
            // The bulk: 1 − P(X < k), summed from 0.
            let below: f64 = (0..k).map(|j| self.ln_pmf(j).exp()).sum();
            return (1.0 - below).clamp(0.0, 1.0);
        }
        let mut term = self.ln_pmf(k).exp();
        let mut sum = 0.0;
        let mut j = k;
        while term > 0.0 && term > sum * 1e-15 && j < k + 100_000 {
            sum += term;
            term *= self.ratio(j);
            j += 1;
        }
        sum.min(1.0)
    }

    /// `ln P(X = k)`.
    fn ln_pmf(&self, k: u64) -> f64 {
        let mean = self.mean.max(1e-12);
        let k = k as f64;
        match self.shape() {
            None => -mean + k * mean.ln() - ln_gamma(k + 1.0),
            Some((r, p)) => {
                ln_gamma(k + r) - ln_gamma(r) - ln_gamma(k + 1.0) + r * p.ln() + k * (1.0 - p).ln()
            }
        }
    }

    /// `P(X = k + 1) / P(X = k)`.
    fn ratio(&self, k: u64) -> f64 {
        let k = k as f64;
        match self.shape() {
            None => self.mean / (k + 1.0),
            Some((r, p)) => (k + r) / (k + 1.0) * (1.0 - p),
        }
    }

    /// The negative binomial's `(r, p)`, or `None` when the variance is the
    /// mean's (Poisson).
    fn shape(&self) -> Option<(f64, f64)> {
        let mean = self.mean.max(1e-12);
        let extra = self.variance - mean;
        if extra <= mean * 1e-9 {
            return None;
        }
        Some((mean * mean / extra, mean / self.variance))
    }

    /// The smallest count whose tail is under `alpha`, and at least
    /// `min_excess` over the mean.
    pub fn threshold(&self, alpha: f64, min_excess: f64) -> u64 {
        let mut k = (self.mean + min_excess).ceil().max(1.0) as u64;
        while self.tail(k) >= alpha {
            // Step by the spread, then settle: tails fall fast past the mean.
            k += 1 + (self.variance.sqrt() / 4.0) as u64;
        }
        while k > 1 && (k - 1) as f64 >= self.mean + min_excess && self.tail(k - 1) < alpha {
            k -= 1;
        }
        k
    }
}

/// A kind's daily budget of chance alarms, shared by the series it watches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Chance alarms a day the kind may raise, at most, on average.
    pub per_day: f64,
    /// Tests a day: series × windows a day.
    pub tests_per_day: f64,
}

impl Budget {
    /// A budget of `per_day` over `series` series tested every minute.
    pub fn per_minute(per_day: f64, series: usize) -> Budget {
        Budget {
            per_day,
            tests_per_day: series.max(1) as f64 * WINDOWS_A_DAY,
        }
    }

    /// The tail probability a window must fall under.
    pub fn alpha(&self) -> f64 {
        self.per_day / self.tests_per_day
    }

    /// The grade of a finding with tail probability `p`.
    pub fn grade(&self, p: f64) -> f64 {
        grade(p * self.tests_per_day, self.per_day)
    }
}

/// The grade of a finding that chance alone would produce `per_day` times a
/// day, against a budget of `budget` a day: 0.7 at the budget, 0.1 more for
/// each factor of ten rarer, between 0 and 1.
pub fn grade(per_day: f64, budget: f64) -> f64 {
    let per_day = per_day.max(1e-300);
    let g = THRESHOLD_GRADE + 0.1 * (budget / per_day).log10();
    (g.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_matches_factorials_and_half_integers() {
        let mut f = 1.0f64;
        for n in 1..30u32 {
            f *= n as f64;
            assert!(close(ln_gamma(n as f64 + 1.0), f.ln(), 1e-12), "{n}");
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(1e6), 12_815_504.569_147_61, 1e-12));
    }

    #[test]
    fn poisson_tails_are_the_textbook_values() {
        let m = CountModel::poisson(2.5);
        assert_eq!(m.tail(0), 1.0);
        // P(X ≥ 1) = 1 − e^−2.5; P(X ≥ 8) = 1 − Σ₀⁷ e^−2.5 2.5^k / k!
        assert!(close(m.tail(1), 1.0 - (-2.5f64).exp(), 1e-12));
        assert!(
            close(m.tail(8), 0.004_246_695_489_344_6, 1e-9),
            "{}",
            m.tail(8)
        );
        // Far tails are exact, not 1 − 1.
        let far = m.tail(60);
        assert!(far > 0.0 && far < 1e-40, "{far}");
        let sum: f64 = (0..200).map(|k| m.ln_pmf(k).exp()).sum();
        assert!(close(sum, 1.0, 1e-12));
    }

    #[test]
    fn overdispersion_widens_the_tail() {
        let poisson = CountModel::poisson(2.5);
        let bursty = CountModel {
            mean: 2.5,
            variance: 10.0,
        };
        assert!(bursty.tail(12) > 100.0 * poisson.tail(12));
        let sum: f64 = (0..2000).map(|k| bursty.ln_pmf(k).exp()).sum();
        assert!(close(sum, 1.0, 1e-9), "{sum}");
        // NB mean: Σ k P(k).
        let mean: f64 = (0..2000).map(|k| k as f64 * bursty.ln_pmf(k).exp()).sum();
        assert!(close(mean, 2.5, 1e-9), "{mean}");
    }

    #[test]
    fn a_baseline_of_few_calls_is_less_sure_than_one_of_many() {
        // The same mean, 0.5 a window, from 10 windows or from 1000.
        let few = CountModel::from_windows(&[0., 1., 0., 1., 0., 1., 0., 1., 0., 1.]).unwrap();
        let many: Vec<f64> = (0..1000).map(|i| (i % 2) as f64).collect();
        let many = CountModel::from_windows(&many).unwrap();
        assert!(few.tail(6) > many.tail(6));
        // No calls at all still predicts a little, not nothing.
        let none = CountModel::from_windows(&[0.0; 91]).unwrap();
        assert!(none.mean > 0.0 && none.tail(1) < 0.01);
        assert!(CountModel::from_windows(&[]).is_none());
    }

    #[test]
    fn the_budget_is_shared_by_every_series_and_sets_the_threshold() {
        let b = Budget::per_minute(0.2, 500);
        assert!(close(b.alpha(), 0.2 / (500.0 * 1440.0), 1e-12));
        let m = CountModel::poisson(2.5);
        let k = m.threshold(b.alpha(), 5.0);
        assert!(m.tail(k) < b.alpha());
        assert!(m.tail(k - 1) >= b.alpha());
        // The minimum excess holds even where the tail alone would allow less.
        assert_eq!(CountModel::poisson(0.01).threshold(0.5, 5.0), 6);
    }

    #[test]
    fn grades_mean_chance_alarms_a_day_against_the_budget() {
        let b = Budget::per_minute(0.2, 100);
        assert_eq!(b.grade(b.alpha()), THRESHOLD_GRADE);
        assert_eq!(b.grade(b.alpha() / 10.0), 0.8);
        assert_eq!(b.grade(b.alpha() / 1000.0), 1.0);
        assert_eq!(b.grade(1e-300), 1.0);
        assert_eq!(grade(2e6, 0.2), 0.0);
        assert_eq!(grade(0.02, 0.2), 0.8);
    }
}
