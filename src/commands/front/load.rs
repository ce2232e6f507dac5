//! `load [-i FILE]`: a docker-archive or oci-archive (compressed or not) from a file or
//! stdin; `Loaded image: NAME` per name.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Result};

use crate::cli::front::LoadArgs;
use crate::front::images::archive;
use crate::front::Globals;

pub(crate) fn load(g: &Globals, a: &LoadArgs) -> Result<i32> {
    super::unpack_allowed(g, "load")?;
    let store = super::image_store(g)?;
    let loaded = match a.input.as_deref() {
        Some(f) if f != "-" => {
            let file = std::fs::File::open(f)
                .map_err(|e| anyhow::anyhow!("-i {f}: {}", crate::error::errno_text(&e)))?;
            let mut r = std::io::BufReader::with_capacity(256 * 1024, file);
            archive::load(&store, &mut r).map_err(|e| e.context(format!("-i {f}")))?
        }
        _ => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty: use -i FILE or redirect");
            }
            let mut r: Box<dyn Read> = Box::new(stdin.lock());
            archive::load(&store, &mut r)?
        }
    };
    for l in &loaded {
        let id = l.id.to_string();
        crate::front::events::image(&g.runroot, "load", &id, &id);
    }
    if !a.quiet {
        for l in archive::load_report(&loaded) {
            println!("{l}");
        }
    }
    Ok(0)
}
