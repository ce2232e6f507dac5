//! `import FILE|- [REPOSITORY[:TAG]]`: a root filesystem tarball as a one-layer image,
//! with `--change` instructions; prints the image id.

use std::io::{IsTerminal, Read};

use anyhow::{bail, Result};

use crate::cli::front::ImportArgs;
use crate::front::images::archive;
use crate::front::registry::manifest::PlatformSpec;
use crate::front::Globals;

pub(crate) fn import(g: &Globals, a: &ImportArgs) -> Result<i32> {
    if let Some(p) = &a.platform {
        let want = PlatformSpec::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e:#}"))?;
        if want != PlatformSpec::host() {
            bail!("--platform {p}: only this machine's platform can be imported");
        }
    }
    if a.source.contains("://") {
        bail!(
            "{}: importing from a URL is not supported: download it first",
            a.source
        );
    }
    let tags = match &a.reference {
        Some(r) => vec![super::tag::qualified_tag(r)?],
        None => vec![],
    };
    super::unpack_allowed(g, "import")?;
    let store = super::image_store(g)?;
    let id = if a.source == "-" {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            bail!("import -: stdin is a terminal: redirect a tarball into it");
        }
        let mut r: Box<dyn Read> = Box::new(stdin.lock());
        archive::import(&store, &mut r, &a.change, a.message.as_deref(), &tags)?
    } else {
        let f = std::fs::File::open(&a.source)
            .map_err(|e| anyhow::anyhow!("{}: {}", a.source, crate::error::errno_text(&e)))?;
        let mut r = std::io::BufReader::with_capacity(256 * 1024, f);
        archive::import(&store, &mut r, &a.change, a.message.as_deref(), &tags)?
    };
    println!("{id}");
    Ok(0)
}
