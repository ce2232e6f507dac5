//! The monitor keeps its own copy of the healthcheck's live record between probes (no
//! read back of the file at each probe): a probe run meanwhile from the user's shell
//! (`healthcheck run`) must still be in the log the monitor writes next.

mod common;

use std::time::Duration;

use common::people::World;

/// Each probe's output: how many probes have run in the container so far.
const COUNTING_PROBE: &str = "echo x >>/tmp/probes && wc -l </tmp/probes";

fn counts(w: &World, name: &str) -> Vec<u64> {
    let h = w.inspect(name)["State"]["Health"].clone();
    h["Log"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|e| e["Output"].as_str()?.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_probe_from_the_shell_stays_in_the_log_the_monitor_writes_next() {
    let w = World::new("probecpu").patience(Duration::from_secs(60), Duration::from_millis(50));
    w.run_d(
        &[
            "--name",
            "hc",
            "--health-cmd",
            COUNTING_PROBE,
            "--health-interval",
            "2s",
        ],
        &["sleep", "1000"],
    );
    // The monitor's first probe makes its copy of the record.
    w.until("a first probe", || !counts(&w, "hc").is_empty());
    let run = w.b(&["healthcheck", "run", "hc"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Its count: the newest probe in the log (a monitor's probe may come in between).
    let mine = *counts(&w, "hc").iter().max().unwrap();
    let mut seen = Vec::new();
    w.until("a monitor's probe after it", || {
        seen = counts(&w, "hc");
        seen.iter().any(|&c| c > mine)
    });
    // The log holds every probe from its oldest to its newest: the shell's among them.
    let (lo, hi) = (*seen.iter().min().unwrap(), *seen.iter().max().unwrap());
    if lo <= mine {
        assert!(
            seen.contains(&mine),
            "probe {mine} lost: {seen:?} (lo {lo}, hi {hi})"
        );
    }
    w.finish();
}
