//! What makes an organisation hard to watch: behaviour that looks like an
//! incident and is not. Each [`Quirk`] adds activities to the background,
//! at times that are a pure function of the seed, so that `eval` can check
//! that none of them pages.
//!
//! Quirks that happen once (a new team member, a failover) fall in the last
//! two simulated days, the days `eval` scores; the ones that recur (bursts,
//! deploy waves) happen every day, as they would.

use chrono::{DateTime, Duration, Timelike, Utc};

/// A behaviour to add to the simulated organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Quirk {
    /// A metrics agent and batch jobs that read secrets and parameters in
    /// bursts of dozens of calls, a few times an hour, at a low average rate.
    BurstyAutomation,
    /// CI deploys in waves of a few dozen writes at irregular times, night
    /// included.
    DeployWaves,
    /// On-call engineers sign in to the console at night and look around.
    NightOnCall,
    /// A new engineer, dave, starts two days before the end: new principal,
    /// new address, every call new.
    NewTeamMember,
    /// People rotate their own access keys; a rotation function rotates
    /// secrets.
    CredentialRotation,
    /// For three hours the application fails over from us-east-1 to
    /// us-west-2, where Auto Scaling starts instances.
    RegionalFailover,
    /// The application starts using Step Functions two days before the end.
    NewService,
    /// Three more accounts, with regions of their own.
    MoreAccounts,
    /// An administrator, erin, who every working day does what attacks
    /// look like, from her usual network ([`super::look_alike`]).
    BusyAdmin,
}

impl Quirk {
    /// Every quirk of the messy organisation (the busy admin has a profile
    /// of her own).
    pub const ALL: [Quirk; 8] = [
        Quirk::BurstyAutomation,
        Quirk::DeployWaves,
        Quirk::NightOnCall,
        Quirk::NewTeamMember,
        Quirk::CredentialRotation,
        Quirk::RegionalFailover,
        Quirk::NewService,
        Quirk::MoreAccounts,
    ];
}

/// The accounts [`Quirk::MoreAccounts`] adds (each logs global services in
/// us-east-1, like the others).
pub(crate) const MORE_ACCOUNTS: [(&str, &[&str]); 3] = [
    ("222233334444", &["us-east-1", "ap-southeast-2"]),
    ("555566667777", &["us-east-1", "eu-central-1", "eu-west-1"]),
    ("888899990000", &["us-east-1", "us-east-2"]),
];

/// When a quirk's activity happens: its rate multiplier at a moment.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Schedule {
    /// About one five-minute slot in sixteen is a burst, 15 times the rate;
    /// the rest run at the rate.
    Bursts,
    /// Three waves of 20 minutes a day at seed-chosen minutes.
    Waves,
    /// One night of the last two, 40 minutes between 01:00 and 04:00.
    OnCallNight,
    /// From 09:00 two days before the end, with a business day's shape.
    NewFromMorning,
    /// From 11:00 two days before the end, steady.
    NewFromLateMorning,
    /// 15 minutes on the last day, between 10:00 and 16:00.
    Rotation,
    /// Three hours on one of the last two days, starting 06:00–18:00.
    Failover,
    /// Every day, with a business day's shape.
    WorkingDays,
}

/// What a schedule needs to know besides the moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub start: DateTime<Utc>,
    pub days: u32,
    pub seed: u64,
}

