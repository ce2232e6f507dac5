//! `list`: the containers under --root, as runc's table, ids only (-q) or JSON.

use std::io::Write;

use anyhow::Result;

use crate::cli::oci::ListFormat;
use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, quiet: bool, format: ListFormat) -> Result<i32> {
    let all = ops::list(g)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &all {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(0);
    }
    if format == ListFormat::Json {
        serde_json::to_writer(&mut out, &all)?;
        writeln!(out)?;
        return Ok(0);
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(all.iter().map(|c| {
                [
                    c.id.clone(),
                    c.pid.to_string(),
                    c.status.to_string(),
                    c.bundle.display().to_string(),
                    c.created.clone(),
                    c.owner.clone().unwrap_or_default(),
                ]
            }))
            .collect();
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(0)
}
