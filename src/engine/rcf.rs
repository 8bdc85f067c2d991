//! Scoring one series with a thresholded random cut forest, as the OpenSearch
//! anomaly detection plugin does.
//!
//! The forest is `krcflib` (imported as `rcflib`), a republication of AWS's own
//! Rust RCF, the sibling of the Java library the plugin runs. What the plugin
//! adds around it is done here:
//! - confidence: krcflib leaves `data_confidence` at 0 in this mode, so it is
//!   computed as the plugin's RCF does, from the time decay, the values seen
//!   and `output_after`: 0 until 32 values, then rising towards 1.
//!
//! The plugin's rules (ignore small deviations) belong to the detector and are
//! applied by [`super::rcf_state`].
//!
//! The forest can fail. krcflib 4.0.2 (the newest) places a cut that it
//! believes separates a new point from a subtree when rounding has used up
//! its random range (`Cut::random_cut_and_separation`'s fallback when the
//! factor is within about 1e-7 of 1): points of that subtree on the cut's far
//! side are then filed where a later search cannot find them, and deleting
//! one fails with "deleting wrong node". It is rare (about once in 10^8 to
//! 10^9 cuts), so a run of a few thousand per-entity models meets it. A
//! forest that failed is broken for good: [`RcfScorer`] refuses further
//! values with [`ModelError`] and [`super::rcf_state`] rebuilds the series'
//! model from its history. Errors and panics alike become a
//! [`ModelError`]; nothing from the forest ends a run.

use rcflib::rcf::RCFOptionsBuilder;
use rcflib::trcf::basictrcf::{BasicTRCF, BasicTRCFBuilder, TRCFOptionsBuilder};
use rcflib::trcf::types::{ForestMode, TransformMethod};

/// What the scorer says about the newest value.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Score {
    pub score: f64,
    /// 0 when normal, up to 1.
    pub grade: f64,
    pub confidence: f64,
    /// What the model expected at the anomalous interval (only when `grade > 0`).
    pub expected: Option<f64>,
    /// 0 when the anomaly is the newest interval, -k when it is k intervals back
    /// (RCF can place it earlier in the shingle).
    pub relative_index: i32,
}

/// Why a model could not score a value. The model is unusable after it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(pub String);

/// Anything that scores a series one value at a time, in time order. After
/// an error the scorer is broken: it is replaced, never fed again.
pub trait Scorer: Send {
    fn update(&mut self, value: f64) -> Result<Score, ModelError>;
}

/// Model settings; [`RcfConfig::plugin_defaults`] are the plugin's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RcfConfig {
    pub trees: usize,
    pub sample_size: usize,
    pub shingle_size: usize,
    pub time_decay: f64,
    pub output_after: usize,
    pub seed: u64,
    /// The share of each tree's bounding boxes kept between updates: a
    /// cache that trades memory for speed and leaves every score as it
    /// is. The plugin keeps none for real-time models, which update once
    /// an interval (`REAL_TIME_BOUNDING_BOX_CACHE_RATIO = 0`); a full
    /// cache makes a model of 50 trees several times larger.
    pub bounding_box_cache: f64,
}

/// Values a model sees before it reports anything (the plugin's).
pub const OUTPUT_AFTER: usize = 32;

impl RcfConfig {
    pub fn plugin_defaults(shingle_size: usize, seed: u64) -> Self {
        RcfConfig {
            trees: 50,
            sample_size: 256,
            shingle_size,
            time_decay: 1.0 / 2560.0,
            output_after: OUTPUT_AFTER,
            seed,
            bounding_box_cache: 0.0,
        }
    }
}

/// The plugin's data confidence: how much of the model's (decayed) memory is
/// filled with real observations beyond the first `output_after`.
pub fn confidence(values_seen: u64, time_decay: f64, output_after: u64) -> f64 {
    let exponent = values_seen as f64 * time_decay;
    if exponent == 0.0 {
        return 0.0;
    }
    if exponent >= 20.0 {
        return 1.0;
    }
    let total = exponent.exp();
    let warm = (time_decay * values_seen.min(output_after) as f64).exp();
    ((total - warm) / (total - 1.0)).clamp(0.0, 1.0)
}

/// A thresholded RCF over one value per interval.
pub struct RcfScorer {
    forest: BasicTRCF,
    config: RcfConfig,
    seen: u64,
    /// The last `shingle_size` values, newest last, to report the actual value
    /// of an anomaly placed earlier in the shingle.
    recent: Vec<f64>,
    /// Set when the forest failed; every later value gets it back.
    broken: Option<ModelError>,
}

