//! Deploying trailwatch through CloudFormation: the typed deploy
//! configuration ([`config`]), validated before any AWS call, and the
//! template rendered from it ([`template`]), which is what `trailwatch plan`
//! writes and `trailwatch deploy` will create.

pub mod config;
pub mod template;

pub use config::{DeployConfig, DeployOptions, ExistingDomain, Vpc};
pub use template::render;
