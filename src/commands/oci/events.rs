//! `events`: stats (once with --stats, else every --interval) and OOM notices as JSON
//! lines.

use std::io::Write;

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str, stats: bool, interval: &str) -> Result<i32> {
    let every = parse_duration(interval)?;
    ops::events(g, id, stats, every, &mut |v| {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, v)?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    })?;
    Ok(0)
}

/// Go-style durations as runc takes them: "5s", "100ms", "1m", "1.5s".
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--interval {s:?}: invalid duration"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("--interval {s:?}: unknown unit {unit:?}"),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        anyhow::bail!("--interval {s:?}: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
