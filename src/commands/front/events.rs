//! `events [--since --until --filter --format]`: the journal's events (see
//! `front::events`), those since `--since` first, then new ones as they come, until
//! `--until` passes or the command is interrupted.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::cli::front::EventsArgs;
use crate::front::containers::Store;
use crate::front::events::{self, Reader};
use crate::front::format::Formatter;
use crate::front::units;
use crate::front::Globals;

/// How often the journal is looked at for new lines.
const POLL: Duration = Duration::from_millis(100);

pub(crate) fn events(g: &Globals, a: &EventsArgs) -> Result<i32> {
    let now = SystemTime::now();
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i128>> {
        v.as_deref()
            .map(|s| {
                units::get_timestamp(s, now)
                    .map(nanos)
                    .map_err(|e| anyhow!("--{flag} {s}: {e:#}"))
            })
            .transpose()
    };
    let since = time("since", &a.since)?;
    let until = time("until", &a.until)?;
    let filters = Filters::parse(&a.filter)?;
    let fmt = match &a.format {
        Some(f) => Some(Formatter::new(Some(f), "")?),
        None => None,
    };
    let store = Store::new(g);
    let (mut reader, past) = Reader::open(&g.runroot, since.is_some());
    let mut out = std::io::stdout().lock();
    let mut show = |evs: Vec<Value>| -> Result<()> {
        for ev in evs {
            let t = i128::from(ev["timeNano"].as_i64().unwrap_or(0));
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t > u) {
                continue;
            }
            if !filters.matches(&store, &ev) {
                continue;
            }
            let text = match &fmt {
                Some(f) => f.render(std::slice::from_ref(&ev), &json!({}))?,
                None => format!("{}\n", events::line(&ev)),
            };
            // A reader that went away (a closed pipe) ends us.
            if out
                .write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                return Err(anyhow!(""));
            }
        }
        Ok(())
    };
    if show(past).is_err() {
        return Ok(0);
    }
    loop {
        if until.is_some_and(|u| nanos(SystemTime::now()) > u) {
            // What was written up to the end still counts.
            let _ = show(reader.poll());
            return Ok(0);
        }
        std::thread::sleep(POLL);
        if show(reader.poll()).is_err() {
            return Ok(0);
        }
    }
}

fn nanos(t: SystemTime) -> i128 {
    let (s, n) = units::unix_parts(t);
    i128::from(s) * 1_000_000_000 + i128::from(n)
}

#[derive(Default)]
struct Filters {
    container: Vec<String>,
    event: Vec<String>,
    kind: Vec<String>,
    image: Vec<String>,
    label: Vec<(String, Option<String>)>,
}

impl Filters {
    fn parse(list: &[String]) -> Result<Filters> {
        let mut f = Filters::default();
        for item in list {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("bad format of filter (expected name=value): {item}"))?;
            let v = v.to_string();
            match k {
                "container" => f.container.push(v),
                "event" | "status" => f.event.push(v),
                "type" => {
                    const OK: &[&str] = &["container", "image", "volume", "network"];
                    if !OK.contains(&v.as_str()) {
                        bail!(
                            "invalid filter 'type={v}': valid types are {}",
                            OK.join(", ")
                        );
                    }
                    f.kind.push(v)
                }
                "image" => f.image.push(v),
                "label" => f.label.push(match v.split_once('=') {
                    Some((a, b)) => (a.to_string(), Some(b.to_string())),
                    None => (v, None),
                }),
                _ => bail!("invalid filter '{k}'"),
            }
        }
        Ok(f)
    }

    fn matches(&self, store: &Store, ev: &Value) -> bool {
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let kind = s(&ev["Type"]);
        let action = s(&ev["Action"]);
        let id = s(&ev["Actor"]["ID"]);
        let attrs = &ev["Actor"]["Attributes"];
        let name = s(&attrs["name"]);
        if !self.kind.is_empty() && !self.kind.contains(&kind) {
            return false;
        }
        // `health_status: healthy` matches event=health_status, as Docker's.
        let base = action.split(':').next().unwrap_or("").to_string();
        if !self.event.is_empty() && !self.event.iter().any(|e| *e == action || *e == base) {
            return false;
        }
        if !self.container.is_empty() {
            if kind != "container" {
                return false;
            }
            let hit = self.container.iter().any(|q| {
                q == &name
                    || (!q.is_empty() && id.starts_with(q.as_str()))
                    // A name now held by that container (renamed since).
                    || store.id_by_name(q).as_deref() == Some(id.as_str())
            });
            if !hit {
                return false;
            }
        }
        if !self.image.is_empty() {
            let image = if kind == "image" {
                name.clone()
            } else {
                s(&attrs["image"])
            };
            if !self.image.iter().any(|i| *i == image || *i == id) {
                return false;
            }
        }
        for (k, v) in &self.label {
            match (attrs.get(k).and_then(|x| x.as_str()), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        true
    }
}
