//! `stats [-a] [--no-stream] [--no-trunc] [--format] [CONTAINER...]`: Docker's table, one
//! per second, CPU % over that second from two samples. `--no-stream` prints one table at
//! once from one reading (see `front::stats` for its CPU %). On a terminal each table
//! redraws the last in place; otherwise the tables follow each other.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;

use crate::cli::front::StatsArgs;
use crate::front::containers::{Container, Live, Store};
use crate::front::format::Formatter;
use crate::front::stats::{self, Host, Sample};
use crate::front::Globals;

pub(crate) fn stats(g: &Globals, a: &StatsArgs) -> Result<i32> {
    let store = Store::new(g);
    let fmt = Formatter::new(a.format.as_deref(), stats::DEFAULT_TABLE)?;
    // Named containers are resolved once (an unknown one is an error now); without names
    // the set is listed again at every sample, as containers come and go.
    let named: Vec<(String, String)> = a
        .containers
        .iter()
        .map(|q| store.resolve(q).map(|id| (q.clone(), id)))
        .collect::<Result<_>>()?;
    let list = |store: &Store| -> Vec<(String, Container)> {
        if named.is_empty() {
            // The records without their specs: nothing here reads them.
            let mut l = store.list_brief();
            l.sort_by(|x, y| y.rec.created.cmp(&x.rec.created));
            l.into_iter()
                .filter(|c| a.all || active(store, c))
                .map(|c| (crate::front::containers::short(&c.rec.id).to_string(), c))
                .collect()
        } else {
            // A named container removed meanwhile drops out of the table.
            named
                .iter()
                .filter_map(|(q, id)| store.load_brief(id).ok().map(|c| (q.clone(), c)))
                .collect()
        }
    };
    let render =
        |cur: &[(String, Container)], now: &[Option<Sample>], cpu: &dyn Fn(usize) -> f64| {
            let rows: Vec<_> = cur
                .iter()
                .zip(now)
                .enumerate()
                .map(|(i, ((q, c), s))| stats::row(c, q, cpu(i), s.as_ref(), !a.no_trunc))
                .collect();
            fmt.render(&rows, &stats::headers())
        };
    let mut out = std::io::stdout().lock();
    let mut cur = list(&store);
    if a.no_stream {
        let now = sample(&store, &cur);
        let kept: Vec<Option<Sample>> = cur
            .iter()
            .map(|(_, c)| stats::load_last(&store, &c.rec.id))
            .collect();
        let text = render(&cur, &now, &|i| {
            now[i].as_ref().map_or(0.0, |s| {
                let started = crate::front::units::parse_rfc3339(&cur[i].1.state.started_at);
                stats::cpu_once(s, kept[i].as_ref(), started)
            })
        })?;
        keep(&store, &cur, &now, Some(&kept));
        // The reader went away (`| head`): nothing more to say.
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        return Ok(0);
    }
    let tty = std::io::stdout().is_terminal();
    if tty {
        // A clean screen once; each table then overwrites the last.
        let _ = out.write_all(b"\x1b[2J");
    }
    let mut prev: Vec<(String, Option<Sample>)> = cur
        .iter()
        .map(|(_, c)| c.rec.id.clone())
        .zip(sample(&store, &cur))
        .collect();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sample(&store, &cur);
        let text = render(&cur, &now, &|i| {
            let p = prev
                .iter()
                .find(|(id, _)| id == &cur[i].1.rec.id)
                .and_then(|x| x.1.as_ref());
            match (p, now[i].as_ref()) {
                (Some(p), Some(s)) => stats::cpu_percent(p, s),
                _ => 0.0,
            }
        })?;
        // What a `--no-stream` elsewhere measures against.
        keep(&store, &cur, &now, None);
        let res = if tty {
            // Home, each line cleared to its end, then whatever the last table had below.
            let mut s = String::from("\x1b[H");
            for l in text.lines() {
                s.push_str(l);
                s.push_str("\x1b[K\n");
            }
            s.push_str("\x1b[J");
            out.write_all(s.as_bytes())
        } else {
            out.write_all(text.as_bytes())
        };
        // The reader went away (`| head`): done.
        if res.and_then(|_| out.flush()).is_err() {
            return Ok(0);
        }
        prev = cur
            .iter()
            .map(|(_, c)| c.rec.id.clone())
            .zip(now)
            .filter(|(_, s)| s.is_some())
            .collect();
        cur = list(&store);
        // Containers that appeared since get their first sample now; their CPU % shows
        // from the next table on.
        let new: Vec<(String, Container)> = cur
            .iter()
            .filter(|(_, c)| !prev.iter().any(|(id, _)| id == &c.rec.id))
            .cloned()
            .collect();
        prev.extend(
            new.iter()
                .map(|(_, c)| c.rec.id.clone())
                .zip(sample(&store, &new)),
        );
    }
}

/// Whether a container is listed without `-a`: Docker's running (or paused, restarting,
/// starting) ones. The listing has reconciled every record that claims to run against its
/// monitor already; a dead one found since reads as zeros.
fn active(store: &Store, c: &Container) -> bool {
    use crate::front::containers::Status;
    match c.state.status {
        Status::Running | Status::Restarting => true,
        Status::Created => store.derive(c) == Live::Starting,
        Status::Exited | Status::Removing => false,
    }
}

/// One reading of each container in `list`, the host's figures read once.
fn sample(store: &Store, list: &[(String, Container)]) -> Vec<Option<Sample>> {
    let host = Host::now();
    list.iter()
        .map(|(_, c)| stats::sample(store, c, &host))
        .collect()
}

/// Each running container's sample kept for the next `--no-stream`.
fn keep(
    store: &Store,
    list: &[(String, Container)],
    now: &[Option<Sample>],
    kept: Option<&[Option<Sample>]>,
) {
    for (i, ((_, c), s)) in list.iter().zip(now).enumerate() {
        if let Some(s) = s {
            let k = kept.and_then(|k| k[i].as_ref());
            stats::save_last(store, &c.rec.id, s, k);
        }
    }
}
