//! `top CONTAINER [ps OPTIONS]`: the host's `ps` (default `-ef`), narrowed to the
//! container's processes, in Docker's table.

use anyhow::{anyhow, bail, Result};

use crate::cli::front::TopArgs;
use crate::front::containers::{runtime as rt, Live, Store};
use crate::front::format::TabWriter;
use crate::front::Globals;

pub(crate) fn top(g: &Globals, a: &TopArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get_started(&a.container)?;
    if !matches!(store.derive(&c), Live::Running | Live::Paused) {
        bail!("container {} is not running", a.container);
    }
    let mut pids = rt::pids(&store.rt, &c.rec.id);
    if pids.is_empty() {
        // No cgroup of its own (rootless without delegation): its init and descendants.
        if let Some(init) = rt::init_pid(&store.rt, &c.rec.id) {
            pids = descendants(init);
        }
    }
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow!("ps: {}", crate::error::errno_text(&e)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        bail!("ps {}: {first}", args.join(" "));
    }
    let (titles, rows) = parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)?;
    let mut tw = TabWriter::new(20, 1, 3, b' ');
    tw.write(&format!("{}\n", titles.join("\t")));
    for r in rows {
        tw.write(&format!("{}\n", r.join("\t")));
    }
    print!("{}", tw.flush());
    Ok(0)
}

/// `pid` and every process below it (from each process's parent in /proc).
fn descendants(pid: i32) -> Vec<i32> {
    let mut parent_of = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The command may hold spaces and parentheses: fields follow the last ')'.
        if let Some(pp) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
        {
            parent_of.push((p, pp));
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let cur = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == cur)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// Docker's `parsePSOutput`: the header's fields, then the lines whose PID column is one
/// of `pids` (the last column takes the rest of its line: commands have spaces).
fn parse_ps(text: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    let mut rows = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() <= col {
            continue;
        }
        let Ok(pid) = f[col].parse::<i32>() else {
            bail!("unexpected pid '{}': not a number", f[col]);
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        if row.len() > titles.len() && !titles.is_empty() {
            let tail = row.split_off(titles.len() - 1).join(" ");
            row.push(tail);
        }
        rows.push(row);
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_narrowed_to_the_container() {
        let text = "UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 05:00 ?        00:00:01 /sbin/init\nroot         420     400  0 05:01 ?        00:00:00 sleep 1000 now\n";
        let (t, r) = parse_ps(text, &[420]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0][7], "sleep 1000 now");
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
    }
}
