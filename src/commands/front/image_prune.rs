//! `image prune [-a] [-f] [--filter until=|label=|label!=|dangling=]`: dangling images (every unused
//! one with `-a`), after Docker's confirmation unless `-f`; then `Total reclaimed space`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};

use crate::cli::front::PruneArgs;
use crate::front::digest::Digest;
use crate::front::images::ops::{self, Removed};
use crate::front::units;
use crate::front::Globals;

pub(crate) fn prune(g: &Globals, a: &PruneArgs) -> Result<i32> {
    let filters = Filters::parse(&a.filter, SystemTime::now())?;
    if !a.force {
        let what = if a.all || filters.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    super::unpack_allowed(g, "image prune")?;
    let store = super::image_store(g)?;
    let containers = crate::front::containers::Store::new(g);
    let wanted: BTreeSet<Digest> = ops::list(&store)?
        .into_iter()
        .filter(|i| filters.keep(i.created, &i.labels))
        .map(|i| i.id)
        .collect();
    let p = ops::prune_where(
        &store,
        a.all || filters.all,
        &super::image_user(&containers),
        &|id| wanted.contains(id),
    )?;
    print_removed(&p.removed);
    println!(
        "Total reclaimed space: {}",
        units::human_size(p.reclaimed as f64)
    );
    Ok(0)
}

/// `Deleted Images:` and its lines (nothing when nothing was removed).
pub(crate) fn print_removed(removed: &[Removed]) {
    if removed.is_empty() {
        return;
    }
    println!("Deleted Images:");
    for r in removed {
        match r {
            Removed::Untagged(_) => {
                println!("{}", r.to_string().replacen("Untagged:", "untagged:", 1))
            }
            Removed::Deleted(d) => println!("deleted: {d}"),
        }
    }
    println!();
}

/// Docker's prune filters: `until=TIME` (created before it: a Go duration before now,
/// RFC 3339, or Unix seconds), `label=KEY[=VALUE]` (has it), `label!=KEY[=VALUE]` (has
/// not). Every filter must hold.
#[derive(Debug, Default)]
struct Filters {
    until: Option<i64>,
    /// `dangling=false`: every unused image, as `-a`.
    all: bool,
    labels: Vec<(String, Option<String>, bool)>,
}

impl Filters {
    fn parse(filters: &[String], now: SystemTime) -> Result<Filters> {
        let mut out = Filters::default();
        for f in filters {
            let (k, v, negate) = match f.split_once('=') {
                Some((k, v)) if k.ends_with('!') => (&k[..k.len() - 1], v, true),
                Some((k, v)) => (k, v, false),
                None => bail!("invalid filter {f:?}: expected key=value"),
            };
            match (k, negate) {
                ("until", false) => {
                    let t = units::get_timestamp(v, now)
                        .map_err(|e| anyhow!("invalid filter until={v:?}: {e:#}"))?;
                    let secs = t
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    // Several: the earliest (all must hold).
                    out.until = Some(out.until.map_or(secs, |u| u.min(secs)));
                }
                ("dangling", false) => match v {
                    "true" | "1" => {}
                    "false" | "0" => out.all = true,
                    _ => bail!("invalid filter dangling={v:?}: expected true or false"),
                },
                ("label", _) => {
                    if v.is_empty() {
                        bail!("invalid filter {f:?}: a label key is needed");
                    }
                    let (lk, lv) = match v.split_once('=') {
                        Some((lk, lv)) => (lk.to_string(), Some(lv.to_string())),
                        None => (v.to_string(), None),
                    };
                    out.labels.push((lk, lv, negate));
                }
                _ => bail!(
                    "invalid filter {f:?}: image prune takes until, label, label!= and dangling"
                ),
            }
        }
        Ok(out)
    }

    fn keep(&self, created: Option<i64>, labels: &BTreeMap<String, String>) -> bool {
        if let Some(u) = self.until {
            // An image without a creation time is older than any bound (Docker: zero time).
            if created.unwrap_or(0) >= u {
                return false;
            }
        }
        self.labels.iter().all(|(k, v, negate)| {
            let has = match v {
                Some(v) => labels.get(k).is_some_and(|x| x == v),
                None => labels.contains_key(k),
            };
            has != *negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(list: &[&str]) -> Result<Filters> {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10_000);
        Filters::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>(), now)
    }

    #[test]
    fn until_and_labels() {
        let l: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let none = BTreeMap::new();
        let u = f(&["until=1h"]).unwrap();
        assert_eq!(u.until, Some(10_000 - 3600));
        assert!(u.keep(Some(100), &none));
        assert!(!u.keep(Some(9_000), &none));
        assert!(f(&["until=5000"]).unwrap().keep(Some(4_999), &none));
        assert!(!f(&["until=5000"]).unwrap().keep(Some(5_000), &none));
        assert!(f(&["label=a"]).unwrap().keep(None, &l));
        assert!(f(&["label=a=1"]).unwrap().keep(None, &l));
        assert!(!f(&["label=a=2"]).unwrap().keep(None, &l));
        assert!(!f(&["label=a"]).unwrap().keep(None, &none));
        assert!(!f(&["label!=a"]).unwrap().keep(None, &l));
        assert!(f(&["label!=a=2"]).unwrap().keep(None, &l));
        assert!(!f(&["label=a", "until=1h"]).unwrap().keep(Some(9_999), &l));
        assert!(f(&["dangling=false"]).unwrap().all);
        assert!(!f(&["dangling=true"]).unwrap().all);
        for bad in [
            "until=soon",
            "dangling=maybe",
            "label=",
            "nokey",
            "until!=1h",
            "x=1",
        ] {
            assert!(f(&[bad]).is_err(), "{bad}");
        }
    }
}
