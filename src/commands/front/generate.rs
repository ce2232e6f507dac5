//! `generate systemd`: the unit that runs a container (front/systemd/unit.rs), printed, or
//! written to `container-NAME.service` with `--files`.

use anyhow::{anyhow, bail, Result};
use clap::CommandFactory;

use crate::cli::front::{FrontCli, GenerateSystemdArgs};
use crate::front::containers::Store;
use crate::front::systemd::unit::{self, Unit};
use crate::front::Globals;

pub(crate) fn systemd(g: &Globals, a: &GenerateSystemdArgs) -> Result<i32> {
    if !a.new {
        bail!(
            "generate systemd: berth makes --new units only (the unit runs the container itself): add --new"
        );
    }
    let restart = unit::restart_policy(a.restart_policy.as_deref())?;
    let store = Store::new(g);
    let c = store.load(&store.resolve(&a.container)?)?;
    let argv = &c.rec.config.create_command;
    if argv.is_empty() {
        bail!(
            "{}: made by an older berth, its command line is not known; create it again",
            a.container
        );
    }
    let mut run_args = run_args(argv)?;
    let stop_timeout = match a.time {
        Some(t) => {
            run_args.insert(0, format!("--stop-timeout={t}"));
            t as i64
        }
        None => c.rec.config.stop_timeout.unwrap_or(10),
    };
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| anyhow!("/proc/self/exe: {}", crate::error::errno_text(&e)))?;
    // Globals made both absolute: the unit runs from /.
    let (root, runroot) = (
        g.root.display().to_string(),
        g.runroot.display().to_string(),
    );
    let u = Unit {
        name: c.rec.name.clone(),
        berth: vec![
            exe.display().to_string(),
            "--root".into(),
            root.clone(),
            "--runroot".into(),
            runroot.clone(),
        ],
        run_args,
        stop_timeout,
        restart,
        root: !g.rootless,
        mounts: vec![root, runroot],
    };
    let file = format!(
        "container-{}.service",
        if a.name { &c.rec.name } else { &c.rec.id }
    );
    let text = u.text();
    if a.files {
        std::fs::write(&file, &text)
            .map_err(|e| anyhow!("{file}: {}", crate::error::errno_text(&e)))?;
        let cwd = std::env::current_dir().unwrap_or_default();
        println!("{}", cwd.join(&file).display());
    } else {
        print!("{text}");
    }
    Ok(0)
}

/// The flags the unit sets itself (or that a unit must not have), with whether each
/// takes a value; the global options come from the store instead.
const DROPPED: &[(&str, bool)] = &[
    ("detach", false),
    ("rm", false),
    ("replace", false),
    ("name", true),
    ("sdnotify", true),
    ("restart", true),
    ("root", true),
    ("runroot", true),
    ("cgroup-manager", true),
    ("log-level", true),
];

/// The `run`/`create` arguments of a container's command line, minus [`DROPPED`]; the
/// image and its command are kept verbatim.
fn run_args(argv: &[String]) -> Result<Vec<String>> {
    let root = FrontCli::command();
    let run = root
        .find_subcommand("run")
        .ok_or_else(|| anyhow!("no run command"))?;
    let takes_value = |long: Option<&str>, short: Option<char>| -> Option<bool> {
        root.get_arguments()
            .chain(run.get_arguments())
            .find(|a| {
                (long.is_some() && a.get_long() == long)
                    || (short.is_some() && a.get_short() == short)
            })
            .map(|a| a.get_action().takes_values())
    };
    // Skip to the subcommand (`run`, `create`, `container run`...).
    let mut it = argv.iter().skip(1).peekable();
    loop {
        let Some(w) = it.next() else {
            bail!("the container's command line has no run or create")
        };
        if let Some(l) = w.strip_prefix("--") {
            if !l.contains('=') && takes_value(Some(l), None) == Some(true) {
                it.next();
            }
            continue;
        }
        if matches!(w.as_str(), "run" | "create") {
            break;
        }
    }
    let mut out = Vec::new();
    while let Some(w) = it.next() {
        if w == "--" || !w.starts_with('-') || w == "-" {
            out.push(w.clone());
            out.extend(it.cloned());
            break;
        }
        if let Some(l) = w.strip_prefix("--") {
            let (key, inline) = match l.split_once('=') {
                Some((k, _)) => (k, true),
                None => (l, false),
            };
            let value = !inline && takes_value(Some(key), None) == Some(true);
            let v = if value { it.next().cloned() } else { None };
            if DROPPED.iter().any(|(k, _)| *k == key) {
                continue;
            }
            out.push(w.clone());
            out.extend(v);
            continue;
        }
        // A cluster of short flags: -d goes, the others stay; a flag taking a value takes
        // the rest of the cluster, or the next word.
        let mut kept = String::from("-");
        let mut value = None;
        for (i, ch) in w[1..].char_indices() {
            if takes_value(None, Some(ch)) == Some(true) {
                kept.push_str(&w[1 + i..]);
                if i + ch.len_utf8() == w.len() - 1 {
                    value = it.next().cloned();
                }
                break;
            }
            if ch != 'd' {
                kept.push(ch);
            }
        }
        if kept != "-" {
            out.push(kept);
            out.extend(value);
        }
    }
    Ok(out)
}

