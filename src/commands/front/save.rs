//! `save [-o FILE] [--format docker-archive|oci-archive] IMAGE...`: one archive of every
//! image named; to a file (written aside, renamed when whole) or to a non-terminal stdout.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cli::front::SaveArgs;
use crate::front::digest::Digest;
use crate::front::images::archive::{self, ArchiveFormat};
use crate::front::images::ops::Matched;
use crate::front::Globals;

pub(crate) fn save(g: &Globals, a: &SaveArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    let format = match a.format.as_str() {
        "oci-archive" => ArchiveFormat::Oci,
        _ => ArchiveFormat::Docker,
    };
    // Each image once, with every name it was asked by.
    let mut images: Vec<(Digest, Vec<String>)> = Vec::new();
    for q in &a.images {
        let (rec, m) = super::lookup_image(&store, q)?;
        let name = match m {
            Matched::Name(n) => Some(n),
            Matched::Id => None,
        };
        match images.iter_mut().find(|(id, _)| *id == rec.id) {
            Some((_, names)) => names.extend(name.filter(|n| !names.contains(n))),
            None => images.push((rec.id, name.into_iter().collect())),
        }
    }
    match a.output.as_deref().filter(|o| *o != "-") {
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut out = stdout.lock();
            archive::save(&store, &images, format, &mut out)?;
            out.flush()?;
        }
        Some(o) => {
            let path = Path::new(o);
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            let name = path
                .file_name()
                .with_context(|| format!("-o {o}: not a file name"))?;
            let tmp = dir.unwrap_or(Path::new(".")).join(format!(
                ".{}.{}.tmp",
                name.to_string_lossy(),
                std::process::id()
            ));
            let r = (|| -> Result<()> {
                let mut f = std::fs::File::create(&tmp)
                    .map_err(|e| anyhow::anyhow!("-o {o}: {}", crate::error::errno_text(&e)))?;
                archive::save(&store, &images, format, &mut f)?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .map_err(|e| anyhow::anyhow!("-o {o}: {}", crate::error::errno_text(&e)))
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r?;
        }
    }
    Ok(0)
}
