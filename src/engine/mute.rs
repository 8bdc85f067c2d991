//! Silencing principals you know (`detect --mute`; `deploy --mute`, the
//! deployed engine's and forwarder's `MUTE`): a deploy pipeline that makes
//! roles every night, a scanner that is refused all day. Their findings are
//! dropped before grouping, so they neither page nor appear, and counted,
//! so nothing is hidden silently. Critical rule findings stay whoever made
//! them: a muted role that turns off the trail is exactly what a stolen
//! pipeline key would do.

use super::anomaly::{Anomaly, AnomalyKind, Severity};
use crate::context::{short_arn, Facet};

/// The principals to silence: each a full ARN, the short form the table
/// prints (`assumed-role/deploy/ci@111122223333`), or either with `*`
/// standing for any text (`assumed-role/deploy/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mute {
    patterns: Vec<String>,
}

/// A mute pattern that cannot match a principal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("mute pattern {0:?} is empty or only `*`, which would silence everyone; name a principal (an ARN or user/name@account), with `*` for any text")]
pub struct MuteError(pub String);

impl Mute {
    /// The patterns, each checked: one that would silence everyone is
    /// refused.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Mute, MuteError> {
        let mut checked = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.chars().all(|c| c == '*') {
                return Err(MuteError(p.to_owned()));
            }
            checked.push(p.to_owned());
        }
        Ok(Mute { patterns: checked })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether a principal (an ARN, or a service's name) is muted.
    pub fn silences(&self, principal: &str) -> bool {
        let short = short_arn(principal);
        self.patterns
            .iter()
            .any(|p| glob(p, principal) || glob(p, &short))
    }

    /// Whether a finding is dropped: its principal is muted, and it is not
    /// a critical rule finding.
    pub fn drops(&self, a: &Anomaly) -> bool {
        if self.patterns.is_empty()
            || (a.kind == AnomalyKind::Rule && a.severity == Some(Severity::Critical))
        {
            return false;
        }
        principal(a).is_some_and(|p| self.silences(p))
    }

    /// Drops the muted findings; how many were dropped.
    pub fn apply(&self, anomalies: &mut Vec<Anomaly>) -> usize {
        let before = anomalies.len();
        anomalies.retain(|a| !self.drops(a));
        before - anomalies.len()
    }
}

/// Who a finding is about: its context's top principal, else its first
/// subject.
fn principal(a: &Anomaly) -> Option<&str> {
    a.context
        .as_ref()
        .and_then(|c| c.top(Facet::Principal))
        .map(|v| v.value.as_str())
        .or_else(|| a.subjects.first().map(String::as_str))
}

/// Whether `text` matches `pattern`, where `*` stands for any text.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &str = "arn:aws:sts::111122223333:assumed-role/deploy/ci-run-42";

    #[test]
    fn patterns_match_the_arn_or_the_short_form_with_stars() {
        let mute = |p: &str| Mute::new(&[p]).unwrap();
        assert!(mute(CI).silences(CI));
        assert!(mute("assumed-role/deploy/ci-run-42@111122223333").silences(CI));
        assert!(mute("assumed-role/deploy/*").silences(CI));
        assert!(mute("*:assumed-role/deploy/*").silences(CI));
        assert!(!mute("assumed-role/deploy").silences(CI));
        assert!(!mute("assumed-role/other/*").silences(CI));
        assert!(!mute("user/ci@111122223333").silences("arn:aws:iam::111122223333:user/ci-admin"));
        assert!(mute("user/ci*@111122223333").silences("arn:aws:iam::111122223333:user/ci-admin"));
    }

    #[test]
    fn a_pattern_that_silences_everyone_is_refused() {
        for p in ["", "*", " ** "] {
            assert!(Mute::new(&[p]).is_err(), "{p:?}");
        }
        assert_eq!(Mute::new::<&str>(&[]).unwrap(), Mute::default());
        assert!(!Mute::new(&["user/a@1", "user/b@1"]).unwrap().is_empty());
    }

    #[test]
    fn muted_findings_drop_except_critical_rules() {
        let t = "2026-11-21T03:10:00Z".parse().unwrap();
        let finding = |kind, severity| Anomaly {
            severity,
            ..Anomaly::sample(kind, CI, t)
        };
        let mut found = vec![
            finding(AnomalyKind::NewEvent, None),
            finding(AnomalyKind::Rule, Some(Severity::High)),
            finding(AnomalyKind::Rule, Some(Severity::Critical)),
        ];
        let mute = Mute::new(&["assumed-role/deploy/*"]).unwrap();
        assert_eq!(mute.apply(&mut found), 2);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Some(Severity::Critical));
        assert_eq!(Mute::default().apply(&mut found), 0);
    }
}
