//! Reading CloudTrail records back out of OpenSearch, for `detect
//! --opensearch-url`: a point-in-time over the index pattern, paged in
//! `eventTime` order with `search_after` (`eventID` breaks ties), so that
//! months of `cwl-*` stream through in bounded memory. Each page comes out
//! as JSON lines, which the engine reads as it reads a file.

use super::{OpenSearch, OpenSearchError};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// An index pattern, such as `cwl-*`.
    pub index: String,
    /// Only records before this time.
    pub until: Option<DateTime<Utc>>,
    /// Records per page.
    pub page: usize,
}

/// How long the point in time lives between pages.
const KEEP_ALIVE: &str = "5m";

/// The seed document apply makes so detectors can be created on an empty
/// cluster: not a CloudTrail record.
const SEED_ID: &str = "trailwatch-seed";

/// The search body of one page.
pub fn page_query(scan: &Scan, pit_id: &str, after: Option<&Value>) -> Value {
    let mut filter = vec![json!({"exists": {"field": "eventTime"}})];
    if let Some(until) = scan.until {
        filter.push(json!({"range": {"eventTime": {"lt": until.to_rfc3339_opts(SecondsFormat::Millis, true)}}}));
    }
    let mut body = json!({
        "size": scan.page,
        "pit": {"id": pit_id, "keep_alive": KEEP_ALIVE},
        "sort": [{"eventTime": "asc"}, {"eventID": "asc"}],
        "track_total_hits": false,
        "query": {"bool": {
            "filter": filter,
            "must_not": [{"term": {"eventID": SEED_ID}}]
        }}
    });
    if let Some(after) = after {
        body["search_after"] = after.clone();
    }
    body
}

/// One page of an answer: its records as JSON lines, how many, the sort
/// values to search after, and the point in time's id (it may change).
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    pub lines: Vec<u8>,
    pub count: usize,
    pub after: Option<Value>,
    pub pit_id: Option<String>,
}

pub fn read_page(answer: &Value) -> Page {
    let hits = answer["hits"]["hits"].as_array();
    let mut page = Page {
        pit_id: answer["pit_id"].as_str().map(str::to_owned),
        ..Page::default()
    };
    for h in hits.into_iter().flatten() {
        let Some(source) = h.get("_source") else {
            continue;
        };
        if let Ok(text) = serde_json::to_vec(source) {
            page.lines.extend_from_slice(&text);
            page.lines.push(b'\n');
            page.count += 1;
        }
        page.after = h.get("sort").cloned();
    }
    page
}

/// Reads every record `scan` selects, handing each page's JSON lines to
/// `on_page`; returns how many records there were. The point in time is
/// closed at the end, also after a failed page.
pub async fn scan(
    os: &OpenSearch,
    scan: &Scan,
    on_page: &mut dyn FnMut(&[u8]),
) -> Result<u64, OpenSearchError> {
    let opened = os
        .request(
            "POST",
            &format!(
                "/{}/_search/point_in_time?keep_alive={KEEP_ALIVE}",
                scan.index
            ),
            None,
        )
        .await?
        .checked_json()?;
    let mut pit_id = opened["pit_id"].as_str().unwrap_or_default().to_owned();
    let mut after: Option<Value> = None;
    let mut total = 0u64;
    let result = loop {
        let answer = match os
            .request(
                "POST",
                "/_search",
                Some(&page_query(scan, &pit_id, after.as_ref())),
            )
            .await
            .and_then(|a| a.checked_json())
        {
            Ok(a) => a,
            Err(e) => break Err(e),
        };
        let page = read_page(&answer);
        if let Some(id) = page.pit_id {
            pit_id = id;
        }
        if page.count == 0 {
            break Ok(total);
        }
        total += page.count as u64;
        on_page(&page.lines);
        if page.count < scan.page || page.after.is_none() {
            break Ok(total);
        }
        after = page.after;
    };
    let _ = os
        .request(
            "DELETE",
            "/_search/point_in_time",
            Some(&json!({"pit_id": [pit_id]})),
        )
        .await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_on_from_the_last_sort_values_and_skip_the_seed() {
        let scan = Scan {
            index: "cwl-*".into(),
            until: Some("2026-01-08T00:00:00Z".parse().unwrap()),
            page: 2,
        };
        let q = page_query(&scan, "pit-1", Some(&json!([1, "e2"])));
        assert_eq!(q["search_after"], json!([1, "e2"]));
        assert_eq!(q["pit"]["id"], "pit-1");
        assert_eq!(
            q["query"]["bool"]["filter"][1]["range"]["eventTime"]["lt"],
            "2026-01-08T00:00:00.000Z"
        );
        assert_eq!(
            q["query"]["bool"]["must_not"][0],
            json!({"term": {"eventID": "trailwatch-seed"}})
        );
        assert!(page_query(&scan, "pit-1", None)
            .get("search_after")
            .is_none());

        let answer = json!({"pit_id": "pit-2", "hits": {"hits": [
            {"_source": {"eventID": "e1", "eventTime": "2026-01-05T00:00:00Z"}, "sort": [1, "e1"]},
            {"_source": {"eventID": "e2", "eventTime": "2026-01-05T00:00:01Z"}, "sort": [2, "e2"]}
        ]}});
        let page = read_page(&answer);
        assert_eq!(page.count, 2);
        assert_eq!(page.after, Some(json!([2, "e2"])));
        assert_eq!(page.pit_id.as_deref(), Some("pit-2"));
        let lines: Vec<Value> = String::from_utf8(page.lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1]["eventID"], "e2");
    }
}
