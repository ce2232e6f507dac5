//! `stats [-a] [--no-stream] [--no-trunc] [--format] [CONTAINER...]`: Docker's table, one
//! per second. CPU % needs two samples, so the first table comes a second after the
//! start (as Docker's `--no-stream`). On a terminal each table redraws the last in place;
//! otherwise the tables follow each other.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;

use crate::cli::front::StatsArgs;
use crate::front::containers::{Container, Store};
use crate::front::format::Formatter;
use crate::front::stats::{self, Sample};
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
            let mut l = store.list();
            l.sort_by(|x, y| y.rec.created.cmp(&x.rec.created));
            l.into_iter()
                .filter(|c| a.all || store.derive(c).is_active())
                .map(|c| (crate::front::containers::short(&c.rec.id).to_string(), c))
                .collect()
        } else {
            // A named container removed meanwhile drops out of the table.
            named
                .iter()
                .filter_map(|(q, id)| store.load(id).ok().map(|c| (q.clone(), c)))
                .collect()
        }
    };
    let tty = std::io::stdout().is_terminal() && !a.no_stream;
    let mut out = std::io::stdout().lock();
    if tty {
        // A clean screen once; each table then overwrites the last.
        let _ = out.write_all(b"\x1b[2J");
    }
    let mut cur = list(&store);
    let mut prev = sample(&store, &cur);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sample(&store, &cur);
        let rows: Vec<_> = cur
            .iter()
            .zip(&now)
            .map(|((q, c), s)| {
                let p = prev
                    .iter()
                    .find(|(id, _)| id == &c.rec.id)
                    .and_then(|x| x.1.as_ref());
                stats::row(c, q, p, s.1.as_ref(), !a.no_trunc)
            })
            .collect();
        let text = fmt.render(&rows, &stats::headers())?;
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
        if res.and_then(|_| out.flush()).is_err() || a.no_stream {
            return Ok(0);
        }
        cur = list(&store);
        prev = now
            .into_iter()
            .filter_map(|(id, s)| s.map(|s| (id, Some(s))))
            .collect();
        // Containers that appeared since get their first sample now; their CPU % shows
        // from the next table on.
        for (_, c) in &cur {
            if !prev.iter().any(|(id, _)| id == &c.rec.id) {
                prev.push((
                    c.rec.id.clone(),
                    stats::sample(&store, c, stats::host_memory()),
                ));
            }
        }
    }
}

fn sample(store: &Store, list: &[(String, Container)]) -> Vec<(String, Option<Sample>)> {
    let cs: Vec<Container> = list.iter().map(|(_, c)| c.clone()).collect();
    let s = stats::sample_all(store, &cs);
    cs.into_iter().map(|c| c.rec.id).zip(s).collect()
}
