//! `history IMAGE`: IMAGE CREATED CREATED BY SIZE COMMENT, newest first.

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::front::HistoryArgs;
use crate::front::format::Formatter;
use crate::front::images::ops;
use crate::front::units;
use crate::front::Globals;

const TABLE: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

pub(crate) fn history(g: &Globals, a: &HistoryArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    let (rec, _) = super::lookup_image(&store, &a.image)?;
    let rows = ops::history(&store, &rec)?;
    let id = |r: &ops::HistoryRow| match &r.id {
        Some(d) if a.no_trunc => d.to_string(),
        Some(d) => d.short().to_string(),
        None => "<missing>".into(),
    };
    if a.quiet && a.format.is_none() {
        for r in &rows {
            println!("{}", id(r));
        }
        return Ok(0);
    }
    let fmt = Formatter::new(a.format.as_deref(), TABLE)?;
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut by = r.created_by.replace(['\t', '\n'], " ");
            if !a.no_trunc && by.chars().count() > 45 {
                by = by.chars().take(44).collect::<String>() + "…";
            }
            let (since, size) = if a.human {
                (
                    super::images::created_since(r.created),
                    units::human_size_with_precision(r.size as f64, 3),
                )
            } else {
                (
                    units::rfc3339_nano(
                        std::time::SystemTime::UNIX_EPOCH
                            + std::time::Duration::from_secs(r.created.unwrap_or(0).max(0) as u64),
                    ),
                    r.size.to_string(),
                )
            };
            json!({
                "ID": id(r),
                "CreatedSince": since,
                "CreatedAt": super::images::created_at(r.created),
                "CreatedBy": by,
                "Size": size,
                "Comment": r.comment,
            })
        })
        .collect();
    let headers = json!({
        "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
    });
    print!("{}", fmt.render(&out, &headers)?);
    Ok(0)
}
