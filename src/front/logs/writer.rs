//! Writing a container's output with its log driver. The monitor hands over raw chunks as
//! read from the container's pipes; the writer cuts them into records as Docker's copier
//! (json-file, journald) or conmon (k8s-file) does, and rotates files by renaming.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::journald::Journal;
use super::{jsonfile, k8s, Driver, LogOptions, Record, Stream};

/// Docker's copier buffer: a line longer than this is logged in pieces of this size, only
/// the last one carrying the newline.
pub(super) const LINE_MAX: usize = 16 * 1024;
/// conmon reads a pipe this much at a time and turns each read into records.
const K8S_READ: usize = 8192;

/// When a full file is rotated.
#[derive(Clone, Copy)]
enum Policy {
    /// moby's LogFile: before a write, once the file has reached max-size.
    Docker,
    /// conmon: before a record that would take the file past max-size.
    Conmon,
}

struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: usize,
    policy: Policy,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// `x.log` -> `x.log.N`.
pub(super) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogFile {
    fn open(path: &Path, opts: &LogOptions, policy: Policy) -> Result<LogFile> {
        let file =
            open_append(path).with_context(|| format!("opening log file {}", path.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("log file {}", path.display()))?
            .len();
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            size,
            max_size: opts.max_size,
            max_file: opts.max_file.max(1),
            policy,
        })
    }

    fn write_record(&mut self, rec: &[u8]) -> Result<()> {
        if let Some(max) = self.max_size {
            let full = match self.policy {
                Policy::Docker => self.size >= max,
                Policy::Conmon => self.size > 0 && self.size + rec.len() as u64 > max,
            };
            if full {
                self.rotate()?;
            }
        }
        self.file
            .write_all(rec)
            .with_context(|| format!("writing log file {}", self.path.display()))?;
        self.size += rec.len() as u64;
        Ok(())
    }

    /// Renames `x.log` -> `x.log.1` -> ... keeping `max_file` files, then starts a new
    /// `x.log`. With one file the old one is replaced by a new empty file, not truncated:
    /// a reader holding it finishes what it had.
    fn rotate(&mut self) -> Result<()> {
        let ctx = || format!("rotating log file {}", self.path.display());
        let ignore_missing = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        if self.max_file >= 2 {
            ignore_missing(std::fs::remove_file(numbered(
                &self.path,
                self.max_file - 1,
            )))
            .with_context(ctx)?;
            for i in (2..self.max_file).rev() {
                ignore_missing(std::fs::rename(
                    numbered(&self.path, i - 1),
                    numbered(&self.path, i),
                ))
                .with_context(ctx)?;
            }
            std::fs::rename(&self.path, numbered(&self.path, 1)).with_context(ctx)?;
        } else {
            let mut tmp: OsString = self.path.as_os_str().to_owned();
            tmp.push(".new");
            let tmp = PathBuf::from(tmp);
            ignore_missing(std::fs::remove_file(&tmp)).with_context(ctx)?;
            drop(open_append(&tmp).with_context(ctx)?);
            std::fs::rename(&tmp, &self.path).with_context(ctx)?;
        }
        self.file = open_append(&self.path).with_context(ctx)?;
        self.size = self.file.metadata().with_context(ctx)?.len();
        Ok(())
    }
}

/// A container's log sink: `write` raw chunks as they come from each pipe, `finish` each
/// stream at EOF (or `close` both) so a last line without a newline is kept.
pub(crate) struct LogWriter {
    driver: Driver,
    attrs: std::collections::BTreeMap<String, String>,
    file: Option<LogFile>,
    journal: Option<Journal>,
    pending: [Vec<u8>; 2],
    /// Timestamp of the first piece of a line logged in pieces: every piece carries it.
    partial_time: [Option<SystemTime>; 2],
}

impl LogWriter {
    /// `path` is the log file (json-file, k8s-file; appended to if it exists) or the
    /// journal's socket ([`super::JOURNAL_SOCKET`]); unused for `none`.
    pub(crate) fn new(driver: Driver, path: &Path, opts: &LogOptions) -> Result<LogWriter> {
        let (file, journal) = match driver {
            Driver::JsonFile => (Some(LogFile::open(path, opts, Policy::Docker)?), None),
            Driver::K8sFile => (Some(LogFile::open(path, opts, Policy::Conmon)?), None),
            Driver::Journald => (None, Some(Journal::new(path, opts)?)),
            Driver::None => (None, None),
        };
        Ok(LogWriter {
            driver,
            attrs: opts.attrs.clone(),
            file,
            journal,
            pending: [Vec::new(), Vec::new()],
            partial_time: [None, None],
        })
    }