impl RcfScorer {
    pub fn new(config: RcfConfig) -> Self {
        let forest = BasicTRCFBuilder::new(1, config.shingle_size)
            .tree_capacity(config.sample_size)
            .number_of_trees(config.trees)
            .time_decay(config.time_decay)
            .output_after(config.output_after)
            .random_seed(config.seed)
            .bounding_box_cache_fraction(config.bounding_box_cache)
            .forest_mode(ForestMode::STANDARD)
            .transform_method(TransformMethod::NORMALIZE)
            .parallel_enabled(false)
            .build()
            .expect("the RCF settings are fixed and valid");
        RcfScorer {
            forest,
            config,
            seen: 0,
            recent: Vec::with_capacity(config.shingle_size),
            broken: None,
        }
    }

    /// The value `relative_index` intervals back (0 = newest).
    pub fn recent_value(&self, relative_index: i32) -> Option<f64> {
        let back = usize::try_from(-relative_index).ok()?;
        self.recent
            .len()
            .checked_sub(back + 1)
            .map(|i| self.recent[i])
    }
}

/// The largest magnitude a model is fed: far above any count a series
/// holds, small enough that the forest's single-precision arithmetic
/// (squares, for normalisation) stays finite.
pub const MAX_MODEL_VALUE: f64 = 1e15;

impl Scorer for RcfScorer {
    fn update(&mut self, value: f64) -> Result<Score, ModelError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        // Never NaN or infinite into the forest: it panics on them.
        let value = if value.is_nan() {
            0.0
        } else {
            value.clamp(-MAX_MODEL_VALUE, MAX_MODEL_VALUE)
        };
        if self.recent.len() == self.config.shingle_size {
            self.recent.remove(0);
        }
        self.recent.push(value);
        let (forest, seen) = (&mut self.forest, self.seen);
        let processed = guard::quietly(|| forest.process(&[value as f32], seen))
            .and_then(|r| r.map_err(|e| format!("{e:?}")));
        let d = match processed {
            Ok(d) => d,
            Err(message) => {
                let e = ModelError(format!("the random cut forest failed: {message}"));
                self.broken = Some(e.clone());
                return Err(e);
            }
        };
        self.seen += 1;
        let confidence = confidence(
            self.seen,
            self.config.time_decay,
            self.config.output_after as u64,
        );
        let expected = d
            .last_anomaly
            .as_ref()
            .filter(|_| d.anomaly_grade > 0.0)
            .and_then(|a| a.expected_values_list.first())
            .and_then(|v| v.first())
            .map(|&x| x as f64);
        Ok(Score {
            score: d.score as f64,
            grade: d.anomaly_grade as f64,
            confidence,
            expected,
            relative_index: d.relative_index.min(0),
        })
    }
}

/// Values of its history a failed model is rebuilt from: a week at the
/// usual 10-minute interval, after which the plugin's confidence is 0.97
/// and the forest's time decay has let most older points go.
pub const REBUILD_HISTORY: i64 = 1008;

/// Failures one series may have in a run before it is set aside.
pub const MAX_REBUILDS: u32 = 3;

/// A new model for a series whose model failed on `value`: the next
/// generation from `make` learns `history` (the values before it, oldest
/// first), then scores `value`. While one fails the next is tried, up to
/// [`MAX_REBUILDS`] generations in all; `None` when they are spent and the
/// series must be set aside.
pub fn relearn(
    make: &dyn Fn(u32) -> Box<dyn Scorer>,
    generation: &mut u32,
    history: &[f64],
    value: f64,
) -> Option<(Box<dyn Scorer>, Score)> {
    while *generation < MAX_REBUILDS {
        *generation += 1;
        let mut scorer = make(*generation);
        if history.iter().all(|&v| scorer.update(v).is_ok()) {
            if let Ok(score) = scorer.update(value) {
                return Some((scorer, score));
            }
        }
    }
    None
}

/// Panics inside the forest, caught without the panic message that would
/// read as a crash: the failure is reported once, as a warning, by the run.
mod guard {
    use std::cell::Cell;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::Once;

