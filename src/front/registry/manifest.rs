//! Manifests as registries serve them: OCI image manifests and indexes, Docker schema 2
//! manifests and manifest lists (schema 1 is refused), and the choice of one platform's
//! manifest from an index.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::front::digest::Digest;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What a pull accepts, best first (the `Accept` header).
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Manifests larger than this are refused (containers/image and containerd use 4 MiB).
pub(crate) const MAX_MANIFEST: u64 = 4 * 1024 * 1024;
/// Image configs larger than this are refused (they are read into memory).
pub(crate) const MAX_CONFIG: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub(crate) struct Platform {
    pub(crate) architecture: String,
    pub(crate) os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) os_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    pub(crate) schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub(crate) schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) media_type: Option<String>,
    pub(crate) manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Manifest {
    Image(ImageManifest),
    Index(Index),
}

/// A layer's compression, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The layer media types an image may carry, and how each is compressed. Others are
/// refused before anything is downloaded.
pub(crate) fn layer_compression(media_type: &str) -> anyhow::Result<Compression> {
    Ok(match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Compression::None,
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
        // Docker's own uncompressed type (docker save writes it; some registries keep it)
        "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
        other => bail!("unsupported layer media type {other:?}"),
    })
}

/// Parses a manifest the registry served with `content_type` (which may be missing or
/// generic: the document's own `mediaType`, or its shape, decides then). Returns the
/// effective media type.
pub(crate) fn parse(
    content_type: Option<&str>,
    bytes: &[u8],
) -> anyhow::Result<(String, Manifest)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
        #[serde(rename = "fsLayers")]
        fs_layers: Option<serde_json::Value>,
    }
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if ct == DOCKER_SCHEMA1 || ct == DOCKER_SCHEMA1_SIGNED {
        bail!(schema1());
    }
    let probe: Probe = serde_json::from_slice(bytes).context("invalid manifest JSON")?;
    if probe.schema_version == Some(1) || probe.fs_layers.is_some() {
        bail!(schema1());
    }
    let mt = match ct.as_str() {
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST => ct.clone(),
        // generic types: trust the document
        "" | "application/json" | "text/plain" | "application/octet-stream" => {
            match (&probe.media_type, &probe.manifests, &probe.config) {
                (Some(m), _, _) => m.clone(),
                (None, Some(_), _) => OCI_INDEX.to_string(),
                (None, None, Some(_)) => OCI_MANIFEST.to_string(),
                _ => bail!("unrecognised manifest: neither layers nor manifests"),
            }
        }
        other => bail!("unsupported manifest media type {other:?}"),
    };
    if let Some(inner) = &probe.media_type {
        if *inner != mt {
            bail!("manifest media type {inner:?} differs from the registry's Content-Type {mt:?}");
        }
    }
    let m = match mt.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if probe.manifests.is_some() {
                bail!("manifest of type {mt:?} lists manifests");
            }
            let m: ImageManifest =
                serde_json::from_slice(bytes).with_context(|| format!("invalid {mt} document"))?;
            Manifest::Image(m)
        }
        OCI_INDEX | DOCKER_LIST => {
            if probe.config.is_some() {
                bail!("index of type {mt:?} has a config");
            }
            let m: Index =
                serde_json::from_slice(bytes).with_context(|| format!("invalid {mt} document"))?;
            Manifest::Index(m)
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => bail!(schema1()),
        other => bail!("unsupported manifest media type {other:?}"),
    };
    if let Manifest::Image(im) = &m {
        match im.config.media_type.as_str() {
            OCI_CONFIG | DOCKER_CONFIG => {}
            other => bail!("not a container image: its config has media type {other:?}"),
        }
    }
    Ok((mt, m))
}

fn schema1() -> String {
    "the image uses Docker's manifest schema 1, which is deprecated and not supported: push it again with a current tool".to_string()
}

/// `os/arch[/variant]`, as `--platform` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlatformSpec {
    pub(crate) os: String,
    pub(crate) architecture: String,
    pub(crate) variant: Option<String>,
}

impl PlatformSpec {
    pub(crate) fn parse(s: &str) -> anyhow::Result<PlatformSpec> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            bail!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64");
        }
        let (architecture, variant) = normalize_arch(parts[1], parts.get(2).copied());
        Ok(PlatformSpec {
            os: parts[0].to_ascii_lowercase(),
            architecture,
            variant,
        })
    }

    /// The machine's own platform: `linux/amd64` here.
    pub(crate) fn host() -> PlatformSpec {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            other => (other, None),
        };
        PlatformSpec {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(str::to_string),
        }
    }

    fn matches(&self, p: &Platform, strict_variant: bool) -> bool {
        let (arch, variant) = normalize_arch(&p.architecture, p.variant.as_deref());
        if p.os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, &variant) {
            (Some(want), Some(have)) => want == have,
            (Some(_), None) => !strict_variant,
            (None, _) => true,
        }
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// containerd's normalisation: `x86_64` is amd64, `aarch64` is arm64 (whose default variant
/// v8 is the same as none), `armhf` is arm/v7.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let a = arch.to_ascii_lowercase();
    let v = variant
        .map(str::to_ascii_lowercase)
        .filter(|v| !v.is_empty());
    match a.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), v.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64".into(), v.filter(|v| v != "v8" && v != "8")),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "i386" | "i686" => ("386".into(), v),
        _ => (a, v),
    }
}

