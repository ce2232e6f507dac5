//! A development aid for `make bench`: with BERTH_TIMELINE=1 in the environment, every
//! phase of create/start/run/delete prints one line to stderr (BERTH_TIMELINE=/FILE:
//! appends to FILE) when it ends:
//! `berth-timeline PID SECONDS.MICROS PHASE` (CLOCK_MONOTONIC, so the lines of the parent
//! and of the container's init sort into one timeline). tools/bench/bench.py turns them into
//! the breakdown in BENCHMARKS.md. Off, a mark costs one relaxed atomic load.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        ON => true,
        OFF => false,
        _ => {
            let on = std::env::var_os("BERTH_TIMELINE")
                .is_some_and(|v| v == "1" || v.as_encoded_bytes().starts_with(b"/"));
            STATE.store(if on { ON } else { OFF }, Ordering::Relaxed);
            on
        }
    }
}

/// Records that `phase` has just ended.
pub(crate) fn mark(phase: &str) {
    if !enabled() {
        return;
    }
    let Ok(t) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return;
    };
    // One write(2) per line: the init's lines interleave with the parent's whole.
    let line = format!(
        "berth-timeline {} {}.{:06} {phase}\n",
        std::process::id(),
        t.tv_sec(),
        t.tv_nsec() / 1000
    );
    // BERTH_TIMELINE=/path appends there instead: the people face's monitor hands its
    // stderr to the container while the runtime creates it.
    match std::env::var_os("BERTH_TIMELINE").filter(|v| v != "1") {
        Some(path) => {
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}
