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

#[test]
fn the_report_opens_offline_and_every_chart_draws() {
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
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    for part in [
        "Timeline of incidents",
        "ec2-run-instances",
        "lambda-invoke",
        "api-errors",
        "ebs-create-volume",
        "ApiErrorRateInsight",
        "incident #4",
    ] {
        assert!(html.contains(part), "{part} missing");
    }

    let dom = headless(&dir.path().join("profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no body in {dom}"));
    let attr = |name: &str| -> usize {
        let at = body.find(&format!("{name}=\"")).unwrap_or_else(|| {
            panic!("{name} missing in <body{body}>: the page's script did not run")
        }) + name.len()
            + 2;
        body[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (total, drawn) = (attr("data-charts-total"), attr("data-charts-drawn"));
    assert!(
        total >= 4,
        "a chart per detector with anomalies, and per insight: {total}"
    );
    assert_eq!(drawn, total, "every chart drew in the browser");

    let shot = dir.path().join("report.png");
    let o = headless(&dir.path().join("profile2"))
        .arg("--window-size=1100,1400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.display()))
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
