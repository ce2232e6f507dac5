//! The container log as the monitor writes it: Docker's json-file (one
//! `{"log":"...","stream":"...","time":"..."}` per line, lines longer than 16 KiB split, only
//! the last part carrying the `\n`), Podman's k8s-file (`TIME STREAM F|P line`), or none.
//! Rotation by `max-size`/`max-file` renames (`log.1`, `log.2`, ...), never truncates.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Result};

use crate::front::containers::LogConfig;

/// Docker's copier buffer: a line longer than this is logged in parts.
const MAX_LINE: usize = 16 * 1024;

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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    JsonFile,
    K8sFile,
    None,
}

pub(crate) struct LogWriter {
    kind: Kind,
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    /// Bytes of an unfinished line, per stream.
    pending: [Vec<u8>; 2],
}

impl LogWriter {
    pub(crate) fn open(path: &Path, cfg: &LogConfig) -> Result<LogWriter> {
        let kind = match cfg.kind.as_str() {
            "k8s-file" => Kind::K8sFile,
            "none" => Kind::None,
            _ => Kind::JsonFile,
        };
        let max_size = cfg
            .config
            .get("max-size")
            .and_then(|s| crate::front::units::from_human_size(s).ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64);
        let max_file = cfg
            .config
            .get("max-file")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let mut w = LogWriter {
            kind,
            path: path.to_path_buf(),
            file: None,
            size: 0,
            max_size,
            max_file,
            pending: [Vec::new(), Vec::new()],
        };
        if kind != Kind::None {
            w.reopen()?;
        }
        Ok(w)
    }

    fn reopen(&mut self) -> Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.path)
            .map_err(|e| anyhow!("{}: {}", self.path.display(), crate::error::errno_text(&e)))?;
        self.size = f.metadata().map(|m| m.len()).unwrap_or(0);
        self.file = Some(f);
        Ok(())
    }

    /// Bytes the container wrote on `stream`.
    pub(crate) fn write(&mut self, stream: Stream, data: &[u8]) {
        if self.kind == Kind::None {
            return;
        }
        let now = SystemTime::now();
        let i = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[i]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl + 1;
            self.record(stream, &buf[start..end], true, now);
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.record(stream, &buf[start..start + MAX_LINE], false, now);
            start += MAX_LINE;
        }
        self.pending[i] = buf[start..].to_vec();
    }

    /// The end of the streams: what is left of a line is logged as it is.
    pub(crate) fn flush(&mut self) {
        let now = SystemTime::now();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream as usize]);
            if !rest.is_empty() {
                self.record(stream, &rest, false, now);
            }
        }
    }

    fn record(&mut self, stream: Stream, line: &[u8], full: bool, t: SystemTime) {
        let rec = match self.kind {
            Kind::JsonFile => {
                let mut s = String::with_capacity(line.len() + 64);
                s.push_str("{\"log\":");
                json_string(line, &mut s);
                s.push_str(",\"stream\":\"");
                s.push_str(stream.name());
                s.push_str("\",\"time\":\"");
                s.push_str(&crate::front::units::rfc3339_nano(t));
                s.push_str("\"}\n");
                s.into_bytes()
            }
            Kind::K8sFile => {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                let mut v = format!(
                    "{} {} {} ",
                    crate::front::units::k8s_timestamp(t),
                    stream.name(),
                    if full { "F" } else { "P" }
                )
                .into_bytes();
                v.extend_from_slice(body);
                v.push(b'\n');
                v
            }
            Kind::None => return,
        };
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + rec.len() as u64 > max {
                self.rotate();
            }
        }
        if let Some(f) = &mut self.file {
            if f.write_all(&rec).is_ok() {
                self.size += rec.len() as u64;
            }
        }
    }

    /// log -> log.1 -> log.2 ...; the oldest beyond max-file goes. Readers holding the old
    /// file keep reading it to its end.
    fn rotate(&mut self) {
        let name = |n: u32| -> PathBuf {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.max_file <= 1 {
            let _ = std::fs::remove_file(&self.path);
        } else {
            let _ = std::fs::remove_file(name(self.max_file - 1));
            for n in (1..self.max_file - 1).rev() {
                let _ = std::fs::rename(name(n), name(n + 1));
            }
            let _ = std::fs::rename(&self.path, name(1));
        }
        let _ = self.reopen();
    }
}