impl Span {
    /// A uniform number in [0, 1), a pure function of the seed and `parts`.
    fn unit(&self, parts: &[u64]) -> f64 {
        let mut h = self.seed ^ 0x51ed_27a1_c0ff_ee00;
        for p in parts {
            h = splitmix(h ^ p.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The start of day `d` (0 is the first simulated day).
    fn day(&self, d: i64) -> DateTime<Utc> {
        self.start + Duration::days(d)
    }

    /// Day index of two days before the end (the first evaluated day), at
    /// least the first day.
    fn late_day(&self) -> i64 {
        (self.days as i64 - 2).max(0)
    }

    fn within(t: DateTime<Utc>, from: DateTime<Utc>, minutes: i64) -> f64 {
        f64::from(t >= from && t < from + Duration::minutes(minutes))
    }

    /// The multiplier of `schedule` at `t` for the account with `key`.
    pub fn rate(&self, schedule: Schedule, key: u64, t: DateTime<Utc>) -> f64 {
        let day = (t - self.start).num_days();
        let minutes_of = |u: f64, from_hour: f64, hours: f64| {
            Duration::minutes(((from_hour + u * hours) * 60.0) as i64)
        };
        match schedule {
            Schedule::Bursts => {
                let slot = (t.timestamp() / 300) as u64;
                if self.unit(&[1, key, slot]) < 1.0 / 16.0 {
                    15.0
                } else {
                    1.0
                }
            }
            Schedule::Waves => (0..3u64)
                .map(|k| {
                    let at =
                        self.day(day) + minutes_of(self.unit(&[2, key, day as u64, k]), 0.0, 24.0);
                    Span::within(t, at, 20)
                })
                .fold(0.0, f64::max),
            Schedule::OnCallNight => {
                let night = self.late_day() + i64::from(self.unit(&[3, key]) < 0.5);
                let at = self.day(night) + minutes_of(self.unit(&[3, key, 1]), 1.0, 3.0);
                Span::within(t, at, 40)
            }
            Schedule::NewFromMorning => {
                let from = self.day(self.late_day()) + Duration::hours(9);
                if t < from {
                    0.0
                } else {
                    super::rhythm(super::Rhythm::Business, t)
                }
            }
            Schedule::NewFromLateMorning => {
                f64::from(t >= self.day(self.late_day()) + Duration::hours(11))
            }
            Schedule::Rotation => {
                let last = (self.days as i64 - 1).max(0);
                let at = self.day(last) + minutes_of(self.unit(&[5, key]), 10.0, 6.0);
                Span::within(t, at, 15)
            }
            Schedule::WorkingDays => super::rhythm(super::Rhythm::Business, t),
            Schedule::Failover => {
                let d = self.late_day() + i64::from(self.unit(&[6]) < 0.5);
                let at = self.day(d) + minutes_of(self.unit(&[6, 1]), 6.0, 12.0);
                let at = at.with_second(0).unwrap_or(at);
                Span::within(t, at, 180)
            }
        }
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> Span {
        Span {
            start: "2026-03-02T00:00:00Z".parse().unwrap(),
            days: 5,
            seed: 7,
        }
    }

    fn minutes_active(s: Schedule, key: u64) -> Vec<DateTime<Utc>> {
        let span = span();
        (0..5 * 1440)
            .map(|m| span.start + Duration::minutes(m))
            .filter(|t| span.rate(s, key, *t) > 0.0)
            .collect()
    }

    #[test]
    fn one_off_quirks_fall_in_the_last_two_days_for_as_long_as_documented() {
        let late = span().start + Duration::days(3);
        for (s, minutes) in [
            (Schedule::OnCallNight, 40),
            (Schedule::Rotation, 15),
            (Schedule::Failover, 180),
        ] {
            let on = minutes_active(s, 1);
            assert_eq!(on.len(), minutes, "{s:?}");
            assert!(on[0] >= late, "{s:?} at {}", on[0]);
        }
        let night = minutes_active(Schedule::OnCallNight, 1);
        assert!((1..4).contains(&night[0].hour()), "{}", night[0]);
        assert_eq!(
            minutes_active(Schedule::NewFromLateMorning, 1)[0],
            late + Duration::hours(11)
        );
    }

    #[test]
    fn waves_and_bursts_recur_every_day_at_seeded_times() {
        let waves = minutes_active(Schedule::Waves, 1);
        assert!(
            waves.len() >= 5 * 40 && waves.len() <= 5 * 60,
            "{}",
            waves.len()
        );
        assert_ne!(waves, minutes_active(Schedule::Waves, 2));
        let bursts = span();
        let n = (0..5 * 288)
            .filter(|i| {
                bursts.rate(Schedule::Bursts, 1, bursts.start + Duration::minutes(5 * i)) > 1.0
            })
            .count();
        assert!((50..130).contains(&n), "{n} burst slots in five days");
    }
}
