//! `ps`: the container's processes. As runc: JSON is the array of host pids; the table is
//! ps(1)'s output (default `-ef`) filtered to the container's processes.

use std::io::Write;

use anyhow::Result;

use crate::cli::oci::ListFormat;
use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str, format: ListFormat, args: &[String]) -> Result<i32> {
    let pids = ops::pids(g, id)?;
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        serde_json::to_writer(&mut out, &pids)?;
        writeln!(out)?;
        return Ok(0);
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let res = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| anyhow::anyhow!("ps: {e}"))?;
    if !res.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&res.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&res.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps {}: no PID column in the output", args.join(" ")))?;
    writeln!(out, "{header}")?;
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            writeln!(out, "{l}")?;
        }
    }
    Ok(0)
}