    /// One chunk read from the container's `stream` at `time`.
    pub(crate) fn write(&mut self, stream: Stream, data: &[u8], time: SystemTime) -> Result<()> {
        match self.driver {
            Driver::None => Ok(()),
            Driver::K8sFile => {
                let file = self.file.as_mut().expect("k8s-file has a file");
                for read in data.chunks(K8S_READ) {
                    for rec in k8s::encode_read(stream, read, time) {
                        file.write_record(&rec)?;
                    }
                }
                Ok(())
            }
            Driver::JsonFile | Driver::Journald => {
                let i = stream.idx();
                self.pending[i].extend_from_slice(data);
                loop {
                    let buf = &self.pending[i];
                    let (line, partial, t) = match buf.iter().position(|&b| b == b'\n') {
                        Some(nl) if nl < LINE_MAX => {
                            let line = buf[..nl].to_vec();
                            self.pending[i].drain(..=nl);
                            (line, false, self.partial_time[i].take().unwrap_or(time))
                        }
                        _ if buf.len() >= LINE_MAX => {
                            let piece = buf[..LINE_MAX].to_vec();
                            self.pending[i].drain(..LINE_MAX);
                            (piece, true, *self.partial_time[i].get_or_insert(time))
                        }
                        _ => break,
                    };
                    self.emit(stream, line, partial, t)?;
                }
                Ok(())
            }
        }
    }

