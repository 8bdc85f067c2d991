//! The HTML report, opened in a real browser (Debian's Chromium, installed by
//! `make test`): every chart draws.

use crate::util::*;
use std::process::Command;

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("Chromium is not installed: `make test` installs Debian's chromium package");
}

fn headless(profile: &std::path::Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The `<body>` attributes of the page after its script ran in Chromium.
fn body_after_script(profile: &std::path::Path, url: &str) -> String {
    let dom = headless(profile)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    dom.split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no body in {dom}"))
        .to_owned()
}

fn attr(body: &str, name: &str) -> String {
    let at = body
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("{name} missing in <body{body}>: the page's script did not run"))
        + name.len()
        + 2;
    body[at..].split('"').next().unwrap().to_owned()
}

/// The report drew one chart per series, seven near-identical charts for
/// one incident, a band invisible at zero, a y-axis with only its maximum,
/// and a timeline that turned black on a year of data. Now: a card per
/// incident with its charts, a readable axis and band, and a table that
/// sorts and filters offline.
#[test]
fn the_report_opens_offline_with_a_card_per_incident_and_every_chart_draws() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.html");
    let o = trailwatch(&[
        "detect",
        simulated().to_str().unwrap(),
        "--format",
        "ndjson",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let findings = ndjson(&o);
    let incidents: std::collections::BTreeSet<u64> = findings
        .iter()
        .filter_map(|a| a["incident"].as_u64())
        .collect();
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    for part in [
        "Timeline",
        "ec2-run-instances",
        "lambda-invoke",
        "api-errors",
        "ebs-create-volume",
        "ApiErrorRateInsight",
        "Incident #4: ",
        "<h2>Summary</h2><table id=\"summary\">",
        "<dt>Do first</dt><dd><ol class=\"actions\"><li>",
        "Stop the instances it started: aws ec2 describe-instances",
        "<dt>Access keys</dt><dd><code>AKIA",
        "<dt>Events</dt><dd>",
        "p4d.24xlarge",
        "/h, $",
        "How the grades compare",
        "<tr><td>rcf</td><td>",
        "<tr><td>insight</td><td>",
        "(its budget)</td><td>a day</td><td class=\"num\">0.20</td>",
        "All findings",
    ] {
        assert!(html.contains(part), "{part} missing");
    }
    assert_eq!(
        html.matches(r#"<section class="card"#).count(),
        incidents.len(),
        "one card per incident"
    );
    for id in &incidents {
        assert!(html.contains(&format!(r#"id="incident-{id}""#)));
        assert!(
            html.contains(&format!(r##"href="#incident-{id}""##)),
            "linked"
        );
    }

    // The summary lists every incident, each a link to its card; a card
    // without a chart does not say its series are charted.
    let summary = html.split("<table id=\"summary\">").nth(1).unwrap();
    let summary = summary.split("</table>").next().unwrap();
    assert_eq!(summary.matches("<tr class=\"sev-").count(), incidents.len());
    for card in html.split("<section class=\"card").skip(1) {
        let card = card.split("</section>").next().unwrap();
        if !card.contains("<figure>") {
            assert!(!card.contains("charted, all"), "{card}");
        }
        assert!(!card.contains("<dt>From</dt><dd>-</dd>"), "{card}");
    }

    let url = format!("file://{}", report.display());
    let body = body_after_script(&dir.path().join("profile"), &url);
    let total: usize = attr(&body, "data-charts-total").parse().unwrap();
    let drawn: usize = attr(&body, "data-charts-drawn").parse().unwrap();
    assert!(total >= 4, "the incidents' series are charted: {total}");
    assert!(
        total <= incidents.len() * trailwatch::engine::report::CHARTS_PER_INCIDENT,
        "{total} charts"
    );
    assert_eq!(drawn, total, "every chart drew in the browser");
    assert_eq!(attr(&body, "data-rows-shown"), findings.len().to_string());

    // Filtered to insights and sorted by grade, highest first, offline.
    let insights: Vec<&serde_json::Value> =
        findings.iter().filter(|a| a["kind"] == "insight").collect();
    let best = insights
        .iter()
        .max_by(|a, b| {
            a["grade"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["grade"].as_f64().unwrap())
        })
        .unwrap();
    let body = body_after_script(
        &dir.path().join("profile2"),
        &format!("{url}?kind=insight&sort=5&order=desc"),
    );
    assert_eq!(attr(&body, "data-rows-shown"), insights.len().to_string());
    assert_eq!(
        attr(&body, "data-first-row"),
        best["detector"].as_str().unwrap()
    );
    // At 1,200 px nothing overflows: not the page, not the findings table.
    let wide = {
        let dom = headless(&dir.path().join("profile5"))
            .arg("--window-size=1200,1400")
            .arg("--dump-dom")
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&dom.stdout).into_owned()
    };
    let wide = wide
        .split("<body")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let page: u32 = attr(&wide, "data-scroll-width").parse().unwrap();
    let table: u32 = attr(&wide, "data-findings-width").parse().unwrap();
    assert!(
        page <= 1200 && table <= 1200,
        "page {page} px, findings table {table} px"
    );
    let body = body_after_script(&dir.path().join("profile3"), &format!("{url}?filter=carol"));
    let carol = findings
        .iter()
        .filter(|a| a.to_string().contains("carol"))
        .count();
    assert!(carol > 0);
    assert!(attr(&body, "data-rows-shown").parse::<usize>().unwrap() >= carol.min(1));

    let shot = dir.path().join("report.png");
    let o = headless(&dir.path().join("profile4"))
        .arg("--window-size=1100,1400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real picture, not a blank page: {} bytes",
        png.len()
    );
}