/// The entry of `index` for `want`: an exact variant match first, then an entry without a
/// variant. None names the platforms the index has.
pub(crate) fn choose<'a>(index: &'a Index, want: &PlatformSpec) -> anyhow::Result<&'a Descriptor> {
    let want = PlatformSpec {
        variant: normalize_arch(&want.architecture, want.variant.as_deref()).1,
        ..want.clone()
    };
    let images = || {
        index
            .manifests
            .iter()
            .filter(|d| matches!(d.media_type.as_str(), OCI_MANIFEST | DOCKER_MANIFEST))
    };
    for strict in [true, false] {
        if let Some(d) =
            images().find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p, strict)))
        {
            return Ok(d);
        }
    }
    let mut have: Vec<String> = images()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(|p| {
            let (a, v) = normalize_arch(&p.architecture, p.variant.as_deref());
            match v {
                Some(v) => format!("{}/{a}/{v}", p.os),
                None => format!("{}/{a}", p.os),
            }
        })
        .collect();
    have.dedup();
    bail!(
        "no image for platform {want} in the manifest list (it has: {})",
        if have.is_empty() {
            "none".to_string()
        } else {
            have.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn index(entries: &[(&str, &str, Option<&str>)]) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: entries
                .iter()
                .enumerate()
                .map(|(i, (os, arch, variant))| Descriptor {
                    media_type: OCI_MANIFEST.into(),
                    digest: Digest::of(&[i as u8]),
                    size: 1,
                    urls: vec![],
                    annotations: BTreeMap::new(),
                    platform: Some(Platform {
                        architecture: arch.to_string(),
                        os: os.to_string(),
                        variant: variant.map(str::to_string),
                        os_version: None,
                    }),
                })
                .collect(),
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn chooses_platforms_as_containerd() {
        let idx = index(&[
            ("linux", "amd64", None),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("unknown", "unknown", None),
        ]);
        let pick = |s: &str| {
            let d = choose(&idx, &PlatformSpec::parse(s).unwrap()).unwrap();
            idx.manifests.iter().position(|x| x == d).unwrap()
        };
        assert_eq!(pick("linux/amd64"), 0);
        assert_eq!(pick("linux/x86_64"), 0);
        assert_eq!(pick("linux/arm/v7"), 2);
        assert_eq!(pick("linux/arm/v6"), 1);
        assert_eq!(pick("linux/arm64"), 3);
        assert_eq!(pick("linux/aarch64/v8"), 3);
        assert_eq!(pick("linux/arm"), 1, "no variant asked: the first arm");
        let e = choose(&idx, &PlatformSpec::parse("linux/s390x").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no image for platform linux/s390x in the manifest list (it has: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64)"
        );
        // an entry without variant serves a request with one
        let idx = index(&[("linux", "arm", None)]);
        assert!(choose(&idx, &PlatformSpec::parse("linux/arm/v7").unwrap()).is_ok());
        assert_eq!(PlatformSpec::host().to_string(), "linux/amd64");
        for bad in ["linux", "linux/", "a/b/c/d", "linux/amd 64", ""] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_and_refuses_manifests() {
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":7}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":9}}]}}"#
        );
        let (mt, m) = parse(Some(OCI_MANIFEST), image.as_bytes()).unwrap();
        assert_eq!(mt, OCI_MANIFEST);
        let Manifest::Image(im) = m else { panic!() };
        assert_eq!(im.layers[0].size, 9);
        // generic content type: the document decides
        assert_eq!(
            parse(Some("application/json"), image.as_bytes()).unwrap().0,
            OCI_MANIFEST
        );
        let no_mt = image.replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
        assert_eq!(parse(None, no_mt.as_bytes()).unwrap().0, OCI_MANIFEST);
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert!(matches!(
            parse(None, idx.as_bytes()).unwrap(),
            (_, Manifest::Index(_))
        ));
        let refusals: &[(Option<&str>, String, &str)] = &[
            (Some(DOCKER_SCHEMA1_SIGNED), "{}".into(), "schema 1"),
            (
                None,
                r#"{"schemaVersion":1,"fsLayers":[]}"#.into(),
                "schema 1",
            ),
            (
                Some("application/vnd.example+json"),
                image.clone(),
                "unsupported manifest media type \"application/vnd.example+json\"",
            ),
            (Some(DOCKER_MANIFEST), image.clone(), "differs"),
            (
                Some(OCI_MANIFEST),
                "not json".into(),
                "invalid manifest JSON",
            ),
            (
                Some(OCI_MANIFEST),
                image.replace(OCI_CONFIG, "application/vnd.cncf.helm.config.v1+json"),
                "not a container image",
            ),
            (
                Some(OCI_INDEX),
                image.replace(OCI_MANIFEST, OCI_INDEX),
                "has a config",
            ),
            (
                Some(OCI_MANIFEST),
                image.replace(D1, "sha256:12"),
                "invalid",
            ),
        ];
        for (ct, body, want) in refusals {
            let e = format!("{:#}", parse(*ct, body.as_bytes()).unwrap_err());
            assert!(e.contains(want), "{ct:?} {body}: {e}");
        }
    }

    #[test]
    fn layer_media_types() {
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar").unwrap(),
            Compression::None
        );
        assert_eq!(
            layer_compression("application/vnd.docker.image.rootfs.diff.tar.gzip").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd").unwrap(),
            Compression::Zstd
        );
        assert!(layer_compression("application/vnd.oci.image.layer.v1.tar+bzip2").is_err());
    }
}
