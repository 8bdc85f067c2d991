//! The typed detector and how it applies to one record.

use crate::cloudtrail::{quantity, FieldPath, FieldValue, Implausible, Record};
use std::path::PathBuf;
use std::time::Duration;

/// A validated detector definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    pub name: String,
    pub description: String,
    pub filter: Filter,
    pub value: ValueSpec,
    /// Zero, one or two fields; with any, one model per entity (high cardinality).
    pub category_fields: Vec<FieldPath>,
    pub interval: Duration,
    pub window_delay: Duration,
    pub shingle_size: usize,
    pub alert: AlertThresholds,
    /// What the OpenSearch plugin puts in an interval with no data.
    pub imputation: Imputation,
    /// The file it came from.
    pub source: PathBuf,
}

/// What the anomaly detection plugin feeds its model for an interval with
/// no matching records (its `imputation_option`). The local engine always
/// scores such an interval as zero.
///
/// On a mostly empty series, `Zero` keeps the plugin's confidence low for
/// good (it falls with each imputed interval), so it grades nothing, a
/// crypto-mining burst included; without imputation the plugin models only
/// the intervals that have data and grades a burst 1.0 (recorded on the
/// real plugin, `53-ad-imputation-on-sparse-series.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imputation {
    /// Skip empty intervals: for sparse series that alert on rises.
    None,
    /// An empty interval is zero: for dense series where a drop matters.
    Zero,
    /// An empty interval repeats the last value.
    Previous,
}

impl Imputation {
    /// The file's word for it.
    pub fn word(self) -> &'static str {
        match self {
            Imputation::None => "none",
            Imputation::Zero => "zero",
            Imputation::Previous => "previous",
        }
    }

    /// The default for a detector alerting in `direction`: none when only
    /// rises alert (the series of costly or suspicious calls are sparse);
    /// zero when a drop matters, which a series can only show if empty
    /// intervals count.
    pub fn default_for(direction: Direction) -> Self {
        match direction {
            Direction::Up => Imputation::None,
            Direction::Down | Direction::Both => Imputation::Zero,
        }
    }
}

/// Which records a detector counts. Every part given must match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filter {
    /// Empty: any source.
    pub event_sources: Vec<String>,
    /// Empty: any name.
    pub event_names: Vec<String>,
    pub errors: ErrorFilter,
    pub read_only: Option<bool>,
    /// Empty: any `userIdentity.type`.
    pub user_identity_types: Vec<String>,
    /// Further fields that must hold one of the listed values.
    pub fields: Vec<FieldMatch>,
}

impl Filter {
    /// True when the record matches every part given.
    pub fn matches(&self, r: &Record) -> bool {
        self.matches_event(r) && self.fields.iter().all(|m| m.holds_in(r))
    }

    /// True when the record matches every part but `fields`.
    pub fn matches_event(&self, r: &Record) -> bool {
        (self.event_sources.is_empty() || self.event_sources.iter().any(|s| s == r.event_source()))
            && (self.event_names.is_empty() || self.event_names.iter().any(|n| n == r.event_name()))
            && match &self.errors {
                ErrorFilter::Any => true,
                ErrorFilter::Failed => r.error_code().is_some(),
                ErrorFilter::Succeeded => r.error_code().is_none(),
                ErrorFilter::Codes(codes) => {
                    r.error_code().is_some_and(|c| codes.iter().any(|x| x == c))
                }
            }
            && self
                .read_only
                .is_none_or(|want| r.read_only() == Some(want))
            && (self.user_identity_types.is_empty()
                || r.user_identity()
                    .kind
                    .is_some_and(|k| self.user_identity_types.iter().any(|t| t == k)))
    }
}

impl FieldMatch {
    /// True when some value at the field in `r` is one of `values`.
    pub fn holds_in(&self, r: &Record) -> bool {
        let mut hit = false;
        r.visit(&self.field, &mut |v| {
            hit |= v
                .text()
                .is_some_and(|t| self.values.iter().any(|x| *x == *t));
        });
        hit
    }

    /// The same, in a JSON object (an element of an array a rule looks within).
    pub fn holds_in_object(&self, object: &serde_json::Map<String, serde_json::Value>) -> bool {
        let mut hit = false;
        self.field.visit(object, &mut |v| {
            hit |= FieldValue::Json(v)
                .text()
                .is_some_and(|t| self.values.iter().any(|x| *x == *t));
        });
        hit
    }
}

/// A field that must equal one of `values` (compared as text).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMatch {
    pub field: FieldPath,
    pub values: Vec<String>,
}

