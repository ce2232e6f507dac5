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
            .and_then(|s| crate::front::specgen::ram_in_bytes(s).ok())
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
                s.push_str(&go_rfc3339_nano(t));
                s.push_str("\"}\n");
                s.into_bytes()
            }
            Kind::K8sFile => {
                let body = line.strip_suffix(b"\n").unwrap_or(line);
                let mut v = format!(
                    "{} {} {} ",
                    k8s_time(t),
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

/// Go's encoding/json string encoding: HTML-escaped (`<`, `>`, `&` as \u003c...), U+2028
/// and U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
pub(crate) fn json_string(bytes: &[u8], out: &mut String) {
    let text = String::from_utf8_lossy(bytes);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's time.RFC3339Nano in UTC: trailing zeros of the fraction trimmed.
pub(crate) fn go_rfc3339_nano(t: SystemTime) -> String {
    let s = crate::front::containers::runtime::rfc3339(t);
    let (head, frac) = s.split_once('.').unwrap_or((&s, "Z"));
    let digits = frac.trim_end_matches('Z').trim_end_matches('0');
    if digits.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{digits}Z")
    }
}

/// conmon's k8s-file time: 9 fractional digits and a numeric offset (UTC here).
fn k8s_time(t: SystemTime) -> String {
    let s = crate::front::containers::runtime::rfc3339(t);
    format!("{}+00:00", s.trim_end_matches('Z'))
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
        let recs: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(recs[0]["log"], "err\n");
        assert_eq!(recs[0]["stream"], "stderr");
        assert_eq!(recs[1]["log"], "hello <&>\n");
        assert!(text.lines().nth(1).unwrap().contains("\\u003c\\u0026\\u003e"));
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
        let mut w =
            LogWriter::open(&p, &cfg("k8s-file", &[("max-size", "200"), ("max-file", "3")])).unwrap();
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

    #[test]
    fn go_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1, 120_000_000);
        assert_eq!(go_rfc3339_nano(t), "1970-01-01T00:00:01.12Z");
        assert_eq!(
            go_rfc3339_nano(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00Z"
        );
    }
}
