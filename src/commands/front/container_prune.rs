//! `container prune [-f] [--filter until=|label=]`: every container that is not running
//! (created or exited), after Docker's confirmation unless `-f`; then `Total reclaimed
//! space` (their writable layers). The filters are shared with `system prune`.

use std::io::BufRead;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};

use crate::cli::front::PruneArgs;
use crate::front::containers::{lifecycle, Container, OverlayDirs, Store};
use crate::front::{units, Globals};

/// Docker's prune filters: `until=` (a timestamp or a duration before now) and
/// `label=KEY[=VALUE]` / `label!=KEY[=VALUE]`.
#[derive(Default)]
pub(crate) struct Filters {
    until: Option<SystemTime>,
    labels: Vec<(String, Option<String>, bool)>,
    /// As given, for the confirmation text.
    pub(crate) shown: Vec<String>,
}

impl Filters {
    pub(crate) fn parse(list: &[String]) -> Result<Filters> {
        let mut f = Filters::default();
        for item in list {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("bad format of filter (expected name=value): {item}"))?;
            match k {
                "until" => {
                    let t = units::get_timestamp(v, SystemTime::now())
                        .map_err(|e| anyhow!("--filter until={v}: {e:#}"))?;
                    f.until = Some(t);
                }
                "label" | "label!" => {
                    let (lk, lv) = match v.split_once('=') {
                        Some((a, b)) => (a.to_string(), Some(b.to_string())),
                        None => (v.to_string(), None),
                    };
                    f.labels.push((lk, lv, k == "label!"));
                }
                _ => bail!("invalid filter '{k}': prune takes until and label filters"),
            }
            f.shown.push(item.clone());
        }
        Ok(f)
    }

    /// Whether something created at `created` (seconds) with `labels` is to be pruned.
    pub(crate) fn matches(
        &self,
        created: Option<SystemTime>,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        if let Some(u) = self.until {
            if created.is_none_or(|c| c >= u) {
                return false;
            }
        }
        self.labels.iter().all(|(k, v, negate)| {
            let has = match (labels.get(k), v) {
                (None, _) => false,
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
            };
            has != *negate
        })
    }

    fn matches_container(&self, c: &Container) -> bool {
        self.matches(units::parse_rfc3339(&c.rec.created), &c.rec.config.labels)
    }
}

/// Asks `text` + ` [y/N] ` on the terminal; true for yes.
pub(crate) fn confirm(text: &str) -> Result<bool> {
    eprint!("{text} [y/N] ");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// A container's writable layer, bytes.
pub(crate) fn size_rw(store: &Store, c: &Container) -> u64 {
    if c.rec.image_id.is_empty() {
        return 0;
    }
    crate::front::cp::tree_size(&OverlayDirs::of(store, &c.rec.id).upper)
}

/// Removes every stopped container the filters select: (full ids, bytes freed). A
/// container that cannot be removed is reported and left.
pub(crate) fn prune_containers(store: &Store, f: &Filters) -> (Vec<String>, u64) {
    let mut list = store.list();
    list.sort_by(|x, y| y.rec.created.cmp(&x.rec.created));
    let (mut ids, mut bytes) = (Vec::new(), 0);
    for c in list {
        let live = store.derive(&c);
        if live.is_active() || live == crate::front::containers::Live::Removing {
            continue;
        }
        if !f.matches_container(&c) {
            continue;
        }
        let size = size_rw(store, &c);
        match lifecycle::remove(store, &c.rec.id, false, None) {
            Ok(()) => {
                ids.push(c.rec.id.clone());
                bytes += size;
            }
            // Started (or removed) by someone else meanwhile: not ours to prune.
            Err(e) => crate::logging::warn(&format!("{}: {e:#}", c.rec.name)),
        }
    }
    (ids, bytes)
}

pub(crate) fn prune(g: &Globals, a: &PruneArgs) -> Result<i32> {
    let f = Filters::parse(&a.filter)?;
    if a.all {
        bail!("-a/--all: container prune has no such flag");
    }
    if !a.force
        && !confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
        )?
    {
        return Ok(0);
    }
    let store = Store::new(g);
    let (ids, bytes) = prune_containers(&store, &f);
    if !ids.is_empty() {
        println!("Deleted Containers:");
        for id in &ids {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", units::human_size(bytes as f64));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_and_until_filters() {
        let f = Filters::parse(&["label=app=web".into(), "label!=keep".into()]).unwrap();
        let mut l = std::collections::BTreeMap::new();
        l.insert("app".to_string(), "web".to_string());
        assert!(f.matches(None, &l));
        l.insert("keep".into(), "1".into());
        assert!(!f.matches(None, &l));
        let f = Filters::parse(&["until=1h".into()]).unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(7200);
        assert!(f.matches(Some(old), &l));
        assert!(!f.matches(Some(SystemTime::now()), &l));
        assert!(Filters::parse(&["dangling=true".into()]).is_err());
        assert!(Filters::parse(&["until=garbage".into()]).is_err());
    }
}
