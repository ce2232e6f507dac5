//! `import FILE|URL|- [REPOSITORY[:TAG]]`: a root filesystem tarball (a file, stdin, or
//! fetched over http(s), as Docker) as a one-layer image, with `--change` instructions;
//! prints the image id.

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
    let tags = match &a.reference {
        Some(r) => vec![super::tag::qualified_tag(r)?],
        None => vec![],
    };
    super::unpack_allowed(g, "import")?;
    let store = super::image_store(g)?;
    let id = if a.source.contains("://") {
        let mut r = std::io::BufReader::with_capacity(256 * 1024, fetch(&a.source)?);
        archive::import(&store, &mut r, &a.change, a.message.as_deref(), &tags)?
    } else if a.source == "-" {
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

/// The body of a `GET URL` (redirects followed; https verified with the system's CAs and
/// certs.d), streamed: the tarball is never held whole in memory.
fn fetch(source: &str) -> Result<crate::front::registry::http::BodyReader> {
    use crate::front::registry::http::{Body, Connector, Url};
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        bail!("{source}: only http:// and https:// URLs can be imported");
    }
    let opts = crate::front::registry::client::ClientOptions::from_env();
    let conn = Connector::new(opts.cert_dirs, opts.cert_dir, opts.io_timeout);
    let mut url = Url::parse(source).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    for _ in 0..10 {
        let resp = conn
            .send("GET", &url, &[], Body::Empty, true)
            .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        match resp.status {
            200 => return Ok(resp.body),
            301 | 302 | 303 | 307 | 308 => {
                let Some(loc) = resp.header("Location").map(String::from) else {
                    bail!("{source}: redirect ({}) without a location", resp.status);
                };
                resp.discard();
                url = url
                    .join(&loc)
                    .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
            }
            s => bail!("{source}: the server answered {s}"),
        }
    }
    bail!("{source}: too many redirects")
}