/// Go's encoding/json of the line (HTML-escaped, invalid UTF-8 as U+FFFD), as Docker's.
fn json_string(bytes: &[u8], out: &mut String) {
    crate::front::format::go_json_string(&String::from_utf8_lossy(bytes), true, out);
}

/// One record read back from a log file.
pub(crate) struct Entry {
    pub(crate) stream: Stream,
    pub(crate) time: SystemTime,
    /// The bytes as the container wrote them (a full line ends with `\n`).
    pub(crate) bytes: Vec<u8>,
}

/// The files of a log, oldest first (`log.N`, ..., `log.1`, `log`).
pub(crate) fn files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    let base = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(k) = n
                .strip_prefix(&format!("{base}."))
                .and_then(|k| k.parse().ok())
            {
                rotated.push((k, e.path()));
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

/// Parses one record line of a json-file or k8s-file log.
pub(crate) fn parse_line(line: &[u8], k8s: bool) -> Option<Entry> {
    if k8s {
        let mut it = line.splitn(4, |b| *b == b' ');
        let t = std::str::from_utf8(it.next()?).ok()?;
        let stream = match it.next()? {
            b"stdout" => Stream::Stdout,
            b"stderr" => Stream::Stderr,
            _ => return None,
        };
        let full = it.next()? == b"F";
        let mut bytes = it.next().unwrap_or_default().to_vec();
        if full {
            bytes.push(b'\n');
        }
        return Some(Entry {
            stream,
            time: crate::front::units::parse_rfc3339(t)?,
            bytes,
        });
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let stream = match v["stream"].as_str()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    Some(Entry {
        stream,
        time: crate::front::units::parse_rfc3339(v["time"].as_str()?)?,
        bytes: v["log"].as_str()?.as_bytes().to_vec(),
    })
}

/// Reads whole lines from `f` starting at `*pos`; an unfinished last line waits.
pub(crate) fn read_new(f: &mut File, pos: &mut u64, k8s: bool, out: &mut Vec<Entry>) {
    use std::io::{Read, Seek, SeekFrom};
    if f.seek(SeekFrom::Start(*pos)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return;
    }
    let mut start = 0;
    while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
        if let Some(e) = parse_line(&buf[start..start + nl], k8s) {
            out.push(e);
        }
        start += nl + 1;
    }
    *pos += start as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            kind: kind.into(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn json_file_lines_partials_and_escapes() {
        let d = std::env::temp_dir().join(format!("berth-logw-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("log");
        let mut w = LogWriter::open(&p, &cfg("json-file", &[])).unwrap();
        w.write(Stream::Stdout, b"he");
        w.write(Stream::Stderr, b"err\n");
        w.write(Stream::Stdout, b"llo <&>\nnext");
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 3]);
        w.flush();
        let text = std::fs::read_to_string(&p).unwrap();
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs[0]["log"], "err\n");
        assert_eq!(recs[0]["stream"], "stderr");
        assert_eq!(recs[1]["log"], "hello <&>\n");
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .contains("\\u003c\\u0026\\u003e"));
        assert!(text.lines().nth(1).unwrap().starts_with("{\"log\":"));
        assert_eq!(recs[2]["log"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(recs[3]["log"].as_str().unwrap().len(), 4 + 3);
        assert!(recs[1]["time"].as_str().unwrap().ends_with('Z'));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotation_renames() {
        let d = std::env::temp_dir().join(format!("berth-logr-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("log");
        let mut w = LogWriter::open(
            &p,
            &cfg("k8s-file", &[("max-size", "200"), ("max-file", "3")]),
        )
        .unwrap();
        for i in 0..30 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        let all: Vec<String> = ["log.2", "log.1", "log"]
            .iter()
            .flat_map(|n| {
                std::fs::read_to_string(d.join(n))
                    .unwrap()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(!d.join("log.3").exists());
        assert!(all.last().unwrap().ends_with("stdout F line 29"));
        for w in all.windows(2) {
            let n = |s: &str| s.rsplit(' ').next().unwrap().parse::<u32>().unwrap();
            assert_eq!(n(&w[0]) + 1, n(&w[1]));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
