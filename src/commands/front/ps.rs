//! `ps`: Docker's columns and status words (`Up 3 seconds`, `Exited (0) 5 minutes ago`,
//! `Created`), `-a -q -n -l --no-trunc --filter --format`. Containers whose monitor died
//! are reconciled on the way.

use std::time::SystemTime;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::cli::front::PsArgs;
use crate::front::containers::{short, Container, Live, Store};
use crate::front::format::Formatter;
use crate::front::units;
use crate::front::Globals;

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
/// `ps -s`: Docker's table with the SIZE column last.
const SIZE_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}";
/// The default table's row template: rendered without the template engine
/// ([`default_line`]), what a long listing spends most of its time in otherwise.
const DEFAULT_ROW: &str =
    "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub(crate) fn ps(g: &Globals, a: &PsArgs) -> Result<i32> {
    let store = Store::new(g);
    let mut filters = Filters::parse(&a.filter)?;
    filters.resolve_ancestors(g);
    let table = if a.size { SIZE_TABLE } else { DEFAULT_TABLE };
    let fmt = if a.quiet && a.format.is_none() {
        None
    } else {
        Some(Formatter::new(a.format.as_deref(), table)?)
    };
    let sizes = Sizes::new(g, &store);
    let all = a.all || a.latest || a.last > 0 || filters.implies_all();
    let limit = if a.latest {
        1
    } else if a.last > 0 {
        a.last as usize
    } else {
        usize::MAX
    };
    if let Some(fmt) = fmt.as_ref().filter(|f| f.is(true, DEFAULT_ROW)) {
        if filters.before.is_empty() && filters.since.is_empty() {
            return default_table(&store, fmt, &filters, all, limit, !a.no_trunc);
        }
    }
    let list = store.list_brief_live();
    // Newest first, as Docker lists them; sorted by reference (a Container is large).
    let mut order: Vec<&(Container, Live)> = list.iter().collect();
    order.sort_by(|(x, _), (y, _)| y.rec.created.cmp(&x.rec.created));
    let ports = crate::front::network::show::PsPorts::new(&store);
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    let plain = fmt.as_ref().is_some_and(|f| f.is(true, DEFAULT_ROW));
    // A default row is about a hundred bytes: a long listing grows this once, if at all.
    let mut lines = String::with_capacity(if plain { list.len() * 128 } else { 0 });
    let mut shown = 0;
    for (c, live) in order {
        let (c, live) = (c, *live);
        if shown >= limit {
            break;
        }
        if !all && !live.is_active() {
            continue;
        }
        if !filters.matches(&store, c, live, &list)? {
            continue;
        }
        shown += 1;
        let Some(fmt) = &fmt else {
            ids.push(if a.no_trunc {
                c.rec.id.clone()
            } else {
                short(&c.rec.id).to_string()
            });
            continue;
        };
        if plain {
            let ports = ports.text(&c.rec, live.is_active());
            default_line(c, live, !a.no_trunc, &ports, &mut lines);
            continue;
        }
        let mut r = row(c, live, !a.no_trunc, &|f| fmt.may_read(f));
        if fmt.may_read("Ports") {
            r["Ports"] = json!(ports.text(&c.rec, live.is_active()));
        }
        if fmt.may_read("Size") {
            r["Size"] = json!(sizes.text(c));
        }
        rows.push(r);
    }
    let Some(fmt) = fmt else {
        for id in ids {
            println!("{id}");
        }
        return Ok(0);
    };
    if plain {
        print!("{}", fmt.render_body(lines, &headers()));
    } else {
        print!("{}", fmt.render(&rows, &headers())?);
    }
    Ok(0)
}

fn headers() -> Value {
    json!({
        "ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED",
        "CreatedAt": "CREATED AT", "Status": "STATUS", "State": "STATE", "Ports": "PORTS",
        "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
        "Size": "SIZE", "LocalVolumes": "LOCAL VOLUMES",
    })
}