/// berth run as a systemd generator (`berth-generator`, argv[0]): the `.container` files
/// of Quadlet's dirs become units in the first of the three dirs systemd passes. A bad
/// file is one line on stderr (the journal) and no unit; the others are still made.
pub(crate) fn generator(args: &[std::ffi::OsString]) -> i32 {
    let Some(out) = args.get(1).map(std::path::PathBuf::from) else {
        eprintln!("berth-generator: the output directory (systemd gives three) is missing");
        return 1;
    };
    let dirs: Vec<std::path::PathBuf> = match std::env::var_os("QUADLET_UNIT_DIRS") {
        Some(v) => std::env::split_paths(&v).collect(),
        None if nix::unistd::geteuid().is_root() => vec![
            "/etc/containers/systemd".into(),
            "/usr/share/containers/systemd".into(),
        ],
        None => {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config"))
                });
            config
                .map(|c| c.join("containers/systemd"))
                .into_iter()
                .collect()
        }
    };
    let berth = std::fs::read_link("/proc/self/exe")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/bin/berth".into());
    let mut failed = false;
    let mut seen = std::collections::BTreeSet::new();
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "container"))
            .collect();
        files.sort();
        for f in files {
            let stem = f
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            // The first dir that has a name wins (/etc over /usr/share).
            if !seen.insert(stem.clone()) {
                continue;
            }
            if let Err(e) = generate_one(&f, &stem, &out, &berth) {
                eprintln!("berth-generator: {}: {e:#}", f.display());
                failed = true;
            }
        }
    }
    i32::from(failed)
}

fn generate_one(f: &std::path::Path, stem: &str, out: &std::path::Path, berth: &str) -> Result<()> {
    let text = std::fs::read_to_string(f).map_err(|e| anyhow!(crate::error::errno_text(&e)))?;
    let g = crate::front::systemd::quadlet::generate(stem, &f.display().to_string(), &text, berth)?;
    let path = out.join(&g.service);
    std::fs::write(&path, &g.text)
        .map_err(|e| anyhow!("{}: {}", path.display(), crate::error::errno_text(&e)))?;
    for (target, kind) in &g.links {
        let d = out.join(format!("{target}.{kind}"));
        std::fs::create_dir_all(&d)
            .map_err(|e| anyhow!("{}: {}", d.display(), crate::error::errno_text(&e)))?;
        let l = d.join(&g.service);
        let _ = std::fs::remove_file(&l);
        std::os::unix::fs::symlink(format!("../{}", g.service), &l)
            .map_err(|e| anyhow!("{}: {}", l.display(), crate::error::errno_text(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_units_own_flags_go_the_rest_stays() {
        let got = run_args(&v(
            "berth --root /r run -dit --rm --name x -e A=1 --restart=always --sdnotify container -p 80:80 busybox sh -c --rm",
        ))
        .unwrap();
        assert_eq!(got, v("-it -e A=1 -p 80:80 busybox sh -c --rm"));
        let got = run_args(&v("berth container create -de X=y img")).unwrap();
        assert_eq!(got, v("-e X=y img"));
        let got = run_args(&v("berth --log-level debug run --replace img")).unwrap();
        assert_eq!(got, v("img"));
    }
}