    /// End of `stream`: what is left of an unterminated line is logged as a partial record.
    pub(crate) fn finish(&mut self, stream: Stream, time: SystemTime) -> Result<()> {
        let i = stream.idx();
        if self.pending[i].is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.pending[i]);
        let t = self.partial_time[i].take().unwrap_or(time);
        self.emit(stream, rest, true, t)
    }

    /// Both streams ended.
    pub(crate) fn close(mut self, time: SystemTime) -> Result<()> {
        self.finish(Stream::Stdout, time)?;
        self.finish(Stream::Stderr, time)
    }

    fn emit(
        &mut self,
        stream: Stream,
        line: Vec<u8>,
        partial: bool,
        time: SystemTime,
    ) -> Result<()> {
        if let Some(j) = self.journal.as_mut() {
            return j.send(stream, &line, partial);
        }
        let rec = Record {
            time,
            stream,
            line,
            partial,
            details: Vec::new(),
        };
        let bytes = jsonfile::encode(&rec, &self.attrs);
        self.file
            .as_mut()
            .expect("json-file has a file")
            .write_record(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::logs::reader::{read_logs, ReadOptions};
    use crate::front::logs::TestDir;
    use crate::front::units::{from_unix, k8s_timestamp};
    use std::os::unix::fs::MetadataExt;

    fn t(n: u32) -> SystemTime {
        from_unix(1_704_164_645, n * 1000)
    }

    fn read_all(driver: Driver, path: &Path) -> (Vec<u8>, Vec<u8>) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        read_logs(
            driver,
            path,
            &ReadOptions::default(),
            &mut o,
            &mut e,
            &mut || false,
        )
        .unwrap();
        (o, e)
    }

    #[test]
    fn json_file_is_byte_for_byte_docker() {
        let d = TestDir::new("jf");
        let p = d.0.join("c-json.log");
        let mut w = LogWriter::new(Driver::JsonFile, &p, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"hello\nwor", t(1)).unwrap();
        w.write(Stream::Stderr, b"oops\n", t(2)).unwrap();
        // A line completed by a later read carries the time it was completed, as Docker's
        // copier stamps messages when it cuts them.
        w.write(Stream::Stdout, b"ld\n\n", t(3)).unwrap();
        w.write(Stream::Stdout, b"tail", t(4)).unwrap();
        w.close(t(5)).unwrap();
        let got = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            got,
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.000001Z\"}\n\
             {\"log\":\"oops\\n\",\"stream\":\"stderr\",\"time\":\"2024-01-02T03:04:05.000002Z\"}\n\
             {\"log\":\"world\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.000003Z\"}\n\
             {\"log\":\"\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.000003Z\"}\n\
             {\"log\":\"tail\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.000005Z\"}\n"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        let (o, e) = read_all(Driver::JsonFile, &p);
        assert_eq!(
            (o.as_slice(), e.as_slice()),
            (&b"hello\nworld\n\ntail"[..], &b"oops\n"[..])
        );
        // A restarted container appends to the same file.
        let mut w = LogWriter::new(Driver::JsonFile, &p, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"again\n", t(6)).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().starts_with(&got));
    }

    #[test]
    fn long_lines_are_cut_at_16k_with_the_first_piece_time() {
        let d = TestDir::new("long");
        let p = d.0.join("c.log");
        let mut w = LogWriter::new(Driver::JsonFile, &p, &LogOptions::default()).unwrap();
        let line: Vec<u8> = (0..40_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        w.write(Stream::Stdout, &line[..20_000], t(1)).unwrap();
        let mut rest = line[20_000..].to_vec();
        rest.extend_from_slice(b"\nnext\n");
        w.write(Stream::Stdout, &rest, t(2)).unwrap();
        let recs: Vec<Record> = std::fs::read(&p)
            .unwrap()
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| jsonfile::decode(l).unwrap())
            .collect();
        let shape: Vec<(usize, bool, SystemTime)> = recs
            .iter()
            .map(|r| (r.line.len(), r.partial, r.time))
            .collect();
        assert_eq!(
            shape,
            vec![
                (16_384, true, t(1)),
                (16_384, true, t(1)),
                (7_232, false, t(1)),
                (4, false, t(2))
            ]
        );
        // Exactly 16 KiB and a newline: Docker's full buffer gives a piece, then "\n" alone.
        let p2 = d.0.join("c2.log");
        let mut w = LogWriter::new(Driver::JsonFile, &p2, &LogOptions::default()).unwrap();
        let mut exact = vec![b'x'; LINE_MAX];
        exact.push(b'\n');
        w.write(Stream::Stdout, &exact, t(1)).unwrap();
        let text = std::fs::read_to_string(&p2).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(!lines[0].contains("\\n"));
        assert!(lines[1].starts_with("{\"log\":\"\\n\""));
    }

    #[test]
    fn one_mib_line_round_trips() {
        let d = TestDir::new("mib");
        for driver in [Driver::JsonFile, Driver::K8sFile] {
            let p = d.0.join(format!("{}.log", driver.name()));
            let mut w = LogWriter::new(driver, &p, &LogOptions::default()).unwrap();
            let mut line: Vec<u8> = (0..(1u32 << 20)).map(|i| b'0' + (i % 10) as u8).collect();
            line.push(b'\n');
            for chunk in line.chunks(65_536) {
                w.write(Stream::Stdout, chunk, t(1)).unwrap();
            }
            w.write(Stream::Stderr, b"after\n", t(2)).unwrap();
            w.close(t(3)).unwrap();
            let text = std::fs::read(&p).unwrap();
            let records = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            // json-file: 64 pieces of 16 KiB, then "\n" alone; k8s-file: 128 reads of 8 KiB
            // (P), then an empty F line.
            let want = if driver == Driver::JsonFile {
                64 + 1 + 1
            } else {
                128 + 1 + 1
            };
            assert_eq!(records, want, "{driver:?}");
            let (o, e) = read_all(driver, &p);
            assert!(o == line, "{driver:?}: the line comes back whole");
            assert_eq!(e, b"after\n");
        }
    }

    #[test]
    fn k8s_file_is_conmon_format() {
        let d = TestDir::new("k8s");
        let p = d.0.join("c.log");
        let mut w = LogWriter::new(Driver::K8sFile, &p, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"line-one\npartial-no-newline", t(1))
            .unwrap();
        w.write(Stream::Stderr, b"err-line\n", t(2)).unwrap();
        w.write(Stream::Stdout, b"2\n", t(3)).unwrap();
        w.close(t(4)).unwrap();
        let (t1, t2, t3) = (
            k8s_timestamp(t(1)),
            k8s_timestamp(t(2)),
            k8s_timestamp(t(3)),
        );
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!(
                "{t1} stdout F line-one\n{t1} stdout P partial-no-newline\n{t2} stderr F err-line\n{t3} stdout F 2\n"
            )
        );
        let (o, e) = read_all(Driver::K8sFile, &p);
        assert_eq!(
            (o.as_slice(), e.as_slice()),
            (&b"line-one\npartial-no-newline2\n"[..], &b"err-line\n"[..])
        );
    }

    #[test]
    fn rotation_renames_and_keeps_max_file() {
        let d = TestDir::new("rot");
        let p = d.0.join("c.log");
        let opts = LogOptions {
            max_size: Some(300),
            max_file: 3,
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::JsonFile, &p, &opts).unwrap();
        w.write(Stream::Stdout, b"line-000\n", t(0)).unwrap();
        // A reader that opened the first file before rotation still sees its whole content.
        let held = std::fs::File::open(&p).unwrap();
        let first_ino = held.metadata().unwrap().ino();
        for i in 1..100u32 {
            w.write(Stream::Stdout, format!("line-{i:03}\n").as_bytes(), t(i))
                .unwrap();
        }
        assert!(p.exists() && numbered(&p, 1).exists() && numbered(&p, 2).exists());
        assert!(!numbered(&p, 3).exists());
        for n in [1, 2] {
            let len = std::fs::metadata(numbered(&p, n)).unwrap().len();
            assert!((300..400).contains(&len), "rotated file {n}: {len} bytes");
        }
        assert_ne!(std::fs::metadata(&p).unwrap().ino(), first_ino);
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
        assert!(
            old.starts_with("{\"log\":\"line-000\\n\""),
            "never truncated: {old}"
        );
        // Reading goes through the rotated files oldest first, with no gap.
        let (o, _) = read_all(Driver::JsonFile, &p);
        let text = String::from_utf8(o).unwrap();
        let nums: Vec<u32> = text.lines().map(|l| l[5..].parse().unwrap()).collect();
        assert_eq!(*nums.last().unwrap(), 99);
        assert!(nums.len() >= 8, "{nums:?}");
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    }

    #[test]
    fn rotation_with_one_file_replaces_it() {
        let d = TestDir::new("rot1");
        let p = d.0.join("c.log");
        let opts = LogOptions {
            max_size: Some(150),
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::K8sFile, &p, &opts).unwrap();
        w.write(Stream::Stdout, b"first\n", t(0)).unwrap();
        let held = std::fs::File::open(&p).unwrap();
        for i in 0..10u32 {
            w.write(Stream::Stdout, format!("more-{i}\n").as_bytes(), t(i))
                .unwrap();
        }
        let size = std::fs::metadata(&p).unwrap().len();
        assert!(
            size <= 150,
            "conmon's policy keeps the file within max-size: {size}"
        );
        let names: Vec<String> = std::fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["c.log"]);
        let mut old = String::new();
        std::io::Read::read_to_string(&mut &held, &mut old).unwrap();
        assert!(old.contains("stdout F first\n"), "{old}");
        let (o, _) = read_all(Driver::K8sFile, &p);
        assert!(String::from_utf8(o).unwrap().ends_with("more-9\n"));
    }

    #[test]
    fn attrs_and_none_driver() {
        let d = TestDir::new("attrs");
        let p = d.0.join("c.log");
        let opts = LogOptions {
            attrs: [("k".to_string(), "v".to_string())].into(),
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::JsonFile, &p, &opts).unwrap();
        w.write(Stream::Stdout, b"x\n", t(1)).unwrap();
        assert!(std::fs::read_to_string(&p)
            .unwrap()
            .contains(",\"attrs\":{\"k\":\"v\"},\"time\""));
        let q = d.0.join("none.log");
        let mut w = LogWriter::new(Driver::None, &q, &opts).unwrap();
        w.write(Stream::Stdout, b"x\n", t(1)).unwrap();
        w.close(t(2)).unwrap();
        assert!(!q.exists());
        let e = LogWriter::new(Driver::JsonFile, &d.0.join("missing/dir/c.log"), &opts)
            .err()
            .unwrap();
        assert!(format!("{e:#}").starts_with("opening log file "), "{e:#}");
    }
}
