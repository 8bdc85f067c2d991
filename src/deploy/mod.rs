//! Deploying trailwatch through CloudFormation: the typed deploy
//! configuration ([`config`]), validated before any AWS call; the template
//! rendered from it ([`template`]); the Lambda package ([`package`]); and the
//! AWS edges that apply it: the artifact bucket ([`artifacts`]) and the stack
//! itself ([`stack`]) with its [`parameters`], whose change sets and events [`changes`] turns into
//! what a person reads; the deploy workflow over them ([`workflow`]); the
//! stack's outputs, typed ([`outputs`]); the data a deleted stack keeps
//! ([`retained`]); and the notification an existing trail bucket sends
//! the engine ([`notification`]).

pub mod artifacts;
pub mod changes;
pub mod config;
pub mod estimate;
pub mod notification;
pub mod outputs;
pub mod package;
pub mod parameters;
pub mod retained;
pub mod stack;
pub mod template;
pub mod workflow;

pub use config::{DeployConfig, DeployOptions, ExistingDomain, Ingest, Vpc, WhoPages};
pub use template::render;