/// The default table (no filter that compares containers with each other): each
/// container's line made as it is read (by several threads in a long list), the lines
/// then put in order (newest first, as the list is sorted otherwise, ties in the order
/// read), without keeping the containers.
fn default_table(
    store: &Store,
    fmt: &Formatter,
    filters: &Filters,
    all: bool,
    limit: usize,
    trunc: bool,
) -> Result<i32> {
    let ports = crate::front::network::show::PsPorts::new(store);
    // Each line made as its container is read, known by the container's creation time.
    let rows = store.map_brief_live(|c, live| -> Result<Option<(String, String)>> {
        if (!all && !live.is_active()) || !filters.matches(store, &c, live, &[])? {
            return Ok(None);
        }
        let ports = ports.text(&c.rec, live.is_active());
        let mut line = String::with_capacity(128);
        default_line(&c, live, trunc, &ports, &mut line);
        Ok(Some((c.rec.created, line)))
    });
    let mut at = Vec::with_capacity(rows.len());
    for r in rows {
        at.extend(r?);
    }
    at.sort_by(|x, y| y.0.cmp(&x.0));
    let mut lines = String::with_capacity(at.iter().map(|(_, l)| l.len()).sum());
    for (_, line) in at.iter().take(limit) {
        lines.push_str(line);
    }
    print!("{}", fmt.render_body(lines, &headers()));
    Ok(0)
}

/// The default table's row of `c`, as the template renders it, added to `out`.
fn default_line(c: &Container, live: Live, trunc: bool, ports: &str, out: &mut String) {
    use std::fmt::Write;
    let id = if trunc { short(&c.rec.id) } else { &c.rec.id };
    let _ = writeln!(
        out,
        "{id}\t{}\t{}\t{} ago\t{}\t{ports}\t{}",
        c.rec.image,
        command_text(c, trunc),
        since(&c.rec.created),
        status_text(c, live),
        c.rec.name
    );
}

/// The COMMAND column: Go-quoted, cut to 20 characters unless `--no-trunc`.
fn command_text(c: &Container, trunc: bool) -> String {
    let mut command = c.rec.path.clone();
    for a in &c.rec.args {
        command.push(' ');
        command.push_str(a);
    }
    if trunc {
        command = ellipsis(&command, 20);
    }
    crate::front::format::go_quote(&command)
}

fn parse_time(s: &str) -> SystemTime {
    units::parse_rfc3339(s).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn since(s: &str) -> String {
    let d = SystemTime::now()
        .duration_since(parse_time(s))
        .unwrap_or_default();
    units::human_duration(d)
}

/// Docker's `State.String()`.
pub(crate) fn status_text(c: &Container, live: Live) -> String {
    match live {
        Live::Running => format!("Up {}{}", since(&c.state.started_at), health_suffix(c)),
        Live::Restarting => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
        Live::Paused => format!("Up {} (Paused)", since(&c.state.started_at)),
        Live::Removing => "Removal In Progress".into(),
        Live::Created | Live::Starting => "Created".into(),
        Live::Exited if c.state.finished_at.is_empty() => format!("Exited ({})", c.state.exit_code),
        Live::Exited => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            since(&c.state.finished_at)
        ),
    }
}

/// Docker's ` (healthy)`, ` (unhealthy)`, ` (health: starting)` after `Up ...`.
fn health_suffix(c: &Container) -> String {
    match c.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)".into(),
        Some(s) if !s.is_empty() => format!(" ({s})"),
        _ => String::new(),
    }
}

/// The health status a `health=` filter compares (`none` without a healthcheck).
fn health_status(c: &Container, live: Live) -> &str {
    match c.state.health.as_ref() {
        Some(h) if live == Live::Running || live == Live::Paused => h.status.as_str(),
        _ => "none",
    }
}

/// Go's `time.Time.String()` in UTC: `2024-01-02 03:04:05 +0000 UTC`.
fn created_at(s: &str) -> String {
    let t = units::rfc3339_nano(parse_time(s));
    let date = &t[..10.min(t.len())];
    let clock = t.get(11..19).unwrap_or("");
    format!("{date} {clock} +0000 UTC")
}

fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// One row, with the columns the template may read (`shown`): a long listing's time goes
/// into the columns, and the default table shows half of them.
fn row(c: &Container, live: Live, trunc: bool, shown: &dyn Fn(&str) -> bool) -> Value {
    let mut r = serde_json::Map::new();
    let mut put = |k: &str, v: &dyn Fn() -> Value| {
        if shown(k) {
            r.insert(k.to_string(), v());
        }
    };
    put("Command", &|| json!(command_text(c, trunc)));
    put("CreatedAt", &|| json!(created_at(&c.rec.created)));
    put("ID", &|| {
        json!(if trunc {
            short(&c.rec.id).to_string()
        } else {
            c.rec.id.clone()
        })
    });
    put("Image", &|| json!(c.rec.image));
    put("Labels", &|| {
        let labels: Vec<String> = c
            .rec
            .config
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        json!(labels.join(","))
    });
    put("LocalVolumes", &|| {
        json!(c
            .rec
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .count()
            .to_string())
    });
    put("Mounts", &|| {
        json!(c
            .rec
            .mounts
            .iter()
            .map(|m| if m.kind == "volume" {
                m.name.clone()
            } else {
                m.source.clone()
            })
            .collect::<Vec<_>>()
            .join(","))
    });
    put("Names", &|| json!(c.rec.name));
    put("Networks", &|| json!(c.rec.host_config.network_mode));
    put("Ports", &|| json!(""));
    put("RunningFor", &|| {
        json!(format!("{} ago", since(&c.rec.created)))
    });
    put("State", &|| json!(live.word()));
    put("Status", &|| json!(status_text(c, live)));
    Value::Object(r)
}

