//! Reading a container's log back for `logs`: rotated files oldest first, records of a
//! line given in pieces (json-file over 16 KiB, k8s-file `P`) joined again, `--since`,
//! `--until`, `--tail`, `-t`, and `-f` (poll to EOF, notice rotation by inode, stop when
//! the container has stopped).

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use super::writer::numbered;
use super::{jsonfile, k8s, Driver, Record, Stream};
use crate::front::units::rfc3339_nano_fixed;

#[derive(Clone, Debug)]
pub(crate) struct ReadOptions {
    /// Lines older than this are skipped.
    pub(crate) since: Option<SystemTime>,
    /// Reading stops at the first line newer than this.
    pub(crate) until: Option<SystemTime>,
    /// Only the last N lines of what is already logged (`None`: all).
    pub(crate) tail: Option<usize>,
    /// Prefix lines with Docker's RFC3339NanoFixed time and a space.
    pub(crate) timestamps: bool,
    pub(crate) follow: bool,
    /// How long `follow` sleeps when it has caught up.
    pub(crate) poll: Duration,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            since: None,
            until: None,
            tail: None,
            timestamps: false,
            follow: false,
            poll: Duration::from_millis(100),
        }
    }
}

/// Docker's `--tail`: a count, or `all`; anything else (negative, junk) means all.
pub(crate) fn parse_tail(s: &str) -> Option<usize> {
    s.trim().parse::<u64>().ok().map(|n| n as usize)
}

fn decode(driver: Driver, line: &[u8]) -> Option<Record> {
    match driver {
        Driver::JsonFile => jsonfile::decode(line),
        _ => k8s::decode(line),
    }
}

type Id = (u64, u64);

struct Source {
    file: File,
    id: Id,
    /// An incomplete last line (the writer may be mid-record).
    buf: Vec<u8>,
}

fn open_source(path: &Path) -> Result<Option<Source>> {
    match File::open(path) {
        Ok(file) => {
            let m = file
                .metadata()
                .with_context(|| format!("log file {}", path.display()))?;
            Ok(Some(Source {
                file,
                id: (m.dev(), m.ino()),
                buf: Vec::new(),
            }))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening log file {}", path.display())),
    }
}

impl Source {
    /// Reads to EOF, handing each complete record to `out`. Returns how many records were
    /// read, or None once `out` wants no more.
    fn pump(&mut self, driver: Driver, out: &mut Out) -> Result<Option<usize>> {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut count = 0;
        loop {
            let n = match self.file.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the log"),
            };
            if n == 0 {
                return Ok(Some(count));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(nl) = self.buf[start..].iter().position(|&b| b == b'\n') {
                let rec = decode(driver, &self.buf[start..start + nl]);
                start += nl + 1;
                // A line that does not decode (torn by a crash) is skipped, as Docker does.
                if let Some(rec) = rec {
                    count += 1;
                    if !out.record(rec)? {
                        self.buf.drain(..start);
                        return Ok(None);
                    }
                }
            }
            self.buf.drain(..start);
        }
    }
}

struct Line {
    time: SystemTime,
    stream: Stream,
    bytes: Vec<u8>,
    complete: bool,
}

struct Out<'w> {
    out: &'w mut dyn Write,
    err: &'w mut dyn Write,
    opts: &'w ReadOptions,
    /// Pieces of a line whose end has not been read yet.
    pending: [Option<(SystemTime, Vec<u8>)>; 2],
    /// A line shown (true) or skipped (false) before its end: its later pieces follow suit.
    open: [Option<bool>; 2],
    tail: Option<VecDeque<Line>>,
    limit: usize,
}

