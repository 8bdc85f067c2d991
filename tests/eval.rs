//! `make eval`'s floor: on a small profile and a seed nobody tuned on, every
//! injected incident pages, no false page, the median page within two
//! minutes and the worst within ten; each way in's techniques page; the
//! busy administrator's look-alikes do not. If a change to the engine costs recall,
//! precision or time, this fails.

use trailwatch::eval::{self, HELD_OUT_SEEDS};
use trailwatch::simulate::profile;

#[test]
fn the_small_profile_holds_the_floor_on_a_held_out_seed() {
    let dir = tempfile::tempdir().unwrap();
    let small = profile("small-org").unwrap();
    let score = eval::run(&small, HELD_OUT_SEEDS[0], dir.path()).unwrap();
    let table = eval::table(&[(small, score.clone())]);
    let (found, injected) = score.recall();
    assert_eq!(
        injected,
        trailwatch::simulate::IncidentKind::ALL.len(),
        "{table}"
    );
    assert_eq!(found, injected, "an incident did not page:\n{table}");
    assert!(score.false_pages_a_day() <= 0.2, "{table}");
    let median = score.median_latency().expect("something was found");
    assert!(median <= chrono::Duration::minutes(2), "{table}");
    let worst = *score.latencies().last().unwrap();
    assert!(worst <= chrono::Duration::minutes(10), "{table}");
}

/// The catalogue's techniques, by each way in, on a seed nobody tuned on:
/// at least 95% of each way in's techniques page, the median within two
/// minutes.
#[test]
fn the_techniques_page_by_each_way_in_on_a_held_out_seed() {
    for way in trailwatch::simulate::technique::WayIn::ALL {
        let dir = tempfile::tempdir().unwrap();
        let score = eval::run_techniques(way, HELD_OUT_SEEDS[0], dir.path()).unwrap();
        let row = eval::WAYS_IN
            .iter()
            .find(|p| p.name == way.name())
            .copied()
            .unwrap();
        let table = eval::table(&[(row, score.clone())]);
        let (found, injected) = score.recall();
        assert_eq!(injected, trailwatch::simulate::technique::CATALOGUE.len());
        assert!(
            found as f64 >= 0.95 * injected as f64,
            "{}: missed {:?}\n{table}",
            way.name(),
            score.missed
        );
        assert!(score.false_pages_a_day() <= 0.2, "{table}");
        let median = score.median_latency().expect("something was found");
        assert!(median <= chrono::Duration::minutes(2), "{table}");
    }
}

/// The busy administrator's look-alikes, on a seed nobody tuned on: no
/// false page in the evaluated days, and the injected incidents still page.
#[test]
fn the_busy_admin_pages_nothing_of_her_own() {
    let dir = tempfile::tempdir().unwrap();
    let admin = profile("busy-admin").unwrap();
    let score = eval::run(&admin, HELD_OUT_SEEDS[0], dir.path()).unwrap();
    let table = eval::table(&[(admin, score.clone())]);
    assert_eq!(
        score.false_incidents, 0,
        "{table}\n{:#?}",
        score.false_page_lines
    );
    let (found, injected) = score.recall();
    assert_eq!(found, injected, "{table}");
}
