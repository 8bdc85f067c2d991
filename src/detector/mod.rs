//! The detector model: one file per detector in `detectors/`, parsed and
//! validated once into a [`Detector`]; [`DetectorSet`] says which set a run
//! uses (built in, or a folder). The local engine evaluates it
//! ([`Detector::matches`], [`Detector::contribution`], [`Detector::entity`]);
//! the OpenSearch renderer derives the plugin's JSON from the same value.
//! Rule files ([`Rule`], in `detectors/rules/`) name events that need no
//! baseline; the engine reports every match. Sigma rules ([`sigma`], from
//! `--sigma DIR` or a folder's `sigma/`) are read into the same model.

pub mod correlation;
mod model;
mod parse;
mod rule;
mod set;
mod shipped;
pub mod sigma;

pub use model::{
    AlertThresholds, Detector, Direction, Entity, ErrorFilter, FieldMatch, Filter, Imputation,
    ValueSpec,
};
pub use parse::{load_dir, parse_detector, DetectorError, Problem};
pub use rule::{load_rules, parse_rule, valid_technique, Match, NewValue, Rule, Scope, Valued};
pub use set::{DetectorSet, SetError, Source};
pub use shipped::{shipped, shipped_rules};
pub use sigma::{load_sigma, parse_sigma};
