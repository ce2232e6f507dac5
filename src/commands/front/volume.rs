//! `volume create|ls|inspect|rm|prune|exists`: Docker's words and shapes (exit 1 on
//! failure; several names go on past failures).

use std::collections::BTreeMap;
use std::io::BufRead;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use crate::cli::front::{
    ListArgs, NameArg, NamesFormatArgs, PruneArgs, VolumeCreateArgs, VolumeRmArgs,
};
use crate::front::containers::Store as Containers;
use crate::front::format::Formatter;
use crate::front::volumes::{self, CreateOptions, Store, Volume};
use crate::front::{Exit, Globals};

fn failed() -> anyhow::Error {
    Exit {
        code: 1,
        msg: String::new(),
    }
    .into()
}

fn pairs(list: &[String], flag: &str, need_value: bool) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for s in list {
        let (k, v) = match s.split_once('=') {
            Some((k, v)) => (k, v),
            None if !need_value => (s.as_str(), ""),
            None => bail!("{flag} {s}: expected key=value"),
        };
        if k.is_empty() {
            bail!("{flag} {s}: the key is empty");
        }
        m.insert(k.to_string(), v.to_string());
    }
    Ok(m)
}

pub(crate) fn create(g: &Globals, a: &VolumeCreateArgs) -> Result<i32> {
    if a.driver != "local" {
        bail!(
            "-d/--driver {}: only the local driver is available",
            a.driver
        );
    }
    let name = match (&a.name, &a.name_flag) {
        (Some(n), Some(f)) if n != f => {
            bail!("conflicting options: either specify --name or provide positional arg, not both")
        }
        (Some(n), _) | (None, Some(n)) => n.clone(),
        (None, None) => crate::front::containers::new_id(),
    };
    volumes::validate_name(&name)?;
    let o = CreateOptions {
        labels: pairs(&a.label, "--label", false)?,
        options: pairs(&a.opt, "-o/--opt", true)?,
    };
    volumes::check_options(&o.options)?;
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, runroot) = (abs(&g.root), abs(&g.runroot));
    volumes::check_device(&o.options, &[&root, &runroot])?;
    let (_, made) = Store::new(&g.root).create(&name, &o)?;
    if !made && !a.ignore && (!o.labels.is_empty() || !o.options.is_empty()) {
        // Docker returns the existing volume when nothing differs; asking for other
        // labels or options on an existing one is a conflict there too.
        bail!("create {name}: volume already exists (use --ignore to keep it as it is)");
    }
    println!("{name}");
    Ok(0)
}

pub(crate) fn exists(g: &Globals, a: &NameArg) -> Result<i32> {
    Ok(if Store::new(&g.root).get(&a.name)?.is_some() {
        0
    } else {
        1
    })
}

/// A row of `volume ls` (docker/cli's volume formatter fields).
fn row(v: &Volume, dangling: bool) -> Value {
    let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Scope": v.scope,
        "Mountpoint": v.mountpoint,
        "Labels": labels.join(","),
        "CreatedAt": v.created_at,
        "Links": if dangling { 0 } else { 1 },
        "Size": "N/A",
    })
}

/// `--filter` of `volume ls`/`prune`: name=, label=KEY[=VALUE], label!=, dangling=, driver=.
fn matches(v: &Volume, filters: &[(String, String)], dangling: bool) -> Result<bool> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, x) in filters {
        by_key.entry(k.as_str()).or_default().push(x.as_str());
    }
    for (k, wants) in by_key {
        let label_has = |w: &str| match w.split_once('=') {
            Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
            None => v.labels.contains_key(w),
        };
        let ok = match k {
            "name" => wants.iter().any(|w| v.name.contains(w)),
            "driver" => wants.iter().any(|w| v.driver == *w),
            "label" => wants.iter().all(|w| label_has(w)),
            "label!" => !wants.iter().any(|w| label_has(w)),
            "dangling" => {
                let want = match wants.last().copied() {
                    Some("true" | "1") => true,
                    Some("false" | "0") => false,
                    Some(x) => bail!("--filter dangling={x}: expected true or false"),
                    None => true,
                };
                dangling == want
            }
            _ => unreachable!("checked by parse_filters"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn parse_filters(list: &[String], allowed: &[&str]) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| anyhow!("--filter {f}: expected key=value"))?;
            if !allowed.contains(&k) {
                bail!("--filter {f}: invalid filter {k:?}");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

pub(crate) fn ls(g: &Globals, a: &ListArgs) -> Result<i32> {
    let filters = parse_filters(
        &a.filter,
        &["name", "label", "label!", "dangling", "driver"],
    )?;
    let store = Store::new(&g.root);
    let used = volumes::in_use(&Containers::new(g));
    let mut rows = Vec::new();
    for v in store.list() {
        let dangling = !used.contains(&v.name);
        if matches(&v, &filters, dangling)? {
            rows.push(row(&v, dangling));
        }
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let fmt = Formatter::new(a.format.as_deref(), "table {{.Driver}}\t{{.Name}}")?;
    let headers = json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "CreatedAt": "CREATED", "Links": "LINKS", "Size": "SIZE"});
    print!("{}", fmt.render(&rows, &headers)?);
    Ok(0)
}

/// The volumes `names` name, as `volume inspect` prints them; missing ones reported.
pub(crate) fn inspect_objects(g: &Globals, names: &[String]) -> (Vec<Value>, Vec<String>) {
    let store = Store::new(&g.root);
    let mut objs = Vec::new();
    let mut missing = Vec::new();
    for n in names {
        match store.get(n) {
            Ok(Some(v)) => objs.push(v.to_json()),
            _ => missing.push(n.clone()),
        }
    }
    (objs, missing)
}

pub(crate) fn inspect(g: &Globals, a: &NamesFormatArgs) -> Result<i32> {
    let (objs, missing) = inspect_objects(g, &a.names);
    for n in &missing {
        crate::logging::error(&format!("No such volume: {n}"));
    }
    match &a.format {
        Some(f) => {
            let fmt = Formatter::new(Some(f), "")?;
            print!("{}", fmt.render(&objs, &json!({}))?);
        }
        None => println!(
            "{}",
            crate::front::format::go_json_indent(&Value::Array(objs), "    ", true)
        ),
    }
    if !missing.is_empty() {
        return Err(failed());
    }
    Ok(0)
}

pub(crate) fn rm(g: &Globals, a: &VolumeRmArgs) -> Result<i32> {
    let store = Store::new(&g.root);
    let containers = Containers::new(g);
    let mut bad = false;
    for n in &a.names {
        match store.remove(n, &containers) {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && volumes::is_no_such(&e) => {}
            Err(e) => {
                bad = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    if bad {
        return Err(failed());
    }
    Ok(0)
}

pub(crate) fn prune(g: &Globals, a: &PruneArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter, &["label", "label!"])?;
    if !a.force {
        let what = if a.all {
            "all local volumes not used by at least one container"
        } else {
            "anonymous local volumes not used by at least one container"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(0);
        }
    }
    let store = Store::new(&g.root);
    let (removed, reclaimed) =
        store.prune(&Containers::new(g), a.all, |v| matches(v, &filters, true))?;
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for n in &removed {
            println!("{n}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::front::units::human_size(reclaimed as f64)
    );
    Ok(0)
}
