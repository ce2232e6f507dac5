//! The events journal, without a daemon: whoever acts (a command, a container's monitor)
//! appends one JSON line per event to `RUNROOT/events/events.log`, in Docker's event
//! message shape (`Type`, `Action`, `Actor{ID, Attributes}`, `scope`, `time`, `timeNano`,
//! and the old `status`/`id`/`from`), and `events` reads and follows that file.
//!
//! Why a file under the runroot: events describe what runs, and a reboot forgets what runs
//! (Podman keeps its file journal in its tmpdir for the same reason); a plain append-only
//! file needs no daemon to collect it and works rootless and without journald. Each append
//! is one `write(2)` under `flock(events.lock)`, so lines from concurrent writers never
//! interleave and a rotation (past 1 MiB the file becomes `events.log.1`, one generation
//! kept) never loses a line; readers take no lock: they read whole lines only and notice a
//! rotation by the inode.
//!
//! Writing an event never fails the action it reports: a journal that cannot be written is
//! skipped silently (children never log).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::front::containers::{Record, Store};

const ROTATE_AT: u64 = 1 << 20;

fn dir(runroot: &Path) -> PathBuf {
    runroot.join("events")
}

pub(crate) fn journal(runroot: &Path) -> PathBuf {
    dir(runroot).join("events.log")
}

fn now_nanos() -> i128 {
    let (s, n) = crate::front::units::unix_parts(SystemTime::now());
    i128::from(s) * 1_000_000_000 + i128::from(n)
}

/// Docker's event message.
pub(crate) fn message(
    kind: &str,
    action: &str,
    id: &str,
    attrs: &BTreeMap<String, String>,
) -> Value {
    let t = now_nanos();
    // Docker's field order (docker/api events.Message).
    let mut m = serde_json::Map::new();
    m.insert("status".into(), json!(action));
    m.insert("id".into(), json!(id));
    if let Some(from) = attrs.get("image").filter(|_| kind == "container") {
        m.insert("from".into(), json!(from));
    }
    m.insert("Type".into(), json!(kind));
    m.insert("Action".into(), json!(action));
    m.insert("Actor".into(), json!({"ID": id, "Attributes": attrs}));
    m.insert("scope".into(), json!("local"));
    m.insert("time".into(), json!(t.div_euclid(1_000_000_000) as i64));
    m.insert("timeNano".into(), json!(t as i64));
    Value::Object(m)
}

/// Appends one event (best effort).
pub(crate) fn emit(runroot: &Path, ev: &Value) {
    let _ = append(runroot, ev);
}

fn append(runroot: &Path, ev: &Value) -> std::io::Result<()> {
    let d = dir(runroot);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(d.join("events.lock"))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    let path = journal(runroot);
    if fs::metadata(&path).is_ok_and(|m| m.len() >= ROTATE_AT) {
        fs::rename(&path, d.join("events.log.1"))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)?;
    let mut line = crate::sys::json::to_vec(ev)?;
    line.push(b'\n');
    f.write_all(&line)
}

/// A container event: its image, name and labels as attributes (Docker's), plus `extra`.
pub(crate) fn container(store: &Store, rec: &Record, action: &str, extra: &[(&str, String)]) {
    let mut attrs: BTreeMap<String, String> = rec.config.labels.clone();
    attrs.insert("image".into(), rec.image.clone());
    // The name as it is now: a monitor's record is as old as its start (rename since).
    // Not looked up once removed (`destroy`): the error would cost a backtrace.
    let name = if store.dir(&rec.id).exists() {
        store
            .load_brief(&rec.id)
            .map_or(rec.name.clone(), |c| c.rec.name)
    } else {
        rec.name.clone()
    };
    attrs.insert("name".into(), name);
    for (k, v) in extra {
        attrs.insert((*k).to_string(), v.clone());
    }
    emit(
        &store.runroot,
        &message("container", action, &rec.id, &attrs),
    );
}

/// An image event: `id` is what Docker puts there (the reference for pull/tag, the image id
/// for untag/delete), `name` its `name` attribute.
pub(crate) fn image(runroot: &Path, action: &str, id: &str, name: &str) {
    let mut attrs = BTreeMap::new();
    attrs.insert("name".to_string(), name.to_string());
    emit(runroot, &message("image", action, id, &attrs));
}