impl Out<'_> {
    fn writer(&mut self, s: Stream) -> &mut dyn Write {
        match s {
            Stream::Stdout => &mut *self.out,
            Stream::Stderr => &mut *self.err,
        }
    }

    fn record(&mut self, rec: Record) -> Result<bool> {
        let i = rec.stream.idx();
        if let Some(shown) = self.open[i] {
            if shown {
                let w = self.writer(rec.stream);
                w.write_all(&rec.line)?;
                if !rec.partial {
                    w.write_all(b"\n")?;
                }
            }
            if !rec.partial {
                self.open[i] = None;
            }
            return Ok(true);
        }
        let entry = self.pending[i].get_or_insert_with(|| (rec.time, Vec::new()));
        entry.1.extend_from_slice(&rec.line);
        if rec.partial {
            return Ok(true);
        }
        let (time, mut bytes) = self.pending[i].take().expect("just filled");
        bytes.push(b'\n');
        self.line(Line {
            time,
            stream: rec.stream,
            bytes,
            complete: true,
        })
    }

    fn line(&mut self, l: Line) -> Result<bool> {
        if self.opts.until.is_some_and(|u| l.time > u) {
            return Ok(false);
        }
        if self.opts.since.is_some_and(|s| l.time < s) {
            if !l.complete {
                self.open[l.stream.idx()] = Some(false);
            }
            return Ok(true);
        }
        if let Some(t) = self.tail.as_mut() {
            t.push_back(l);
            if t.len() > self.limit {
                t.pop_front();
            }
            return Ok(true);
        }
        self.show(l)?;
        Ok(true)
    }

    fn show(&mut self, l: Line) -> Result<()> {
        let stamps = self.opts.timestamps;
        let w = self.writer(l.stream);
        if stamps {
            w.write_all(rfc3339_nano_fixed(l.time).as_bytes())?;
            w.write_all(b" ")?;
        }
        w.write_all(&l.bytes)?;
        if !l.complete {
            self.open[l.stream.idx()] = Some(true);
        }
        Ok(())
    }

    /// Lines still waiting for their end are shown as far as they go.
    fn flush_pending(&mut self) -> Result<bool> {
        for s in [Stream::Stdout, Stream::Stderr] {
            if let Some((time, bytes)) = self.pending[s.idx()].take() {
                let l = Line {
                    time,
                    stream: s,
                    bytes,
                    complete: false,
                };
                if !self.line(l)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn end_tail(&mut self) -> Result<()> {
        if let Some(lines) = self.tail.take() {
            for l in lines {
                self.show(l)?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        self.err.flush()?;
        Ok(())
    }
}

/// Writes the log at `path` (and its rotated files `path.1`, `path.2`, ...) to `stdout` and
/// `stderr` by stream. With `follow`, keeps reading what is written until `is_running()`
/// says the container has stopped (then reads what is left) or `until` has passed.
pub(crate) fn read_logs(
    driver: Driver,
    path: &Path,
    opts: &ReadOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    is_running: &mut dyn FnMut() -> bool,
) -> Result<()> {
    if !driver.readable() {
        bail!("configured logging driver does not support reading");
    }
    let mut out = Out {
        out: stdout,
        err: stderr,
        opts,
        pending: [None, None],
        open: [None, None],
        tail: opts.tail.map(|n| VecDeque::with_capacity(n.min(4096))),
        limit: opts.tail.unwrap_or(0),
    };
    // The live file first: if it is rotated while the others are listed, it shows up
    // among them under the same inode and is read once.
    let mut live = open_source(path)?;
    let mut seen: HashSet<Id> = HashSet::new();
    if !catch_up(
        driver,
        path,
        live.as_ref().map(|l| l.id),
        &mut seen,
        &mut out,
    )? {
        return finish(&mut out, false);
    }
    if let Some(l) = live.as_mut() {
        seen.insert(l.id);
        if l.pump(driver, &mut out)?.is_none() {
            return finish(&mut out, false);
        }
    }
    if !opts.follow {
        return finish(&mut out, true);
    }
    out.end_tail()?;
    out.flush()?;
    let mut stopping = false;
    loop {
        let mut got = 0;
        if let Some(l) = live.as_mut() {
            match l.pump(driver, &mut out)? {
                Some(n) => got = n,
                None => return out.flush(),
            }
        }
        // Rotated (or first created) since we opened it: finish the old file, read the
        // files rotated past us meanwhile, then go on with the new live one.
        let now_id = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        if now_id.is_some() && now_id != live.as_ref().map(|l| l.id) {
            if let Some(l) = live.as_mut() {
                if l.pump(driver, &mut out)?.is_none() {
                    return out.flush();
                }
            }
            let next = open_source(path)?;
            if !catch_up(
                driver,
                path,
                next.as_ref().map(|l| l.id),
                &mut seen,
                &mut out,
            )? {
                return out.flush();
            }
            live = next;
            if let Some(l) = live.as_ref() {
                seen.insert(l.id);
            }
            continue;
        }
        if got > 0 {
            out.flush()?;
            continue;
        }
        if stopping {
            break;
        }
        if opts.until.is_some_and(|u| SystemTime::now() > u) {
            break;
        }
        if !is_running() {
            // One more pass for what was written just before the container stopped.
            stopping = true;
            continue;
        }
        if !out.flush_pending()? {
            return out.flush();
        }
        out.flush()?;
        std::thread::sleep(opts.poll);
    }
    finish(&mut out, true)
}

/// Reads the rotated files (`path.N` ... `path.1`, oldest first) not read yet, except the
/// live one. False once the reader wants no more.
fn catch_up(
    driver: Driver,
    path: &Path,
    live: Option<Id>,
    seen: &mut HashSet<Id>,
    out: &mut Out,
) -> Result<bool> {
    let mut older = Vec::new();
    for n in 1..10_000 {
        match open_source(&numbered(path, n))? {
            Some(s) => older.push(s),
            None => break,
        }
    }
    for mut s in older.into_iter().rev() {
        if Some(s.id) == live || !seen.insert(s.id) {
            continue;
        }
        if s.pump(driver, out)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The end: lines without their end shown as they are (unless `until` stopped us), the
/// tail printed.
fn finish(out: &mut Out, more: bool) -> Result<()> {
    if more {
        out.flush_pending()?;
    }
    out.end_tail()?;
    out.flush()
}
