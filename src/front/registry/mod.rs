//! The distribution side of the people face: image references resolved through
//! registries.conf, credentials, certificates, and a blocking client of the OCI
//! distribution API (pull and push).
//!
//! What commands call: [`pull_image`] (with [`config::Registries`], [`client::ClientOptions`]
//! and a [`pull::BlobSink`]), [`login`] / [`logout`], and [`client::Registry`]'s push API.

pub(crate) mod auth;
mod base64;
pub(crate) mod certs;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod manifest;
pub(crate) mod pull;
pub(crate) mod push;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;

use anyhow::{bail, Context};

use crate::front::reference::{self, Reference};
use auth::{AuthFiles, Credentials};
use client::{ClientOptions, Registry};
use config::Registries;
use pull::{BlobSink, PullEvent, PullOptions, Pulled};

/// `pull NAME`: each candidate of the name in order (a short name's unqualified-search
/// registries, or its alias; a qualified name alone), each through its mirrors; the first
/// that serves the image wins. Returns the candidate (the name to record the image under:
/// never a mirror's) and the pull.
pub(crate) fn pull_image(
    input: &str,
    conf: &Registries,
    client: &ClientOptions,
    opts: &PullOptions,
    sink: &dyn BlobSink,
    events: &(dyn Fn(PullEvent) + Sync),
) -> anyhow::Result<(Reference, Pulled)> {
    let candidates = conf.pull_candidates(input)?;
    let mut errors = Vec::new();
    for c in &candidates {
        let result = conf
            .endpoints(c)
            .and_then(|eps| pull::pull(&eps, client, opts, sink, events));
        match result {
            Ok(p) => return Ok((c.clone(), p)),
            Err(e) => errors.push((c, e)),
        }
    }
    if errors.len() == 1 {
        return Err(errors.pop().expect("one").1);
    }
    // Podman tries every search registry and reports each failure; on one line here.
    let all: Vec<String> = errors.iter().map(|(c, e)| format!("{c}: {e:#}")).collect();
    bail!(
        "{input}: no registry could provide the image: {}",
        all.join("; ")
    )
}

/// `login REGISTRY`: the credentials are checked against the registry, then stored in
/// the primary auth.json under `host[/namespace]`. Returns the key stored.
pub(crate) fn login(
    target: &str,
    creds: &Credentials,
    conf: &Registries,
    opts: &ClientOptions,
    files: &AuthFiles,
) -> anyhow::Result<String> {
    let key = auth::normalize_key(target);
    let host = key.split('/').next().unwrap_or_default();
    if host.is_empty() || !reference::valid_domain(host) {
        bail!("invalid registry {target:?}: expected HOST[:PORT][/NAMESPACE]");
    }
    if creds.username.is_empty() {
        bail!("login to {host}: a username is required");
    }
    if creds.password.expose().is_empty() {
        bail!("login to {host}: a password is required");
    }
    let probe = Reference::parse(&format!("{host}/x")).context("registry name")?;
    let opts = ClientOptions {
        credentials: Some(creds.clone()),
        ..opts.clone()
    };
    Registry::new(host, conf.insecure(&probe), &opts)?.check_login()?;
    files.store(&key, creds)?;
    Ok(key)
}

/// `logout REGISTRY`: removes its credentials from the primary auth.json; an error when
/// there were none there (naming the Docker file that holds some, if one does).
pub(crate) fn logout(target: &str, files: &AuthFiles) -> anyhow::Result<()> {
    let key = auth::normalize_key(target);
    if files.remove(&key)? {
        return Ok(());
    }
    match files.found_elsewhere(&key) {
        Some(f) => bail!(
            "not logged into {key} with berth: the credentials in {} were stored by another tool (docker logout {key})",
            f.display()
        ),
        None => bail!("not logged into {key}"),
    }
}
