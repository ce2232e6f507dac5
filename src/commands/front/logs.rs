//! `logs`: the container's log (json-file or k8s-file, rotated files included), stdout to
//! stdout and stderr to stderr; `-f` follows across rotation and ends when the container
//! stops; `--since/--until` take RFC 3339, Unix seconds or Go durations; `-n` the last N.

use std::time::SystemTime;

use anyhow::Result;

use crate::cli::front::LogsArgs;
use crate::front::containers::Store;
use crate::front::logs::reader::{parse_tail, read_logs, ReadOptions};
use crate::front::logs::Driver;
use crate::front::units;
use crate::front::Globals;

pub(crate) fn logs(g: &Globals, a: &LogsArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    let driver = Driver::parse(&c.rec.host_config.log_config.kind)?;
    let now = SystemTime::now();
    let opts = ReadOptions {
        since: a
            .since
            .as_deref()
            .map(|s| units::get_timestamp(s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| units::get_timestamp(s, now))
            .transpose()?,
        tail: parse_tail(&a.tail),
        timestamps: a.timestamps,
        follow: a.follow,
        details: a.details,
        ..Default::default()
    };
    let id = c.rec.id.clone();
    let mut running = || {
        store
            .load(&id)
            .ok()
            .is_some_and(|c| store.derive(&c).is_active())
    };
    // Buffered (the standard streams write a line at a time: one syscall per log line);
    // the reader flushes whenever it waits, switches streams or ends.
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr().lock());
    read_logs(
        driver,
        &c.rec.log_path,
        &opts,
        &mut stdout,
        &mut stderr,
        &mut running,
    )?;
    Ok(0)
}