/// Docker's default line: `TIME TYPE ACTION ID (k=v, k=v)`, attributes sorted.
pub(crate) fn line(ev: &Value) -> String {
    let nanos = ev["timeNano"].as_i64().unwrap_or(0);
    let t = crate::front::units::from_unix(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000) as u32,
    );
    let mut out = format!(
        "{} {} {} {}",
        crate::front::units::rfc3339_nano_fixed(t),
        ev["Type"].as_str().unwrap_or(""),
        ev["Action"].as_str().unwrap_or(""),
        ev["Actor"]["ID"].as_str().unwrap_or(""),
    );
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object() {
        if !attrs.is_empty() {
            let kv: Vec<String> = attrs
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            out.push_str(&format!(" ({})", kv.join(", ")));
        }
    }
    out
}

/// Follows the journal: what is there now (from the rotated file too), then what comes.
pub(crate) struct Reader {
    path: PathBuf,
    file: Option<File>,
    ino: u64,
    partial: Vec<u8>,
}

impl Reader {
    /// From the start of what is kept (`past`), or from its end.
    pub(crate) fn open(runroot: &Path, past: bool) -> (Reader, Vec<Value>) {
        let path = journal(runroot);
        let mut r = Reader {
            path,
            file: None,
            ino: 0,
            partial: Vec::new(),
        };
        let mut old = Vec::new();
        if past {
            let rotated = r.path.with_file_name("events.log.1");
            if let Ok(data) = fs::read(rotated) {
                old.extend(parse_lines(&data));
            }
        }
        if let Ok(mut f) = File::open(&r.path) {
            r.ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            if !past {
                let _ = f.seek(SeekFrom::End(0));
            }
            r.file = Some(f);
        }
        if past {
            old.extend(r.poll());
        }
        (r, old)
    }

    /// The events appended since the last call.
    pub(crate) fn poll(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        self.read_rest(&mut out);
        // Rotated (or made for the first time): the rest of the old file, then the new.
        let ino = fs::metadata(&self.path).map(|m| m.ino()).unwrap_or(0);
        if ino != 0 && ino != self.ino {
            self.read_rest(&mut out);
            self.partial.clear();
            self.file = File::open(&self.path).ok();
            self.ino = ino;
            self.read_rest(&mut out);
        }
        out
    }

    fn read_rest(&mut self, out: &mut Vec<Value>) {
        let Some(f) = self.file.as_mut() else { return };
        let mut data = Vec::new();
        let _ = f.read_to_end(&mut data);
        self.partial.extend_from_slice(&data);
        // Whole lines only: a writer may be mid-line.
        if let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') {
            let whole: Vec<u8> = self.partial.drain(..=end).collect();
            out.extend(parse_lines(&whole));
        }
    }
}

fn parse_lines(data: &[u8]) -> Vec<Value> {
    data.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_roundtrip_rotation_and_line() {
        let d = std::env::temp_dir().join(format!("berth-events-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let (mut r, past) = Reader::open(&d, true);
        assert!(past.is_empty());
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), "web".to_string());
        attrs.insert("image".to_string(), "busybox".to_string());
        emit(&d, &message("container", "start", "abc", &attrs));
        let got = r.poll();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["from"], "busybox");
        let l = line(&got[0]);
        assert!(
            l.ends_with(" container start abc (image=busybox, name=web)"),
            "{l}"
        );
        assert_eq!(l.find('Z'), Some(29), "{l}");
        // Past the rotation size: nothing lost, in order.
        let big = "x".repeat(4096);
        attrs.insert("pad".to_string(), big);
        for i in 0..300 {
            emit(&d, &message("container", "die", &i.to_string(), &attrs));
        }
        let got = r.poll();
        assert_eq!(got.len(), 300);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, e)| e["id"].as_str() == Some(i.to_string().as_str())));
        assert!(d.join("events/events.log.1").exists());
        let _ = fs::remove_dir_all(&d);
    }
}