/// How `errorCode` filters records.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ErrorFilter {
    /// Successful and failed calls alike.
    #[default]
    Any,
    /// Only calls that returned an error code.
    Failed,
    /// Only calls without an error code.
    Succeeded,
    /// Only calls that returned one of these codes (exact match).
    Codes(Vec<String>),
}

/// The value a detector computes per interval.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSpec {
    /// The number of matching records.
    Count,
    /// The sum of a numeric field over matching records (arrays summed).
    Sum(FieldPath),
    /// The number of distinct values of a field.
    Distinct(FieldPath),
}

/// When an anomaly becomes an alert: the monitor's thresholds (the plugin's
/// defaults are 0.7 and 0.7) and the detector's rules that ignore anomalies
/// too small to matter (the plugin's `rules`, whose default ignores
/// deviations under 20 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertThresholds {
    pub grade: f64,
    pub confidence: f64,
    pub direction: Direction,
    /// Ignore when |actual − expected| < `min_ratio` × expected.
    pub min_ratio: f64,
    /// Ignore when |actual − expected| < `min_margin`.
    pub min_margin: f64,
}

/// Which deviations from the expected value may alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Default for AlertThresholds {
    /// The plugin's: grade and confidence 0.7, either direction, deviations
    /// under 20 % ignored.
    fn default() -> Self {
        AlertThresholds {
            grade: 0.7,
            confidence: 0.7,
            direction: Direction::Both,
            min_ratio: 0.2,
            min_margin: 0.0,
        }
    }
}

impl AlertThresholds {
    /// True when the rules keep an anomaly with these values.
    pub fn keeps(&self, actual: f64, expected: f64) -> bool {
        let diff = actual - expected;
        let direction_ok = match self.direction {
            Direction::Up => diff > 0.0,
            Direction::Down => diff < 0.0,
            Direction::Both => true,
        };
        direction_ok
            && diff.abs() >= self.min_margin
            && diff.abs() >= self.min_ratio * expected.abs()
    }
}

/// The category field values of one entity, in the detector's field order.
pub type Entity = Vec<String>;

impl Detector {
    pub fn is_high_cardinality(&self) -> bool {
        !self.category_fields.is_empty()
    }

    /// Every record field this detector reads beyond the record model's own.
    pub fn field_paths(&self) -> Vec<&FieldPath> {
        let mut paths: Vec<&FieldPath> = self.filter.fields.iter().map(|m| &m.field).collect();
        if let ValueSpec::Sum(p) | ValueSpec::Distinct(p) = &self.value {
            paths.push(p);
        }
        paths.extend(&self.category_fields);
        paths
    }

    /// True when the record is one this detector counts.
    pub fn matches(&self, r: &Record) -> bool {
        self.filter.matches(r)
    }

    /// What a matching record adds to its interval: 1 for a count, the field's
    /// numbers for a sum (none: 0), nothing numeric for a distinct count.
    /// A summed field holding an implausible number (NaN, infinite,
    /// negative, above [`crate::cloudtrail::MAX_QUANTITY`]) is an error: the
    /// record is left out of this detector, and named.
    pub fn contribution(&self, r: &Record) -> Result<f64, Implausible> {
        match &self.value {
            ValueSpec::Count => Ok(1.0),
            ValueSpec::Sum(path) => {
                let mut total = Ok(0.0);
                r.visit(path, &mut |v| {
                    if let Ok(t) = total {
                        total = v.quantity().and_then(|x| quantity(t + x.unwrap_or(0.0)));
                    }
                });
                total
            }
            ValueSpec::Distinct(_) => Ok(0.0),
        }
    }

    /// The value a distinct-count detector counts, if the record has one.
    pub fn distinct_value(&self, r: &Record) -> Option<String> {
        match &self.value {
            ValueSpec::Distinct(path) => r.first_text(path),
            _ => None,
        }
    }

    /// The entity of a record for a high-cardinality detector; `None` when a
    /// category field is missing (the plugin ignores such documents too).
    pub fn entity(&self, r: &Record) -> Option<Entity> {
        let mut out = Entity::new();
        self.entity_into(r, &mut out).then_some(out)
    }

    /// [`Detector::entity`] into a reused buffer (its strings keep their
    /// capacity), so the hot path allocates only for a new entity. False when
    /// a category field is missing.
    pub fn entity_into(&self, r: &Record, out: &mut Entity) -> bool {
        out.resize(self.category_fields.len(), String::new());
        for (f, slot) in self.category_fields.iter().zip(out.iter_mut()) {
            slot.clear();
            let mut found = false;
            r.visit(f, &mut |v| {
                if found {
                    return;
                }
                if let Some(text) = v.text() {
                    slot.push_str(&text);
                    found = true;
                }
            });
            if !found {
                return false;
            }
        }
        true
    }
}
