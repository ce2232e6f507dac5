//! `logs`: the container's log (json-file or k8s-file, rotated files included), stdout to
//! stdout and stderr to stderr; `-f` follows across rotation and ends when the container
//! stops; `--since/--until` take RFC 3339, Unix seconds or Go durations; `-n` the last N.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};

use crate::cli::front::LogsArgs;
use crate::front::containers::Store;
use crate::front::monitor::log::{self, Entry, Stream};
use crate::front::units;
use crate::front::Globals;

pub(crate) fn logs(g: &Globals, a: &LogsArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    let kind = c.rec.host_config.log_config.kind.as_str();
    if kind == "none" {
        bail!("configured logging driver does not support reading");
    }
    let k8s = kind == "k8s-file";
    let now = SystemTime::now();
    let since = a
        .since
        .as_deref()
        .map(|s| units::get_timestamp(s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| units::get_timestamp(s, now))
        .transpose()?;
    // Docker: a tail that is not a number shows everything.
    let tail: Option<usize> = a
        .tail
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| n as usize);
    let path = c.rec.log_path.clone();
    let mut entries = Vec::new();
    let files = log::files(&path);
    let mut current: Option<(File, u64, u64)> = None;
    for (i, p) in files.iter().enumerate() {
        let Ok(mut f) = File::open(p) else { continue };
        let mut pos = 0;
        log::read_new(&mut f, &mut pos, k8s, &mut entries);
        if i == files.len() - 1 {
            let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            current = Some((f, pos, ino));
        }
    }
    let keep = |e: &Entry| since.is_none_or(|s| e.time >= s) && until.is_none_or(|u| e.time <= u);
    entries.retain(keep);
    if let Some(n) = tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    let mut emit = |e: &Entry| {
        let mut line = Vec::new();
        if a.timestamps {
            line.extend_from_slice(units::rfc3339_nano_fixed(e.time).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&e.bytes);
        let _ = match e.stream {
            Stream::Stdout => out.write_all(&line).and_then(|_| out.flush()),
            Stream::Stderr => err.write_all(&line),
        };
    };
    for e in &entries {
        emit(e);
    }
    if !a.follow || until.is_some() {
        return Ok(0);
    }
    let id = c.rec.id.clone();
    loop {
        let active = store
            .load(&id)
            .ok()
            .is_some_and(|c| store.derive(&c).is_active());
        let mut new = Vec::new();
        if let Some((f, pos, ino)) = current.as_mut() {
            log::read_new(f, pos, k8s, &mut new);
            // Rotated: the old file is read to its end above, then the new one from 0.
            let now_ino = std::fs::metadata(&path).map(|m| m.ino()).unwrap_or(0);
            if now_ino != *ino && now_ino != 0 {
                if let Ok(nf) = File::open(&path) {
                    *f = nf;
                    *pos = 0;
                    *ino = now_ino;
                    log::read_new(f, pos, k8s, &mut new);
                }
            }
        } else if let Ok(f) = File::open(&path) {
            let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
            current = Some((f, 0, ino));
            continue;
        }
        for e in new.iter().filter(|e| keep(e)) {
            emit(e);
        }
        if !active && new.is_empty() {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
