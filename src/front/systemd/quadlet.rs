//! Quadlet's `.container` files turned into units, for berth run as a systemd generator
//! (`berth-generator`): the [Container] keys people use become the same foreground
//! `berth run` a generated unit has (unit.rs); [Unit], [Service] and [Install] pass through
//! ([Service] after berth's own lines, so that the file's settings win).

use anyhow::{anyhow, bail, Result};

use super::unit::quote;

/// A unit file's sections, in order, each with its `key=value` lines.
pub(crate) type Sections = Vec<(String, Vec<(String, String)>)>;

/// systemd's unit syntax: `[Section]`, `key=value`, `#`/`;` comments, `\` continuations.
pub(crate) fn parse(text: &str) -> Result<Sections> {
    let mut out: Sections = Vec::new();
    let mut pending = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(l) = line.strip_suffix('\\') {
            pending.push_str(l);
            pending.push(' ');
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((s.to_string(), Vec::new()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("line {}: not key=value: {line:?}", n + 1);
        };
        let Some((_, kv)) = out.last_mut() else {
            bail!("line {}: {:?} outside a section", n + 1, k.trim());
        };
        kv.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// systemd's word splitting of a value (`"..."`, `'...'`, backslash escapes).
pub(crate) fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                let e = chars.next().ok_or_else(|| anyhow!("{s:?}: ends with \\"))?;
                cur.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    e => e,
                });
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("{s:?}: unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// A unit made from a `.container` file.
pub(crate) struct Generated {
    /// `NAME.service`.
    pub(crate) service: String,
    pub(crate) text: String,
    /// Targets whose `.wants` (or `.requires`) get a link to it: ("x.target", "wants").
    pub(crate) links: Vec<(String, &'static str)>,
}

/// `stem` is the file's name without `.container`; `source` its path; `berth` the binary.
pub(crate) fn generate(stem: &str, source: &str, text: &str, berth: &str) -> Result<Generated> {
    let sections = parse(text)?;
    let mut image = None;
    let mut rootfs = None;
    let mut name = format!("systemd-{stem}");
    let mut global: Vec<String> = Vec::new();
    let mut args: Vec<String> = Vec::new();
    let mut exec: Vec<String> = Vec::new();
    let mut notify = "monitor";
    let mut unit_lines = Vec::new();
    let mut service_lines = Vec::new();
    let mut install = Vec::new();
    for (section, kv) in &sections {
        for (k, v) in kv {
            match section.as_str() {
                "Unit" => unit_lines.push(format!("{k}={v}")),
                "Service" => service_lines.push(format!("{k}={v}")),
                "Install" => {
                    install.push(format!("{k}={v}"));
                }
                "Container" => {
                    let flag = |f: &str| -> Vec<String> { vec![f.to_string(), v.clone()] };
                    let each = |f: &str| -> Result<Vec<String>> {
                        Ok(words(v)?
                            .into_iter()
                            .flat_map(|w| [f.to_string(), w])
                            .collect())
                    };
                    match k.as_str() {
                        "Image" => image = Some(v.clone()),
                        "Rootfs" => rootfs = Some(v.clone()),
                        "ContainerName" => name = v.clone(),
                        "Exec" => exec = words(v)?,
                        "Environment" => args.extend(each("-e")?),
                        "EnvironmentFile" => args.extend(flag("--env-file")),
                        "PublishPort" => args.extend(flag("-p")),
                        "Volume" => args.extend(flag("-v")),
                        "Network" => args.extend(flag("--network")),
                        "Label" => args.extend(each("--label")?),
                        "User" => args.extend(flag("--user")),
                        "WorkingDir" => args.extend(flag("-w")),
                        "HealthCmd" => args.extend(flag("--health-cmd")),
                        "Notify" => {
                            notify = match v.as_str() {
                                "true" | "yes" | "1" => "container",
                                "false" | "no" | "0" => "monitor",
                                "healthy" => "healthy",
                                _ => bail!("[Container] Notify={v}: not true, false or healthy"),
                            }
                        }
                        "PodmanArgs" => args.extend(words(v)?),
                        "GlobalArgs" => global.extend(words(v)?),
                        _ => bail!("[Container] {k}: not a key berth knows"),
                    }
                }
                s => bail!("[{s}]: not a section of a .container file"),
            }
        }
    }
    let target = match (image, rootfs) {
        (Some(i), None) => i,
        (None, Some(r)) => {
            args.push("--rootfs".into());
            r
        }
        (None, None) => bail!("[Container] Image: missing"),
        (Some(_), Some(_)) => bail!("[Container] Image and Rootfs: only one of them"),
    };
    let mut start: Vec<String> = vec![berth.to_string()];
    start.extend(global.iter().cloned());
    start.push("run".into());
    for a in ["--name", &name, "--replace", "--rm"] {
        start.push(a.to_string());
    }
    start.push(format!("--sdnotify={notify}"));
    start.extend(args);
    start.push(target);
    start.extend(exec);
    let mut post: Vec<String> = vec![berth.to_string()];
    post.extend(global);
    for a in ["rm", "-f", "--ignore", &name] {
        post.push(a.to_string());
    }
    let line = |ws: &[String]| ws.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
    let mut text =
        format!("# Automatically generated by berth-generator\n[Unit]\nSourcePath={source}\n");
    for l in &unit_lines {
        text.push_str(l);
        text.push('\n');
    }
    text.push_str(&format!(
        "\n[Service]\n\
         Environment=BERTH_SYSTEMD_UNIT=%n\n\
         Type=notify\n\
         NotifyAccess=main\n\
         KillMode=mixed\n\
         Delegate=yes\n\
         TimeoutStopSec=70\n\
         SuccessExitStatus=143\n\
         SyslogIdentifier=%N\n\
         ExecStart={}\n\
         ExecStopPost=-{}\n",
        line(&start),
        line(&post)
    ));
    for l in &service_lines {
        text.push_str(l);
        text.push('\n');
    }
    let mut links = Vec::new();
    if !install.is_empty() {
        text.push_str("\n[Install]\n");
        for l in &install {
            text.push_str(l);
            text.push('\n');
            // A generator's units are not enabled: their [Install] links are ours to make.
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            let kind = match k {
                "WantedBy" => "wants",
                "RequiredBy" => "requires",
                _ => continue,
            };
            for t in words(v)? {
                links.push((t, kind));
            }
        }
    }
    Ok(Generated {
        service: format!("{stem}.service"),
        text,
        links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_file_becomes_a_notify_unit() {
        let g = generate(
            "web",
            "/etc/containers/systemd/web.container",
            "# a web server\n[Unit]\nDescription=web\n\n[Container]\nImage=docker.io/nginx\n\
             Environment=A=1 \"B=two words\"\nPublishPort=8080:80\nLabel=a=b\n\
             Exec=nginx -g \"daemon off;\"\nNotify=true\n\n[Service]\nRestart=always\n\n\
             [Install]\nWantedBy=multi-user.target default.target\n",
            "/usr/bin/berth",
        )
        .unwrap();
        assert_eq!(g.service, "web.service");
        let want = "ExecStart=/usr/bin/berth run --name systemd-web --replace --rm \
                    --sdnotify=container -e A=1 -e \"B=two words\" -p 8080:80 --label a=b \
                    docker.io/nginx nginx -g \"daemon off;\"";
        assert!(g.text.lines().any(|l| l == want), "{}", g.text);
        for l in [
            "Description=web",
            "Type=notify",
            "Restart=always",
            "ExecStopPost=-/usr/bin/berth rm -f --ignore systemd-web",
        ] {
            assert!(g.text.lines().any(|x| x == l), "{l:?} not in {}", g.text);
        }
        assert_eq!(
            g.links,
            vec![
                ("multi-user.target".to_string(), "wants"),
                ("default.target".to_string(), "wants")
            ]
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let e = |t: &str| generate("x", "x", t, "b").err().unwrap().to_string();
        assert!(e("[Container]\nExec=true\n").contains("Image: missing"));
        assert!(e("[Container]\nImage=a\nBogus=1\n").contains("Bogus: not a key"));
        assert!(e("Image=a\n").contains("outside a section"));
        assert!(e("[Container]\nImage=a\nExec=\"x\n").contains("unterminated"));
    }
}
