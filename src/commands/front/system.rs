//! `system prune [-a] [-f] [--volumes] [--filter]` and `system df [-v] [--format]`, over
//! what berth has: containers, images and volumes (networks and the build cache read as
//! empty until they exist).

use std::collections::BTreeSet;

use anyhow::{bail, Result};
use serde_json::json;

use super::container_prune::{confirm, prune_containers, size_rw, Filters};
use crate::cli::front::{SystemDfArgs, SystemPruneArgs};
use crate::front::containers::Store;
use crate::front::digest::Digest;
use crate::front::format::{Formatter, TabWriter};
use crate::front::images::ops;
use crate::front::{units, Globals};

/// Docker's confirmation text for what this prune removes.
fn warning(a: &SystemPruneArgs, f: &Filters) -> String {
    let mut items = vec!["all stopped containers".to_string()];
    if a.volumes {
        items.push("all anonymous volumes not used by at least one container".into());
    }
    items.push(if a.all {
        "all images without at least one container associated to them".into()
    } else {
        "all dangling images".into()
    });
    if a.all {
        items.push("all build cache".into());
    }
    let mut s = String::from("WARNING! This will remove:\n");
    for i in &items {
        s.push_str(&format!("  - {i}\n"));
    }
    if !f.shown.is_empty() {
        s.push_str("\nItems to be pruned will be filtered with:\n");
        for i in &f.shown {
            s.push_str(&format!("  - {i}\n"));
        }
    }
    s.push_str("\nAre you sure you want to continue?");
    s
}

pub(crate) fn prune(g: &Globals, a: &SystemPruneArgs) -> Result<i32> {
    let f = Filters::parse(&a.filter)?;
    if !a.force && !confirm(&warning(a, &f))? {
        return Ok(0);
    }
    // Rootless, image layers are owned through the user's subordinate ids.
    super::unpack_allowed(g, "system prune")?;
    let store = Store::new(g);
    let (ids, mut bytes) = prune_containers(&store, &f);
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for id in &ids {
            println!("{id}");
        }
        println!();
    }
    // Containers first: the volumes and images they held are unused now.
    if a.volumes {
        // Anonymous volumes only, as Docker since 23.0 (`volume prune -a` for named ones).
        let vols = crate::front::volumes::Store::new(&g.root);
        let (names, freed) = vols.prune(&store, false, |v| {
            Ok(f.matches(units::parse_rfc3339(&v.created_at), &v.labels))
        })?;
        if !names.is_empty() {
            println!("Deleted Volumes:");
            for n in &names {
                println!("{n}");
            }
            println!();
        }
        bytes += freed;
    }
    let images = super::image_store(g)?;
    let excluded: BTreeSet<Digest> = if f.shown.is_empty() {
        BTreeSet::new()
    } else {
        ops::list(&images)?
            .into_iter()
            .filter(|i| {
                let created = i.created.map(|s| {
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64)
                });
                !f.matches(created, &i.labels)
            })
            .map(|i| i.id)
            .collect()
    };
    let user = super::image_user(&store);
    let keep = |id: &Digest| {
        if excluded.contains(id) {
            return Some(String::new());
        }
        user(id)
    };
    let p = ops::prune(&images, a.all, &keep)?;
    super::image_prune::print_removed(&p.removed);
    bytes += p.reclaimed;
    if a.all {
        let (keys, freed) = crate::front::build::usage::prune(&images)?;
        if !keys.is_empty() {
            println!("Deleted build cache objects:");
            for k in &keys {
                println!("{k}");
            }
            println!();
        }
        bytes += freed;
    }
    println!("Total reclaimed space: {}", units::human_size(bytes as f64));
    Ok(0)
}

/// `N (P%)` of Docker's RECLAIMABLE column (just the size when there is nothing).
fn reclaimable(part: u64, total: u64) -> String {
    if total == 0 {
        return units::human_size(part as f64);
    }
    format!(
        "{} ({}%)",
        units::human_size(part as f64),
        part * 100 / total
    )
}

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

