//! `ROOT/containers/<id>/listing.json`: the few fields of a container's record that `ps`
//! shows or filters on (id, name, image, command, created, labels, exposed and published
//! ports, network mode, mounts, whether it has a healthcheck), a fifth of `config.json`'s
//! bytes and a fraction of its parsing, which is most of what a listing of many
//! containers costs.
//!
//! It is a cache, never the truth: it names the `config.json` it was made from (inode,
//! size, modification time, as `fstat` gave them for the file just written) and a reader
//! uses it only while `config.json` is still that file. Every write of the record writes
//! it anew after `config.json` (see `write_record`), so a rename, `update`, a network
//! connect or a restart policy's count are in it at once; a record written by an older
//! berth, by hand, or a listing torn by a crash or of another format version reads as
//! absent, and the full record is read instead. It is written without an fsync: losing it
//! costs one slower listing, nothing else.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use super::Record;

pub(super) const FILE: &str = "listing.json";

/// Bumped whenever the fields kept here change: a listing of another version is ignored.
const VERSION: u32 = 1;

/// Which `config.json` a listing was made from: inode, size, mtime (s, ns). A rename
/// over it makes a new inode; an inode number reused later has another mtime or size.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Source([i64; 4]);

impl Source {
    pub(super) fn of_meta(m: &Metadata) -> Source {
        Source([m.ino() as i64, m.size() as i64, m.mtime(), m.mtime_nsec()])
    }

    pub(super) fn of_stat(s: &nix::sys::stat::FileStat) -> Source {
        #[allow(clippy::unnecessary_cast)]
        Source([
            s.st_ino as i64,
            s.st_size as i64,
            s.st_mtime as i64,
            s.st_mtime_nsec as i64,
        ])
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Out<'a> {
    version: u32,
    source: Source,
    record: OutRecord<'a>,
}

/// What `ps` reads of the record, under the record's own field names: it reads back as
/// a [`Record`] whose other fields are empty.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutRecord<'a> {
    id: &'a str,
    name: &'a str,
    created: &'a str,
    image: &'a str,
    path: &'a str,
    args: &'a [String],
    config: OutConfig<'a>,
    host_config: OutHostConfig<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mounts: &'a [crate::front::volumes::MountPoint],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutConfig<'a> {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    exposed_ports: &'a BTreeMap<String, serde_json::Value>,
    /// Only whether there is one matters (the live health is read when there is).
    #[serde(skip_serializing_if = "Option::is_none")]
    healthcheck: Option<&'a crate::front::monitor::health::HealthConfig>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OutHostConfig<'a> {
    network_mode: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    port_bindings: &'a BTreeMap<String, Vec<crate::front::network::HostPort>>,
}

/// What a listing holds, as read back: only these fields, which are then moved into a
/// [`Record`] (a large struct: parsing into it directly costs a copy of all of it at each
/// step of the way out of the parser).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct In {
    version: u32,
    source: Source,
    record: InRecord,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InRecord {
    id: String,
    name: String,
    created: String,
    image: String,
    path: String,
    args: Vec<String>,
    config: InConfig,
    host_config: InHostConfig,
    mounts: Vec<crate::front::volumes::MountPoint>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InConfig {
    labels: BTreeMap<String, String>,
    exposed_ports: BTreeMap<String, serde_json::Value>,
    healthcheck: Option<crate::front::monitor::health::HealthConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InHostConfig {
    network_mode: String,
    port_bindings: BTreeMap<String, Vec<crate::front::network::HostPort>>,
}

pub(super) fn encode(rec: &Record, source: Source) -> Vec<u8> {
    let out = Out {
        version: VERSION,
        source,
        record: OutRecord {
            id: &rec.id,
            name: &rec.name,
            created: &rec.created,
            image: &rec.image,
            path: &rec.path,
            args: &rec.args,
            config: OutConfig {
                labels: &rec.config.labels,
                exposed_ports: &rec.config.exposed_ports,
                healthcheck: rec.config.healthcheck.as_ref(),
            },
            host_config: OutHostConfig {
                network_mode: &rec.host_config.network_mode,
                port_bindings: &rec.host_config.port_bindings,
            },
            mounts: &rec.mounts,
        },
    };
    let mut v = crate::sys::json::to_vec(&out).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The record a listing holds, if it is of this version and made from `source`.
#[cfg(test)]
fn decode(data: &[u8], source: Source) -> Option<Record> {
    let mut rec = Record::default();
    decode_into(data, source, &mut rec).then_some(rec)
}

/// [`decode`] into `rec` (a default record); whether the listing was of this version and
/// made from `source` (`rec` is left as it was otherwise).
pub(super) fn decode_into(data: &[u8], source: Source, rec: &mut Record) -> bool {
    let Ok(l) = serde_json::from_slice::<In>(data) else {
        return false;
    };
    if l.version != VERSION || l.source != source {
        return false;
    }
    let r = l.record;
    rec.id = r.id;
    rec.name = r.name;
    rec.created = r.created;
    rec.image = r.image;
    rec.path = r.path;
    rec.args = r.args;
    rec.config.labels = r.config.labels;
    rec.config.exposed_ports = r.config.exposed_ports;
    rec.config.healthcheck = r.config.healthcheck;
    rec.host_config.network_mode = r.host_config.network_mode;
    rec.host_config.port_bindings = r.host_config.port_bindings;
    rec.mounts = r.mounts;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        let mut r = Record {
            id: "ab".repeat(32),
            name: "web".into(),
            created: "2026-12-06T10:00:00.123456789Z".into(),
            image: "localhost/busybox:1".into(),
            path: "sh".into(),
            args: vec!["-c".into(), "echo \"hi\"".into()],
            ..Record::default()
        };
        r.config.labels.insert("a".into(), "b=c".into());
        r.config.env.push("SECRET=x".into());
        r.config
            .exposed_ports
            .insert("80/tcp".into(), serde_json::json!({}));
        r.host_config.network_mode = "bridge".into();
        r
    }

    #[test]
    fn round_trip_keeps_what_ps_reads_and_nothing_else() {
        let r = sample();
        let src = Source([7, 2700, 1_700_000_000, 5]);
        let data = encode(&r, src);
        let back = decode(&data, src).expect("same source");
        assert_eq!(back.id, r.id);
        assert_eq!(back.name, r.name);
        assert_eq!(back.created, r.created);
        assert_eq!(back.image, r.image);
        assert_eq!(back.path, r.path);
        assert_eq!(back.args, r.args);
        assert_eq!(back.config.labels, r.config.labels);
        assert_eq!(back.config.exposed_ports, r.config.exposed_ports);
        assert_eq!(back.host_config.network_mode, "bridge");
        // Not a copy of the record: the environment (secrets) stays out of it.
        assert!(back.config.env.is_empty());
        assert!(!String::from_utf8_lossy(&data).contains("SECRET"));
    }

    #[test]
    fn another_source_version_or_torn_file_reads_as_absent() {
        let r = sample();
        let src = Source([7, 2700, 1_700_000_000, 5]);
        let data = encode(&r, src);
        assert!(decode(&data, Source([8, 2700, 1_700_000_000, 5])).is_none());
        assert!(decode(&data, Source([7, 2700, 1_700_000_000, 6])).is_none());
        assert!(decode(&data[..data.len() / 2], src).is_none());
        assert!(decode(b"", src).is_none());
        let other = String::from_utf8(data)
            .unwrap()
            .replace("\"Version\":1", "\"Version\":2");
        assert!(decode(other.as_bytes(), src).is_none());
    }
}