    thread_local! {
        static QUIET: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f`, turning a panic into its message. Other threads' panics
    /// (and this one's outside `f`) are reported as before.
    pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                if !QUIET.with(Cell::get) {
                    previous(info);
                }
            }));
        });
        QUIET.with(|q| q.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        QUIET.with(|q| q.set(false));
        result.map_err(|payload| {
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(series: &[f64]) -> Vec<Score> {
        let mut s = RcfScorer::new(RcfConfig::plugin_defaults(8, 7));
        series.iter().map(|&x| s.update(x).unwrap()).collect()
    }

    fn noisy_daily(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                20.0 + 10.0 * (i as f64 * std::f64::consts::TAU / 144.0).sin()
                    + ((i * 7919) % 5) as f64
            })
            .collect()
    }

    fn flagged(scores: &[Score], min_grade: f64) -> Vec<usize> {
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.grade >= min_grade && s.confidence >= 0.5)
            .map(|(i, s)| (i as i64 + s.relative_index as i64) as usize)
            .collect()
    }

    #[test]
    fn the_bounding_box_cache_changes_no_score() {
        let mut series = noisy_daily(700);
        series[500] += 90.0;
        let with = |cache: f64| -> Vec<Score> {
            let mut s = RcfScorer::new(RcfConfig {
                bounding_box_cache: cache,
                ..RcfConfig::plugin_defaults(8, 7)
            });
            series.iter().map(|&x| s.update(x).unwrap()).collect()
        };
        let (none, full) = (with(0.0), with(1.0));
        assert_eq!(none, full);
        assert!(none[500].grade > 0.0, "the spike is graded either way");
    }

    #[test]
    fn known_spikes_in_a_seasonal_series_are_the_only_anomalies() {
        let mut series = noisy_daily(600);
        for i in [300, 420, 530] {
            series[i] += 80.0;
        }
        let scores = run(&series);
        // Every spike and nothing else gets a grade; a spike of a size the
        // forest has already seen twice is less surprising than the first.
        assert_eq!(flagged(&scores, 0.01), [300, 420, 530]);
        assert!(
            scores[300].grade >= 0.7 && scores[420].grade >= 0.7,
            "{:?}",
            &scores[300]
        );
        let s = scores[300];
        assert!(s.confidence > 0.7 && s.confidence < 1.0, "{s:?}");
        let expected = s.expected.unwrap();
        assert!(
            (5.0..45.0).contains(&expected),
            "expected {expected} should be near the normal level"
        );
    }

    #[test]
    fn a_flat_series_never_alarms() {
        assert!(flagged(&run(&[0.0; 300]), 0.01).is_empty());
        assert!(flagged(&run(&[5.0; 300]), 0.01).is_empty());
    }

    #[test]
    fn a_sparse_series_alarms_on_a_burst_not_on_its_usual_blips() {
        let mut series: Vec<f64> = (0..400)
            .map(|i| if i % 37 == 0 { 1.0 } else { 0.0 })
            .collect();
        series.push(30.0);
        series.extend([0.0; 20]);
        let found = flagged(&run(&series), 0.7);
        assert_eq!(found, [400]);
    }

    #[test]
    fn nothing_is_reported_before_the_model_has_seen_enough() {
        let mut series = vec![1.0; 20];
        series[10] = 100.0;
        let scores = run(&series);
        assert!(scores.iter().all(|s| s.confidence == 0.0));
        assert!(flagged(&scores, 0.01).is_empty());
    }

    /// A RunInstances record with `maxCount: 1e300` panicked here ("numbers
    /// should be finite").
    #[test]
    fn absurd_and_non_finite_values_never_panic() {
        let mut series = noisy_daily(100);
        series.extend([
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -1e308,
            f64::MAX,
        ]);
        series.extend(noisy_daily(50));
        let scores = run(&series);
        assert_eq!(scores.len(), series.len());
        assert!(scores
            .iter()
            .all(|s| s.score.is_finite() && s.grade.is_finite()));
    }

    #[test]
    fn a_panic_inside_the_forest_comes_back_as_its_message() {
        assert_eq!(guard::quietly(|| 2 + 2), Ok(4));
        let caught = guard::quietly(|| -> u32 { panic!("deleting wrong node") });
        assert_eq!(caught, Err("deleting wrong node".to_string()));
        let owned = guard::quietly(|| -> u32 { panic!("node {}", 7) });
        assert_eq!(owned, Err("node 7".to_string()));
    }

    #[test]
    fn relearn_tries_new_generations_until_one_scores() {
        struct FailsFrom(usize, usize);
        impl Scorer for FailsFrom {
            fn update(&mut self, _: f64) -> Result<Score, ModelError> {
                self.1 += 1;
                if self.1 > self.0 {
                    return Err(ModelError("broken".into()));
                }
                Ok(Score::default())
            }
        }
        // Generation 1 fails within its history, generation 2 on the value.
        let make = |generation: u32| -> Box<dyn Scorer> {
            Box::new(FailsFrom([usize::MAX, 1, 3, 9][generation as usize], 0))
        };
        let mut generation = 0;
        let rebuilt = relearn(&make, &mut generation, &[1.0, 2.0, 3.0], 4.0);
        assert!(rebuilt.is_some());
        assert_eq!(generation, 3);
        // Spent: nothing more is tried.
        assert!(relearn(&make, &mut generation, &[], 4.0).is_none());
        assert_eq!(generation, MAX_REBUILDS);
    }

    #[test]
    fn confidence_follows_the_plugin_formula() {
        let decay = 1.0 / 2560.0;
        assert_eq!(confidence(0, decay, 32), 0.0);
        assert_eq!(confidence(32, decay, 32), 0.0);
        let c144 = confidence(144, decay, 32);
        let c1008 = confidence(1008, decay, 32);
        assert!(c144 > 0.7 && c144 < c1008 && c1008 < 1.0, "{c144} {c1008}");
        assert_eq!(confidence(60_000, decay, 32), 1.0);
    }
}