pub(crate) fn df(g: &Globals, a: &SystemDfArgs) -> Result<i32> {
    let store = Store::new(g);
    let images = super::image_store(g)?;
    // The records without their specs (nothing here reads them), listed once.
    let containers = store.list_brief();
    let uses = |id: &Digest| {
        let want = id.to_string();
        containers.iter().filter(|c| c.rec.image_id == want).count()
    };
    let du = ops::disk_usage(&images, &uses)?;
    let mut c_total = 0u64;
    let mut c_reclaim = 0u64;
    let mut c_active = 0usize;
    let mut c_rows = Vec::new();
    for c in &containers {
        let live = store.derive(c);
        let size = size_rw(&store, c);
        c_total += size;
        if live.is_active() {
            c_active += 1;
        } else {
            c_reclaim += size;
        }
        c_rows.push((c, live, size));
    }
    if a.verbose {
        if a.format.is_some() {
            bail!("--format: not supported together with --verbose");
        }
        return df_verbose(&store, &images, &du, &c_rows, &volume_rows(g, &containers));
    }
    let vols = volume_rows(g, &containers);
    let v_total: u64 = vols.iter().map(|v| v.2).sum();
    let v_active = vols.iter().filter(|v| v.1 > 0).count();
    let v_reclaim: u64 = vols.iter().filter(|v| v.1 == 0).map(|v| v.2).sum();
    let cache = crate::front::build::usage::usage(&images)?;
    let rows = vec![
        json!({"Type": "Images", "TotalCount": du.total.to_string(), "Active": du.active.to_string(),
               "Size": units::human_size(du.size as f64), "Reclaimable": reclaimable(du.reclaimable, du.size)}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(),
               "Size": units::human_size(c_total as f64), "Reclaimable": reclaimable(c_reclaim, c_total)}),
        json!({"Type": "Local Volumes", "TotalCount": vols.len().to_string(), "Active": v_active.to_string(),
               "Size": units::human_size(v_total as f64), "Reclaimable": reclaimable(v_reclaim, v_total)}),
        // Nothing of the cache is in use between builds: all of it is reclaimable.
        json!({"Type": "Build Cache", "TotalCount": cache.entries.to_string(), "Active": "0",
               "Size": units::human_size(cache.size as f64), "Reclaimable": units::human_size(cache.size as f64)}),
    ];
    let fmt = Formatter::new(a.format.as_deref(), DF_TABLE)?;
    let headers = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
        "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    print!("{}", fmt.render(&rows, &headers)?);
    Ok(0)
}

/// Every volume: its name, how many containers mount it, its size.
fn volume_rows(
    g: &Globals,
    containers: &[crate::front::containers::Container],
) -> Vec<(String, usize, u64)> {
    let vols = crate::front::volumes::Store::new(&g.root);
    vols.list()
        .into_iter()
        .map(|v| {
            let links = containers
                .iter()
                .filter(|c| {
                    c.rec
                        .mounts
                        .iter()
                        .any(|m| m.kind == "volume" && m.name == v.name)
                })
                .count();
            let size = vols.size(&v.name);
            (v.name, links, size)
        })
        .collect()
}

fn df_verbose(
    _store: &Store,
    images: &crate::front::images::store::Store,
    du: &ops::DiskUsage,
    containers: &[(
        &crate::front::containers::Container,
        crate::front::containers::Live,
        u64,
    )],
    volumes: &[(String, usize, u64)],
) -> Result<i32> {
    let ago = |secs: Option<i64>| -> String {
        let Some(s) = secs else { return "N/A".into() };
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64);
        let d = std::time::SystemTime::now()
            .duration_since(t)
            .unwrap_or_default();
        format!("{} ago", units::human_duration(d))
    };
    let mut out = String::from("Images space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n");
    let list = ops::list(images)?;
    for r in ops::rows(&list) {
        let Some(u) = du.images.iter().find(|u| u.id == r.id) else {
            continue;
        };
        tw.write(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.repository,
            r.tag,
            r.id.short(),
            ago(r.created),
            units::human_size(u.size as f64),
            units::human_size(u.shared_size as f64),
            units::human_size(u.unique_size as f64),
            u.containers
        ));
    }
    out.push_str(&tw.flush());
    out.push_str("\nContainers space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n");
    for (c, live, size) in containers {
        let mut cmd = c.rec.path.clone();
        for a in &c.rec.args {
            cmd.push(' ');
            cmd.push_str(a);
        }
        if cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…";
        }
        let created = units::parse_rfc3339(&c.rec.created).map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        let local_volumes = c.rec.mounts.iter().filter(|m| m.kind == "volume").count();
        tw.write(&format!(
            "{}\t{}\t{}\t{local_volumes}\t{}\t{}\t{}\t{}\n",
            crate::front::containers::short(&c.rec.id),
            c.rec.image,
            crate::front::format::go_quote(&cmd),
            units::human_size(*size as f64),
            ago(created),
            super::ps::status_text(c, *live),
            c.rec.name
        ));
    }
    out.push_str(&tw.flush());
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut tw = TabWriter::docker();
    tw.write("VOLUME NAME\tLINKS\tSIZE\n");
    for (name, links, size) in volumes {
        tw.write(&format!(
            "{name}\t{links}\t{}\n",
            units::human_size(*size as f64)
        ));
    }
    out.push_str(&tw.flush());
    out.push_str("\nBuild cache usage: 0B\n\n");
    let mut tw = TabWriter::docker();
    tw.write("CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n");
    out.push_str(&tw.flush());
    print!("{out}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_column() {
        assert_eq!(reclaimable(0, 0), "0B");
        assert_eq!(reclaimable(500, 1000), "500B (50%)");
    }

    #[test]
    fn warning_text() {
        let a = SystemPruneArgs {
            all: false,
            filter: vec![],
            force: false,
            volumes: false,
        };
        let w = warning(&a, &Filters::default());
        assert!(w.starts_with(
            "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n"
        ));
        assert!(w.ends_with("\n\nAre you sure you want to continue?"));
    }
}
