//! `image prune [-a] [-f]`: dangling images (every unused one with `-a`), after Docker's
//! confirmation unless `-f`; then `Total reclaimed space`.

use std::io::BufRead;

use anyhow::{bail, Result};

use crate::cli::front::PruneArgs;
use crate::front::images::ops::{self, Removed};
use crate::front::units;
use crate::front::Globals;

pub(crate) fn prune(g: &Globals, a: &PruneArgs) -> Result<i32> {
    if let Some(f) = a.filter.first() {
        bail!("--filter {f}: image prune takes no filters yet");
    }
    if !a.force {
        let what = if a.all {
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
    let store = super::image_store(g)?;
    let containers = crate::front::containers::Store::new(g);
    let p = ops::prune(&store, a.all, &super::image_user(&containers))?;
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
