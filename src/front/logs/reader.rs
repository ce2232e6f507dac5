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
    /// Prefix lines with their attributes and a space (`--details`), after the time.
    pub(crate) details: bool,
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
            details: false,
            poll: Duration::from_millis(100),
        }
    }
}

/// Docker's `--tail`: a count, or `all`; anything else (negative, junk) means all.
pub(crate) fn parse_tail(s: &str) -> Option<usize> {
    s.trim().parse::<u64>().ok().map(|n| n as usize)
}

fn decode(driver: Driver, line: &[u8], need_time: bool) -> Option<Record> {
    match driver {
        Driver::JsonFile => jsonfile::decode_with(line, need_time),
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
        let need_time = out.needs_time();
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
            while let Some(nl) = memchr::memchr(b'\n', &self.buf[start..]) {
                let rec = decode(driver, &self.buf[start..start + nl], need_time);
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
    /// The stream written last: the other one's buffer is flushed before a switch, so
    /// that buffered writers keep the lines' order across the two (`2>&1`).
    last: Option<Stream>,
}

impl Out<'_> {
    fn writer(&mut self, s: Stream) -> &mut dyn Write {
        if self.last.is_some_and(|l| l != s) {
            let _ = match s {
                Stream::Stdout => self.err.flush(),
                Stream::Stderr => self.out.flush(),
            };
        }
        self.last = Some(s);
        match s {
            Stream::Stdout => &mut *self.out,
            Stream::Stderr => &mut *self.err,
        }
    }

    /// Whether anything looks at the lines' times (else the decoder may skip them).
    fn needs_time(&self) -> bool {
        self.opts.since.is_some() || self.opts.until.is_some() || self.opts.timestamps
    }

    fn record(&mut self, rec: Record) -> Result<bool> {
        let i = rec.stream.idx();
        if !rec.partial && self.open[i].is_none() && self.pending[i].is_none() {
            // A whole line in one record (nearly all of them): no joining buffer.
            let mut bytes = if self.opts.details {
                let mut b = rec.details;
                b.push(b' ');
                b.extend_from_slice(&rec.line);
                b
            } else {
                rec.line
            };
            bytes.push(b'\n');
            return self.line(Line {
                time: rec.time,
                stream: rec.stream,
                bytes,
                complete: true,
            });
        }
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
        let details = self.opts.details;
        let entry = self.pending[i].get_or_insert_with(|| {
            // A line's attributes are those of its first piece.
            let mut start = Vec::new();
            if details {
                start.extend_from_slice(&rec.details);
                start.push(b' ');
            }
            (rec.time, start)
        });
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
        last: None,
    };
    let mut seen: HashSet<Id> = HashSet::new();
    let (more, mut live) = open_and_catch_up(driver, path, &mut seen, &mut out)?;
    if !more {
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
            let (more, next) = open_and_catch_up(driver, path, &mut seen, &mut out)?;
            if !more {
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

/// Opens the live file and reads the rotated files (`path.N` ... `path.1`, oldest first)
/// not read yet; false once the reader wants no more. The listing must be of the files
/// older than the live one opened: files rotated after it was opened are newer, and a
/// rotation while the names are listed shifts them, so either way lines came out of order
/// (a slow `logs -f` of a flooding container on a loaded machine went back thousands of
/// lines). A rotation renames the live file last and then makes a new one, so when the
/// live name still has the inode opened after the listing, no rotation overlapped it:
/// otherwise it is made again (bounded).
fn open_and_catch_up(
    driver: Driver,
    path: &Path,
    seen: &mut HashSet<Id>,
    out: &mut Out,
) -> Result<(bool, Option<Source>)> {
    let mut attempt = 0;
    let (live, older) = loop {
        let live = open_source(path)?;
        let mut older = Vec::new();
        for n in 1..10_000 {
            match open_source(&numbered(path, n))? {
                Some(s) => older.push(s),
                None => break,
            }
        }
        let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        attempt += 1;
        if now == live.as_ref().map(|l| l.id) || attempt >= 100 {
            break (live, older);
        }
    };
    let live_id = live.as_ref().map(|l| l.id);
    // A file rotated away is deleted and its inode number may come back as a new file's:
    // only the files there now count as read.
    seen.retain(|id| Some(*id) == live_id || older.iter().any(|s| s.id == *id));
    for mut s in older.into_iter().rev() {
        if Some(s.id) == live_id || !seen.insert(s.id) {
            continue;
        }
        if s.pump(driver, out)?.is_none() {
            return Ok((false, live));
        }
    }
    Ok((true, live))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::logs::writer::LogWriter;
    use crate::front::logs::{LogOptions, TestDir};
    use crate::front::units::from_unix;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    fn t(n: u32) -> SystemTime {
        from_unix(1_704_164_645, n * 1000)
    }

    /// a@1 (stdout), b@2 (stderr), c@3, d@4 (stdout), in `driver`'s format.
    fn sample(d: &TestDir, driver: Driver) -> std::path::PathBuf {
        let p = d.0.join(format!("{}.log", driver.name()));
        let mut w = LogWriter::new(driver, &p, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"a\n", t(1)).unwrap();
        w.write(Stream::Stderr, b"b\n", t(2)).unwrap();
        w.write(Stream::Stdout, b"c\n", t(3)).unwrap();
        w.write(Stream::Stdout, b"d\n", t(4)).unwrap();
        w.close(t(5)).unwrap();
        p
    }

    fn read(driver: Driver, p: &Path, opts: ReadOptions) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        read_logs(driver, p, &opts, &mut o, &mut e, &mut || false).unwrap();
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn filters_and_timestamps() {
        let d = TestDir::new("filters");
        for driver in [Driver::JsonFile, Driver::K8sFile] {
            let p = sample(&d, driver);
            let r = |opts| read(driver, &p, opts);
            assert_eq!(
                r(ReadOptions::default()),
                ("a\nc\nd\n".into(), "b\n".into())
            );
            let tail = |n| ReadOptions {
                tail: Some(n),
                ..ReadOptions::default()
            };
            assert_eq!(r(tail(2)), ("c\nd\n".into(), "".into()));
            assert_eq!(r(tail(3)), ("c\nd\n".into(), "b\n".into()));
            assert_eq!(r(tail(0)), ("".into(), "".into()));
            assert_eq!(r(tail(100)), ("a\nc\nd\n".into(), "b\n".into()));
            let since = ReadOptions {
                since: Some(t(2)),
                ..ReadOptions::default()
            };
            assert_eq!(r(since), ("c\nd\n".into(), "b\n".into()));
            let until = ReadOptions {
                until: Some(t(2)),
                ..ReadOptions::default()
            };
            assert_eq!(r(until), ("a\n".into(), "b\n".into()));
            let both = ReadOptions {
                since: Some(t(2)),
                until: Some(t(3)),
                tail: Some(1),
                ..ReadOptions::default()
            };
            assert_eq!(r(both), ("c\n".into(), "".into()));
            let stamps = ReadOptions {
                timestamps: true,
                tail: Some(1),
                ..ReadOptions::default()
            };
            assert_eq!(
                r(stamps),
                ("2024-01-02T03:04:05.000004000Z d\n".into(), "".into())
            );
        }
        let e = read_logs(
            Driver::Journald,
            &d.0.join("x"),
            &ReadOptions::default(),
            &mut Vec::new(),
            &mut Vec::new(),
            &mut || false,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "configured logging driver does not support reading"
        );
        // No log written yet: nothing to show, no error.
        assert_eq!(
            read(
                Driver::JsonFile,
                &d.0.join("none-yet.log"),
                ReadOptions::default()
            ),
            ("".into(), "".into())
        );
    }

    #[test]
    fn pieces_are_joined_under_the_first_time() {
        let d = TestDir::new("join");
        let p = d.0.join("c.log");
        let mut w = LogWriter::new(Driver::K8sFile, &p, &LogOptions::default()).unwrap();
        w.write(Stream::Stdout, b"part1-", t(1)).unwrap();
        w.write(Stream::Stderr, b"err\n", t(2)).unwrap();
        w.write(Stream::Stdout, b"part2\n", t(3)).unwrap();
        w.close(t(4)).unwrap();
        let opts = ReadOptions {
            timestamps: true,
            ..ReadOptions::default()
        };
        let (o, e) = read(Driver::K8sFile, &p, opts);
        assert_eq!(o, "2024-01-02T03:04:05.000001000Z part1-part2\n");
        assert_eq!(e, "2024-01-02T03:04:05.000002000Z err\n");
        // A torn last record (a crash mid-write) is skipped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"log\":")
            .unwrap();
        assert_eq!(
            read(Driver::K8sFile, &p, ReadOptions::default()).0,
            "part1-part2\n"
        );
    }

    #[test]
    fn tail_parsing() {
        assert_eq!(parse_tail("5"), Some(5));
        assert_eq!(parse_tail("0"), Some(0));
        for all in ["all", "-1", "x", ""] {
            assert_eq!(parse_tail(all), None, "{all:?}");
        }
    }

    /// A writer the test can look at while another thread writes to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
        fn wait_for(&self, what: &str) {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !self.text().contains(what) {
                assert!(
                    Instant::now() < deadline,
                    "follower never printed {what:?}: {:?}",
                    self.text()
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    #[test]
    fn follow_sees_later_writes_across_rotation_and_ends_when_told() {
        let d = TestDir::new("follow");
        for driver in [Driver::JsonFile, Driver::K8sFile] {
            let p = d.0.join(format!("{}.log", driver.name()));
            let opts = LogOptions {
                max_size: Some(400),
                max_file: 1000,
                ..LogOptions::default()
            };
            let mut w = LogWriter::new(driver, &p, &opts).unwrap();
            w.write(Stream::Stdout, b"before\n", SystemTime::now())
                .unwrap();
            let running = Arc::new(AtomicBool::new(true));
            let (out, err) = (Shared::default(), Shared::default());
            let follower = {
                let (running, p) = (running.clone(), p.clone());
                let (mut out, mut err) = (out.clone(), err.clone());
                std::thread::spawn(move || {
                    let opts = ReadOptions {
                        follow: true,
                        poll: Duration::from_millis(5),
                        ..ReadOptions::default()
                    };
                    read_logs(driver, &p, &opts, &mut out, &mut err, &mut || {
                        running.load(Ordering::SeqCst)
                    })
                })
            };
            out.wait_for("before\n");
            let mut want = String::from("before\n");
            for i in 0..60 {
                let line = format!("line-{i:02}\n");
                w.write(Stream::Stdout, line.as_bytes(), SystemTime::now())
                    .unwrap();
                want.push_str(&line);
                if i % 7 == 0 {
                    // Let the follower catch up sometimes, so it sees rotations one by one
                    // as well as several at once.
                    out.wait_for(&line);
                }
            }
            w.write(Stream::Stderr, b"to stderr\n", SystemTime::now())
                .unwrap();
            // A last line without a newline is shown as soon as the follower has caught up.
            w.write(Stream::Stdout, b"prompt> ", SystemTime::now())
                .unwrap();
            if driver == Driver::K8sFile {
                out.wait_for("prompt> ");
            }
            w.close(SystemTime::now()).unwrap();
            assert!(numbered(&p, 2).exists(), "the test rotated the log");
            assert!(!follower.is_finished(), "follows while the container runs");
            running.store(false, Ordering::SeqCst);
            follower.join().unwrap().unwrap();
            want.push_str("prompt> ");
            assert_eq!(out.text(), want, "{driver:?}");
            assert_eq!(err.text(), "to stderr\n");
        }
    }

    #[test]
    fn follow_of_a_stopped_container_ends_at_once() {
        let d = TestDir::new("stopped");
        let p = sample(&d, Driver::JsonFile);
        let opts = ReadOptions {
            follow: true,
            tail: Some(1),
            ..ReadOptions::default()
        };
        assert_eq!(read(Driver::JsonFile, &p, opts), ("d\n".into(), "".into()));
        // With --until in the past, following stops too.
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let opts = ReadOptions {
            follow: true,
            until: Some(t(3)),
            ..ReadOptions::default()
        };
        read_logs(Driver::JsonFile, &p, &opts, &mut o, &mut e, &mut || true).unwrap();
        assert_eq!((o, e), (b"a\nc\n".to_vec(), b"b\n".to_vec()));
    }
}
