//! `make eval`'s floor: on a small profile and a seed nobody tuned on, every
//! injected incident pages, at most one false page every two days, and the
//! median page within five minutes. If a change to the engine costs recall,
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
    assert!(score.false_pages_a_day() <= 0.5, "{table}");
    let median = score.median_latency().expect("something was found");
    assert!(median <= chrono::Duration::minutes(5), "{table}");
}
