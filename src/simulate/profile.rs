//! Organisation profiles: a background scale and the [`Quirk`]s that make an
//! organisation hard to watch, by name, for `simulate --profile` and `eval`.

use super::Quirk;

/// An organisation to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub description: &'static str,
    /// Background rate multiplier ([`super::SimConfig::scale`]).
    pub scale: f64,
    pub quirks: &'static [Quirk],
}

/// The profiles, easiest first.
pub const PROFILES: [Profile; 4] = [
    Profile {
        name: "small-org",
        description: "three accounts, five regions, about 30,000 events a day",
        scale: 1.0,
        quirks: &[],
    },
    Profile {
        name: "busy-org",
        description: "the same organisation four times as busy",
        scale: 4.0,
        quirks: &[],
    },
    Profile {
        name: "messy-org",
        description: "six accounts, ten regions, and everything that looks like an incident and is not: bursty automation, deploy waves, night on-call, a new team member, credential rotation, a regional failover, a new service",
        scale: 1.0,
        quirks: &Quirk::ALL,
    },
    Profile {
        name: "busy-admin",
        description: "the small organisation with an administrator who every working day does what attacks look like: reads secrets, opens sessions on instances, shares snapshots and images with the organisation's own accounts, makes keys and passwords for new people, opens web ports to the world",
        scale: 1.0,
        quirks: &[Quirk::BusyAdmin],
    },
];

/// The profile called `name`, or an error naming the ones there are.
pub fn profile(name: &str) -> Result<Profile, String> {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
            format!("{name:?} is not a profile; use one of {}", names.join(", "))
        })
}
