//! `export [-o FILE] CONTAINER`: the container's filesystem as a tar archive (its image's
//! layers and its own changes, not what is mounted on it), running or stopped.

use std::io::{IsTerminal, Write};

use anyhow::{anyhow, bail, Result};

use crate::cli::front::ExportArgs;
use crate::front::containers::Store;
use crate::front::cp;
use crate::front::Globals;

pub(crate) fn export(g: &Globals, a: &ExportArgs) -> Result<i32> {
    let out_path = a.output.as_deref().filter(|o| *o != "-");
    if out_path.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let store = Store::new(g);
    let c = store.get_started(&a.container)?;
    cp::usable(store.derive(&c))?;
    let rootfs = cp::open_rootfs(&store, &c, false)?;
    let found = cp::lookup(std::os::fd::AsFd::as_fd(&rootfs.fd), "/", false)?;
    let devs = [found.stat.map_or(0, |s| s.st_dev)];
    match out_path {
        None => {
            let res = cp::deep(|| {
                let mut out = std::io::BufWriter::new(std::io::stdout());
                cp::archive(&found, "", Some(&devs), &mut out).and_then(|_| Ok(out.flush()?))
            });
            // The reader stopped early (`| tar -t | head`): not an error of the export.
            if let Err(e) = res {
                if !cp::broken_pipe(&e) {
                    return Err(e);
                }
            }
        }
        Some(p) => {
            // Written beside its final name and renamed: a failed export leaves nothing.
            let tmp = format!("{p}.berth-export-{}", std::process::id());
            let res = (|| -> Result<()> {
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| anyhow!("--output {p}: {}", crate::error::errno_text(&e)))?;
                let mut out = std::io::BufWriter::new(f);
                cp::deep(|| cp::archive(&found, "", Some(&devs), &mut out))?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::rename(&tmp, p)
                    .map_err(|e| anyhow!("--output {p}: {}", crate::error::errno_text(&e)))
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res?;
        }
    }
    Ok(0)
}
