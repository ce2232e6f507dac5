//! Container logs: the drivers a container's output is written with (Docker's json-file
//! byte for byte, conmon's k8s-file, journald's native protocol, none), rotation by
//! renaming (never truncating a file a reader may hold), and the reader behind `logs`
//! (rotated files in order, `--since/--until`, `--tail`, `-t`, `-f`).

pub(crate) mod journald;
mod jsonfile;
mod k8s;
pub(crate) mod reader;
pub(crate) mod writer;

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};

use super::units::from_human_size;

/// Which pipe of the container a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn idx(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    fn parse(s: &str) -> Option<Stream> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// `--log-driver`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    /// Docker's json-file (the real one; Podman's "json-file" is k8s-file).
    JsonFile,
    /// conmon's CRI format.
    K8sFile,
    Journald,
    None,
}

impl Driver {
    pub(crate) fn parse(name: &str) -> Result<Driver> {
        Ok(match name {
            "json-file" => Driver::JsonFile,
            "k8s-file" => Driver::K8sFile,
            "journald" => Driver::Journald,
            "none" => Driver::None,
            other => bail!("no log driver named '{other}' is registered"),
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Driver::JsonFile => "json-file",
            Driver::K8sFile => "k8s-file",
            Driver::Journald => "journald",
            Driver::None => "none",
        }
    }

    /// Whether `logs` can read what this driver wrote.
    pub(crate) fn readable(self) -> bool {
        matches!(self, Driver::JsonFile | Driver::K8sFile)
    }
}

/// `--log-opt` values, validated per driver, plus what the monitor knows of the container
/// (journald fields, json-file `attrs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogOptions {
    /// Rotate when the file reaches this many bytes (`max-size`, decimal units as Docker:
    /// `10m` = 10,000,000).
    pub(crate) max_size: Option<u64>,
    /// Files kept, the live one included (`max-file`, default 1).
    pub(crate) max_file: usize,
    /// `tag` (journald's CONTAINER_TAG and SYSLOG_IDENTIFIER).
    pub(crate) tag: Option<String>,
    /// `labels`: container label keys copied into each record's attrs.
    pub(crate) labels: Vec<String>,
    /// `env`: environment variable names copied into each record's attrs.
    pub(crate) env: Vec<String>,
    pub(crate) container_id: String,
    pub(crate) container_name: String,
    /// Resolved attrs (see [`LogOptions::extra_attrs`]); json-file writes them as `attrs`.
    pub(crate) attrs: BTreeMap<String, String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_size: None,
            max_file: 1,
            tag: None,
            labels: Vec::new(),
            env: Vec::new(),
            container_id: String::new(),
            container_name: String::new(),
            attrs: BTreeMap::new(),
        }
    }
}

impl LogOptions {
    /// Validates `--log-opt key=value` pairs for `driver`, with Docker's messages.
    pub(crate) fn parse(driver: Driver, opts: &[(String, String)]) -> Result<LogOptions> {
        let mut o = LogOptions::default();
        for (k, v) in opts {
            let allowed: &[&str] = match driver {
                Driver::JsonFile | Driver::K8sFile => {
                    &["max-size", "max-file", "compress", "labels", "env", "tag"]
                }
                Driver::Journald => &["tag", "labels", "env"],
                Driver::None => &[],
            };
            if !allowed.contains(&k.as_str()) {
                bail!("unknown log opt '{k}' for {} log driver", driver.name());
            }
            let list = |v: &str| -> Vec<String> {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            match k.as_str() {
                "max-size" => {
                    let n = from_human_size(v).with_context(|| format!("max-size {v:?}"))?;
                    if n <= 0 {
                        bail!("max-size must be a positive number");
                    }
                    o.max_size = Some(n as u64);
                }
                "max-file" => {
                    let n: i64 = v
                        .parse()
                        .with_context(|| format!("max-file {v:?}: not a number"))?;
                    if n < 1 {
                        bail!("max-file cannot be less than 1");
                    }
                    o.max_file = n as usize;
                }
                "compress" => match v.as_str() {
                    "false" | "0" => {}
                    _ => bail!(
                        "log opt compress is not supported: rotated logs are kept uncompressed"
                    ),
                },
                "tag" => o.tag = Some(v.clone()),
                "labels" => o.labels = list(v),
                "env" => o.env = list(v),
                _ => unreachable!("checked above"),
            }
        }
        Ok(o)
    }

    /// Docker's extra attributes: the listed labels and environment variables the
    /// container has (env entries are `KEY=value`).
    pub(crate) fn extra_attrs(
        &self,
        labels: &BTreeMap<String, String>,
        env: &[String],
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for k in &self.labels {
            if let Some(v) = labels.get(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for k in &self.env {
            if let Some(v) = env
                .iter()
                .find_map(|e| e.split_once('=').filter(|(n, _)| n == k).map(|(_, v)| v))
            {
                out.insert(k.clone(), v.to_string());
            }
        }
        out
    }
}

/// One record of a log file: a line (without its newline) or a piece of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) time: SystemTime,
    pub(crate) stream: Stream,
    pub(crate) line: Vec<u8>,
    /// More of this line follows in later records (no newline yet).
    pub(crate) partial: bool,
    /// The record's attributes (`--log-opt labels=,env=,tag`) as `logs --details` shows
    /// them: `key=value` pairs, URL-query-escaped, by key, joined by commas.
    pub(crate) details: Vec<u8>,
}

/// A directory removed when dropped, for the tests of this module.
#[cfg(test)]
pub(super) struct TestDir(pub(super) std::path::PathBuf);

#[cfg(test)]
impl TestDir {
    pub(super) fn new(tag: &str) -> TestDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("berth-logs-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TestDir(d)
    }
}

#[cfg(test)]
impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_validate_like_docker() {
        let o = LogOptions::parse(
            Driver::JsonFile,
            &kv(&[("max-size", "10m"), ("max-file", "3")]),
        )
        .unwrap();
        assert_eq!((o.max_size, o.max_file), (Some(10_000_000), 3));
        for (driver, pairs, msg) in [
            (
                Driver::JsonFile,
                vec![("max-size", "0")],
                "max-size must be a positive number",
            ),
            (
                Driver::JsonFile,
                vec![("max-file", "0")],
                "max-file cannot be less than 1",
            ),
            (
                Driver::JsonFile,
                vec![("nope", "1")],
                "unknown log opt 'nope' for json-file log driver",
            ),
            (
                Driver::None,
                vec![("max-size", "1m")],
                "unknown log opt 'max-size' for none log driver",
            ),
            (
                Driver::JsonFile,
                vec![("max-size", "1x")],
                "max-size \"1x\": invalid suffix: 'x'",
            ),
        ] {
            let e = LogOptions::parse(driver, &kv(&pairs)).unwrap_err();
            assert_eq!(format!("{e:#}"), msg);
        }
        assert_eq!(
            Driver::parse("syslog").unwrap_err().to_string(),
            "no log driver named 'syslog' is registered"
        );
    }

    #[test]
    fn extra_attrs_pick_listed_labels_and_env() {
        let o = LogOptions::parse(
            Driver::JsonFile,
            &kv(&[("labels", "a,b"), ("env", "HOME,NOPE")]),
        )
        .unwrap();
        let labels: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string()), ("c".into(), "3".into())].into();
        let attrs = o.extra_attrs(&labels, &["HOME=/root".into(), "PATH=/bin".into()]);
        assert_eq!(
            attrs,
            [
                ("HOME".to_string(), "/root".to_string()),
                ("a".into(), "1".into())
            ]
            .into()
        );
    }
}
