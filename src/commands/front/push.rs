//! `push NAME[:TAG] [DESTINATION]`: the image's manifest and blobs to a registry (blobs it
//! has skipped, blobs of the same registry mounted), Docker's lines, then
//! `TAG: digest: sha256:... size: N`. The pushed digest joins the image's repo digests.

use anyhow::{bail, Context, Result};

use crate::cli::front::PushArgs;
use crate::front::images::pull::StoreSource;
use crate::front::reference::Reference;
use crate::front::registry::client::Registry;
use crate::front::registry::manifest::OCI_MANIFEST;
use crate::front::registry::push::{push_image, PushEvent};
use crate::front::Globals;

pub(crate) fn push(g: &Globals, a: &PushArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    let conf = super::pull::registries()?;
    let (rec, _) = super::lookup_image(&store, &a.image)?;
    let dest = a.destination.as_deref().unwrap_or(&a.image);
    let dest = dest.strip_prefix("docker://").unwrap_or(dest);
    let target = Reference::parse(dest).map_err(|e| anyhow::anyhow!("{dest}: {e}"))?;
    if target.digest().is_some() {
        bail!("{dest}: push to a tag, not a digest");
    }
    let mut client = super::pull::client_options(a.tls_verify, a.authfile.as_deref());
    client.cert_dir = a.cert_dir.clone();
    let registry = Registry::for_repository(
        target.domain(),
        target.path(),
        conf.insecure(&target),
        &client,
    )?;
    let bytes = store.read_small_blob(&rec.manifest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(String::from)
        })
        .unwrap_or_else(|| OCI_MANIFEST.to_string());
    // Blobs of the image's other repositories on the same registry can be mounted.
    let mount_from: Vec<String> = rec
        .repo_digests
        .iter()
        .filter_map(|rd| Reference::parse(rd).ok())
        .filter(|r| r.domain() == target.domain())
        .map(|r| r.path().to_string())
        .collect();
    let quiet = a.quiet;
    if !quiet {
        println!("The push refers to repository [{}]", target.repository());
    }
    let events = |e: PushEvent| {
        if quiet {
            return;
        }
        match e {
            PushEvent::Preparing(d) => println!("{}: Preparing", d.short()),
            PushEvent::Exists(d) => println!("{}: Layer already exists", d.short()),
            PushEvent::Mounted { digest, from } => {
                println!("{}: Mounted from {from}", digest.short())
            }
            PushEvent::Progress { .. } => {}
            PushEvent::Pushed(d) => println!("{}: Pushed", d.short()),
        }
    };
    let digest = push_image(
        &registry,
        &target,
        &media_type,
        &bytes,
        &StoreSource(&store),
        &mount_from,
        &events,
    )
    .with_context(|| format!("push {target}"))?;
    if !quiet {
        println!(
            "{}: digest: {digest} size: {}",
            target.tag().unwrap_or("latest"),
            bytes.len()
        );
    }
    let rd = format!("{}@{digest}", target.repository());
    let _lock = store.lock()?;
    if let Some(mut r) = store.image(&rec.id)? {
        if !r.repo_digests.contains(&rd) {
            r.repo_digests.push(rd);
            store.write_record(&r)?;
        }
    }
    Ok(0)
}
