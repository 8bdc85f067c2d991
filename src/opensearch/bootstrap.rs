//! The OpenSearch bootstrap as one call: wait for the cluster and its
//! plugins, reconcile every object of the desired state, then import (or
//! remove) the Dashboards saved objects. `opensearch apply|delete` and
//! `deploy` run it; what asks the user stays in the CLI.

use super::apply::{delete, wait_for_cluster, ApplyError, Line, Outcome, Reconcile, Wait};
use super::dashboards;
use super::desired::Desired;
use super::{is_aws_host, OpenSearch, OpenSearchError};

/// The cluster, and its Dashboards when there is one to import into.
pub struct Cluster {
    pub os: OpenSearch,
    pub dashboards: Option<OpenSearch>,
}

/// Apply the desired state, or remove what apply made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Apply,
    Delete,
}

impl Action {
    /// The past tense, for the last line of a run.
    pub fn done(self) -> &'static str {
        match self {
            Action::Apply => "applied",
            Action::Delete => "deleted",
        }
    }
}

/// Every object's line, in order.
#[derive(Debug, Default)]
pub struct Summary {
    pub lines: Vec<Line>,
}

impl Summary {
    /// How many objects changed (or would): not unchanged, absent or skipped.
    pub fn changes(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| {
                !matches!(
                    l.outcome,
                    Outcome::Unchanged | Outcome::Absent | Outcome::Skipped
                )
            })
            .count()
    }
}

/// Dashboards' URL when none is given: an AWS domain serves it under
/// `/_dashboards`; elsewhere it is a separate server nobody named.
pub fn default_dashboards_url(opensearch_url: &str) -> Option<String> {
    is_aws_host(opensearch_url)
        .then(|| format!("{}/_dashboards", opensearch_url.trim_end_matches('/')))
}

/// Whether a TCP connection to the URL's host and port opens within
/// `timeout`: checked before a long deploy, so an unreachable endpoint is
/// said first rather than after the stack.
pub fn reachable(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or("");
    let has_port = match authority.rfind(':') {
        Some(i) => !authority[i..].contains(']'),
        None => false,
    };
    let address = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if scheme == "http" { 80 } else { 443 })
    };
    let addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {address}: {e}"))?;
    let mut last = format!("{address} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

/// Waits (bounded, telling `progress`) until the cluster and every plugin
/// the objects need answer.
pub async fn ready(
    cluster: &Cluster,
    wait: Wait,
    progress: &mut dyn FnMut(&str),
) -> Result<(), OpenSearchError> {
    wait_for_cluster(&cluster.os, wait, progress).await
}

/// One pass over every object. With `dry_run`, reads only, and each line
/// says what would change. `line` sees each object's line as it is known.
pub async fn reconcile(
    cluster: &Cluster,
    desired: &Desired,
    action: Action,
    dry_run: bool,
    line: &mut dyn FnMut(&Line),
) -> Result<Summary, ApplyError> {
    let mut rec = Reconcile::new(&cluster.os, dry_run, line);
    match action {
        Action::Apply => rec.apply(desired).await?,
        Action::Delete => delete(&mut rec, desired).await?,
    }
    match (&cluster.dashboards, action) {
        (Some(d), Action::Apply) => rec.push(dashboards::import(d, dry_run).await?),
        (Some(d), Action::Delete) => rec.push(dashboards::remove(d, dry_run).await?),
        (None, _) => rec.push(Line {
            kind: "dashboards",
            name: format!("{} saved objects", dashboards::saved_objects().len()),
            outcome: Outcome::Skipped,
            notes: vec!["no Dashboards here; give --dashboards-url".into()],
        }),
    }
    Ok(Summary { lines: rec.lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(outcome: Outcome) -> Line {
        Line {
            kind: "role",
            name: "x".into(),
            outcome,
            notes: vec![],
        }
    }

    #[test]
    fn only_real_changes_count() {
        let summary = Summary {
            lines: vec![
                line(Outcome::Created),
                line(Outcome::Unchanged),
                line(Outcome::Absent),
                line(Outcome::Skipped),
                line(Outcome::Replaced),
                line(Outcome::Deleted),
            ],
        };
        assert_eq!(summary.changes(), 3);
    }

    #[test]
    fn reachable_names_what_does_not_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::time::Duration::from_secs(2);
        assert_eq!(reachable(&format!("http://127.0.0.1:{port}/x"), t), Ok(()));
        drop(listener);
        let err = reachable(&format!("https://127.0.0.1:{port}"), t).unwrap_err();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        let err = reachable("https://no-such-host.invalid", t).unwrap_err();
        assert!(err.contains("no-such-host.invalid:443"), "{err}");
    }

    #[test]
    fn dashboards_default_only_on_aws_domains() {
        assert_eq!(
            default_dashboards_url("https://search-x.us-east-1.es.amazonaws.com/").as_deref(),
            Some("https://search-x.us-east-1.es.amazonaws.com/_dashboards")
        );
        assert_eq!(default_dashboards_url("https://127.0.0.1:9200"), None);
    }
}