#[derive(Default)]
struct Filters {
    id: Vec<String>,
    name: Vec<String>,
    label: Vec<(String, Option<String>)>,
    status: Vec<String>,
    exited: Vec<i32>,
    ancestor: Vec<String>,
    /// The image ids the `ancestor` values name in the image store (a name, a tag, an id
    /// or a unique id prefix).
    ancestor_ids: Vec<String>,
    before: Vec<String>,
    since: Vec<String>,
    volume: Vec<String>,
    health: Vec<String>,
    /// network=, publish=, expose=
    net: Vec<(String, String)>,
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
                "id" => f.id.push(v),
                "name" => f.name.push(v),
                "label" => {
                    let (lk, lv) = match v.split_once('=') {
                        Some((a, b)) => (a.to_string(), Some(b.to_string())),
                        None => (v, None),
                    };
                    f.label.push((lk, lv));
                }
                "status" => {
                    const OK: &[&str] = &[
                        "created",
                        "restarting",
                        "running",
                        "removing",
                        "paused",
                        "exited",
                        "dead",
                    ];
                    if !OK.contains(&v.as_str()) {
                        bail!(
                            "invalid filter 'status={v}': valid values are {}",
                            OK.join(", ")
                        );
                    }
                    f.status.push(v);
                }
                "exited" => f.exited.push(
                    v.parse()
                        .map_err(|_| anyhow!("invalid filter 'exited={v}': not an exit code"))?,
                ),
                "ancestor" => f.ancestor.push(v),
                "before" => f.before.push(v),
                "since" => f.since.push(v),
                "volume" => f.volume.push(v),
                "health" => {
                    const OK: &[&str] = &["starting", "healthy", "unhealthy", "none"];
                    if !OK.contains(&v.as_str()) {
                        bail!(
                            "invalid filter 'health={v}': valid values are {}",
                            OK.join(", ")
                        );
                    }
                    f.health.push(v);
                }
                "network" | "publish" | "expose" => f.net.push((k.to_string(), v)),
                _ => bail!("invalid filter '{k}'"),
            }
        }
        Ok(f)
    }

    fn resolve_ancestors(&mut self, g: &Globals) {
        if self.ancestor.is_empty() {
            return;
        }
        let Ok(images) = super::image_store(g) else {
            return;
        };
        for a in &self.ancestor {
            if let Ok(Some((r, _))) = crate::front::images::ops::find(&images, a) {
                self.ancestor_ids.push(r.id.to_string());
            }
        }
    }

    /// Whether `c` was created from an image `ancestor` names: by the name it was given,
    /// or by the image's id (a listing's record leaves the id out: the whole record has it).
    fn ancestor_matches(&self, store: &Store, c: &Container) -> bool {
        if self.ancestor.contains(&c.rec.image) {
            return true;
        }
        if self.ancestor_ids.is_empty() {
            return false;
        }
        let id = if c.rec.image_id.is_empty() {
            match store.load_brief(&c.rec.id) {
                Ok(full) => full.rec.image_id,
                Err(_) => return false,
            }
        } else {
            c.rec.image_id.clone()
        };
        self.ancestor_ids.contains(&id)
    }

    /// Filters on stopped states look at every container, as Docker's do.
    fn implies_all(&self) -> bool {
        !self.exited.is_empty() || self.status.iter().any(|s| s != "running" && s != "paused")
    }

    fn matches(
        &self,
        store: &Store,
        c: &Container,
        live: Live,
        all: &[(Container, Live)],
    ) -> Result<bool> {
        let r = &c.rec;
        if !self.id.is_empty() && !self.id.iter().any(|p| r.id.starts_with(p.as_str())) {
            return Ok(false);
        }
        if !self.name.is_empty()
            && !self
                .name
                .iter()
                .any(|n| r.name.contains(n.trim_start_matches('/')))
        {
            return Ok(false);
        }
        for (k, v) in &self.label {
            match (r.config.labels.get(k), v) {
                (None, _) => return Ok(false),
                (Some(have), Some(want)) if have != want => return Ok(false),
                _ => {}
            }
        }
        if !self.status.is_empty() && !self.status.iter().any(|s| s == live.word()) {
            return Ok(false);
        }
        if !self.exited.is_empty()
            && (live != Live::Exited || !self.exited.contains(&c.state.exit_code))
        {
            return Ok(false);
        }
        // Docker's volume filter: a volume's name, a bind's source, or a destination.
        if !self.volume.is_empty()
            && !self.volume.iter().any(|v| {
                r.mounts.iter().any(|m| {
                    m.destination == *v
                        || (if m.kind == "volume" {
                            &m.name
                        } else {
                            &m.source
                        }) == v
                })
            })
        {
            return Ok(false);
        }
        if !self.health.is_empty() && !self.health.iter().any(|h| h == health_status(c, live)) {
            return Ok(false);
        }
        if !self.ancestor.is_empty() && !self.ancestor_matches(store, c) {
            return Ok(false);
        }
        for (k, v) in &self.net {
            if !crate::front::network::show::filter_matches(store, r, k, v) {
                return Ok(false);
            }
        }
        for b in &self.before {
            let id = store.resolve(b)?;
            let Some((other, _)) = all.iter().find(|(x, _)| x.rec.id == id) else {
                continue;
            };
            if r.created >= other.rec.created {
                return Ok(false);
            }
        }
        for s in &self.since {
            let id = store.resolve(s)?;
            let Some((other, _)) = all.iter().find(|(x, _)| x.rec.id == id) else {
                continue;
            };
            if r.created <= other.rec.created {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The SIZE column (`ps -s`, or a template that reads `.Size`), as Docker prints it: the
/// bytes the container wrote (its writable layer) and, in parentheses, those plus its
/// image's (`2B (virtual 4.26MB)`). A container run from a `--rootfs` directory writes
/// into that directory, which is not berth's to count: `0B (virtual 0B)`.
pub(super) struct Sizes<'a> {
    g: &'a Globals,
    store: &'a Store,
    /// Each image's unpacked size, by id, read at the first container of it.
    images: std::cell::RefCell<std::collections::HashMap<String, u64>>,
}

impl<'a> Sizes<'a> {
    pub(super) fn new(g: &'a Globals, store: &'a Store) -> Sizes<'a> {
        Sizes {
            g,
            store,
            images: Default::default(),
        }
    }

    fn text(&self, c: &Container) -> String {
        let (rw, root) = self.bytes(c);
        format!(
            "{} (virtual {})",
            units::human_size_with_precision(rw as f64, 3),
            units::human_size_with_precision(root as f64, 3)
        )
    }

    /// Docker's SizeRw and SizeRootFs: the writable layer's bytes, and those plus the
    /// image's.
    pub(super) fn bytes(&self, c: &Container) -> (u64, u64) {
        // A listing's record leaves the image id out: the whole record has it.
        let full;
        let c = if c.rec.image_id.is_empty() {
            match self.store.load_brief(&c.rec.id) {
                Ok(f) => {
                    full = f;
                    &full
                }
                Err(_) => c,
            }
        } else {
            c
        };
        let rw = super::container_prune::size_rw(self.store, c);
        (rw, rw + self.image_size(&c.rec.image_id))
    }

    fn image_size(&self, id: &str) -> u64 {
        if id.is_empty() {
            return 0;
        }
        if let Some(n) = self.images.borrow().get(id) {
            return *n;
        }
        // An image removed since (`rmi -f`) counts as nothing, as Docker's.
        let n = crate::front::digest::Digest::parse(id)
            .ok()
            .and_then(|d| {
                let images = super::image_store(self.g).ok()?;
                images.image(&d).ok().flatten()
            })
            .map_or(0, |r| r.size);
        self.images.borrow_mut().insert(id.to_string(), n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::containers::{Record, State, Status};

    fn container(name: &str, status: Status, args: &[&str]) -> Container {
        Container {
            rec: Record {
                id: format!("{:0>64}", format!("abc{name}")),
                name: name.into(),
                created: "2020-01-02T03:04:05.123456789Z".into(),
                image: "localhost/busybox:1".into(),
                path: "sh".into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                ..Record::default()
            },
            state: State {
                status,
                exit_code: 3,
                started_at: "2021-01-02T03:04:05Z".into(),
                finished_at: "2022-01-02T03:04:05Z".into(),
                ..State::default()
            },
        }
    }

    #[test]
    fn the_default_table_reads_as_its_template_renders_it() {
        let cs = [
            (
                container("a", Status::Created, &["-c", "true"]),
                Live::Created,
            ),
            (
                container(
                    "b",
                    Status::Exited,
                    &["-c", "echo \"a very long\tcommand\""],
                ),
                Live::Exited,
            ),
            (container("c", Status::Running, &[]), Live::Running),
            (container("d", Status::Running, &["ünïcode…"]), Live::Paused),
        ];
        let headers = json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
            "RunningFor": "CREATED", "Status": "STATUS", "Ports": "PORTS", "Names": "NAMES"});
        for format in [None, Some("table"), Some(DEFAULT_TABLE)] {
            let fmt = Formatter::new(format, DEFAULT_TABLE).unwrap();
            assert!(fmt.is(true, DEFAULT_ROW), "{format:?}");
            for trunc in [true, false] {
                let ports = "0.0.0.0:8080->80/tcp";
                let rows: Vec<Value> = cs
                    .iter()
                    .map(|(c, l)| {
                        let mut r = row(c, *l, trunc, &|f| fmt.may_read(f));
                        r["Ports"] = json!(ports);
                        r
                    })
                    .collect();
                let mut lines = String::new();
                for (c, l) in &cs {
                    default_line(c, *l, trunc, ports, &mut lines);
                }
                assert_eq!(
                    fmt.render_body(lines, &headers),
                    fmt.render(&rows, &headers).unwrap()
                );
            }
        }
        // Any other template goes through the engine.
        for other in ["table {{.ID}}", "{{.ID}}\t{{.Image}}", "json"] {
            let fmt = Formatter::new(Some(other), DEFAULT_TABLE).unwrap();
            assert!(!fmt.is(true, DEFAULT_ROW), "{other}");
        }
    }
}
