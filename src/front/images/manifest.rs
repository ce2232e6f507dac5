//! The JSON documents of an image: manifests (OCI and Docker schema 2), indexes and
//! manifest lists, and the image configuration. Only what the store needs is typed; the
//! configuration is kept whole for `inspect`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::front::digest::Digest;

/// Manifests, indexes and configurations larger than this are refused (as containerd and
/// the distribution spec's registries do): a hostile document cannot exhaust memory.
pub(crate) const MAX_DOCUMENT: u64 = 4 << 20;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub(crate) schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    pub(crate) layers: Vec<Descriptor>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Index {
    #[serde(rename = "schemaVersion")]
    pub(crate) schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) manifests: Vec<Descriptor>,
}

/// The typed part of an image configuration.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) created: Option<String>,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) os: String,
    pub(crate) rootfs: RootFs,
    #[serde(default)]
    pub(crate) history: Vec<History>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct RootFs {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) empty_layer: bool,
}

/// What a manifest-like document is, by its own `mediaType` (or shape when it has none).
pub(crate) enum Document {
    Manifest(Manifest),
    Index(Index),
}

pub(crate) fn parse_document(bytes: &[u8]) -> Result<Document> {
    if bytes.len() as u64 > MAX_DOCUMENT {
        bail!("manifest of {} bytes exceeds the 4 MiB limit", bytes.len());
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).context("invalid manifest JSON")?;
    let mt = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        bail!("docker schema 1 manifests are not supported");
    }
    match mt {
        OCI_INDEX | DOCKER_LIST => {}
        OCI_MANIFEST | DOCKER_MANIFEST => {}
        "" => {}
        other => bail!("unsupported manifest media type {other:?}"),
    }
    if v.get("manifests").is_some() && !matches!(mt, OCI_MANIFEST | DOCKER_MANIFEST) {
        return Ok(Document::Index(
            serde_json::from_value(v).context("invalid image index")?,
        ));
    }
    let m: Manifest = serde_json::from_value(v).context("invalid image manifest")?;
    if m.schema_version != 2 {
        bail!("unsupported manifest schema version {}", m.schema_version);
    }
    if !matches!(
        m.config.media_type.as_str(),
        OCI_CONFIG | DOCKER_CONFIG | ""
    ) {
        bail!(
            "unsupported config media type {:?}: not a container image",
            m.config.media_type
        );
    }
    if m.config.size > MAX_DOCUMENT {
        bail!(
            "image configuration of {} bytes exceeds the 4 MiB limit",
            m.config.size
        );
    }
    for l in &m.layers {
        layer_compression(&l.media_type)?;
    }
    Ok(Document::Manifest(m))
}

/// Which layer media types are accepted; the content is recognised by its magic bytes
/// anyway, but a media type that is not a layer (a Helm chart, a signature) is refused.
pub(crate) fn layer_compression(media_type: &str) -> Result<()> {
    const OK: &[&str] = &[
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ];
    if OK.contains(&media_type) {
        Ok(())
    } else {
        bail!("unknown layer media type {media_type:?}")
    }
}

pub(crate) fn parse_config(bytes: &[u8]) -> Result<(Config, serde_json::Value)> {
    if bytes.len() as u64 > MAX_DOCUMENT {
        bail!("image configuration exceeds the 4 MiB limit");
    }
    let v: serde_json::Value =
        serde_json::from_slice(bytes).context("invalid image configuration JSON")?;
    let c: Config = serde_json::from_value(v.clone()).context("invalid image configuration")?;
    if c.rootfs.kind != "layers" {
        bail!(
            "unsupported rootfs type {:?} in image configuration",
            c.rootfs.kind
        );
    }
    Ok((c, v))
}

/// The host's platform in OCI terms.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        a => a,
    }
}

/// The manifest of an index for `os/arch[/variant]` (the host's when None).
pub(crate) fn choose_platform<'a>(
    idx: &'a Index,
    want: Option<&Platform>,
) -> Result<&'a Descriptor> {
    let host = Platform {
        architecture: host_arch().into(),
        os: "linux".into(),
        variant: None,
    };
    let want = want.unwrap_or(&host);
    idx.manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant == want.variant)
            })
        })
        .with_context(|| {
            format!(
                "no image for platform {}/{} in the index",
                want.os, want.architecture
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_schema1_big_and_unknown() {
        assert!(parse_document(br#"{"schemaVersion":1,"fsLayers":[]}"#)
            .err()
            .unwrap()
            .to_string()
            .contains("schema 1"));
        let big = vec![b' '; (MAX_DOCUMENT + 1) as usize];
        assert!(parse_document(&big)
            .err()
            .unwrap()
            .to_string()
            .contains("4 MiB"));
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":2}},
              "layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{d}","size":1}}]}}"#
        );
        assert!(parse_document(m.as_bytes())
            .err()
            .unwrap()
            .to_string()
            .contains("unknown layer media type"));
    }
}
