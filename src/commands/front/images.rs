//! `images` (`image ls`): Docker's columns REPOSITORY TAG (DIGEST) IMAGE ID CREATED SIZE,
//! `-q`, `--digests`, `--no-trunc`, `--filter`, `--format`, and a REPOSITORY[:TAG] argument.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::front::ImagesArgs;
use crate::front::format::Formatter;
use crate::front::images::ops;
use crate::front::units;
use crate::front::Globals;

const TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const TABLE_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

pub(crate) fn images(g: &Globals, a: &ImagesArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let list = ops::filter(&store, ops::list(&store)?, &filters)?;
    let id_text = |id: &crate::front::digest::Digest| {
        if a.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        }
    };
    if a.quiet && a.format.is_none() {
        let mut seen = BTreeSet::new();
        for i in &list {
            if seen.insert(i.id.clone()) {
                println!("{}", id_text(&i.id));
            }
        }
        return Ok(0);
    }
    let fmt = Formatter::new(
        a.format.as_deref(),
        if a.digests { TABLE_DIGESTS } else { TABLE },
    )?;
    let rows: Vec<Value> = ops::rows(&list)
        .into_iter()
        .map(|r| {
            json!({
                "Containers": "N/A",
                "CreatedAt": created_at(r.created),
                "CreatedSince": created_since(r.created),
                "Digest": r.digest,
                "ID": id_text(&r.id),
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": units::human_size_with_precision(r.size as f64, 3),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": units::human_size_with_precision(r.size as f64, 3),
            })
        })
        .collect();
    let headers = json!({
        "Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
        "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY",
        "SharedSize": "SHARED SIZE", "Size": "SIZE", "Tag": "TAG", "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    });
    print!("{}", fmt.render(&rows, &headers)?);
    Ok(0)
}

/// `2 weeks ago`, as Docker's CREATED column; `N/A` without a creation time.
pub(crate) fn created_since(created: Option<i64>) -> String {
    match created {
        Some(c) if c > 0 => {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(c as u64);
            let d = SystemTime::now().duration_since(t).unwrap_or_default();
            format!("{} ago", units::human_duration(d))
        }
        _ => "N/A".into(),
    }
}

/// Go's `time.Time.String()` in UTC: `2023-11-14 22:13:20 +0000 UTC`.
pub(crate) fn created_at(created: Option<i64>) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(created.unwrap_or(0).max(0) as u64);
    let s = units::rfc3339_nano(t);
    format!(
        "{} {} +0000 UTC",
        &s[..10.min(s.len())],
        s.get(11..19).unwrap_or("")
    )
}
