//! `build [-t NAME]... [-f FILE|-] [--build-arg K[=V]] [--target S] [--no-cache] [-q]
//! [--label K=V] [--iidfile F] [--network bridge|none|host|private|NET] [--squash]
//! CONTEXT|-`: Docker's classic builder on berth's runtime (`front::build`). CONTEXT is a
//! directory, or `-`: a Dockerfile, or a tar of the context (plain, gzip or zstd), on stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::front::BuildArgs;
use crate::front::build::{self, context::Ignore, Options};
use crate::front::digest::Digest;
use crate::front::Globals;

pub(crate) fn build(g: &Globals, a: &BuildArgs) -> Result<i32> {
    if g.rootless {
        // RUN steps' containers are made by this very process: it must have been executed
        // in berth's user namespace (as a foreground `run`).
        crate::front::userns::enter_and_reexec().context("build: rootless image storage")?;
    }
    if let Some(p) = &a.platform {
        let want = crate::front::registry::manifest::PlatformSpec::parse(p)
            .map_err(|e| anyhow!("--platform: {e:#}"))?;
        if want != crate::front::registry::manifest::PlatformSpec::host() {
            bail!("--platform {p}: only this machine's platform can be built");
        }
    }
    let network = build_network(g, a.network.as_deref())?;
    let pull = match a.pull.as_deref() {
        None => "missing",
        Some("always" | "true") => "always",
        Some("missing") => "missing",
        Some("never" | "false") => "never",
        Some(p) => bail!("--pull {p}: expected always, missing or never"),
    };
    let tags = a
        .tag
        .iter()
        .map(|t| super::tag::qualified_tag(t).map_err(|e| anyhow!("-t {e:#}")))
        .collect::<Result<Vec<_>>>()?;
    let mut build_args = Vec::new();
    for b in &a.build_arg {
        match b.split_once('=') {
            Some((k, v)) => build_args.push((k.to_string(), v.to_string())),
            // `--build-arg K`: the value of K in this environment, if it has one.
            None => {
                if let Ok(v) = std::env::var(b) {
                    build_args.push((b.clone(), v));
                }
            }
        }
    }
    let labels = a
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let store = super::image_store(g)?;
    // A tar context on stdin is unpacked into a staging area of the store (removed at
    // the end whatever happens).
    let staging = store.begin()?;
    let (dockerfile, name, context, ignore) = inputs(a, &staging)?;
    let o = Options {
        dockerfile,
        dockerfile_name: name,
        context,
        ignore,
        tags,
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache || !a.layers,
        quiet: a.quiet,
        labels,
        network,
        squash: a.squash,
    };
    let conf = super::pull::registries()?;
    let lookup = |q: &str| -> Result<Option<Digest>> {
        let local = super::find_image(&store, q)?.map(|(r, _)| r.id);
        if pull == "never" || (pull == "missing" && local.is_some()) {
            return Ok(local);
        }
        let client = super::pull::client_options(None, None);
        let opts = super::pull::pull_options(None)?;
        let out = if a.quiet {
            super::pull::Out::Quiet
        } else {
            super::pull::Out::Stdout
        };
        match super::pull::pull_image(&store, q, &conf, &client, &opts, out) {
            Ok(p) => Ok(Some(p.id)),
            Err(e) if local.is_some() => {
                crate::logging::warn(&format!("{e:#}: using the local image"));
                Ok(local)
            }
            Err(e) => Err(e),
        }
    };
    let id = build::build(g, &store, &o, &lookup)?;
    drop(staging);
    if let Some(f) = &a.iidfile {
        std::fs::write(f, id.to_string())
            .map_err(|e| anyhow!("--iidfile {f}: {}", crate::error::errno_text(&e)))?;
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(0)
}

/// RUN's network, as `--network` of `run` takes it. Docker's builder default is the
/// default bridge (outbound access), rootful; rootless, where bridges are not available
/// yet, it is `run`'s rootless default: a namespace of its own with only `lo`.
fn build_network(g: &Globals, n: Option<&str>) -> Result<Vec<String>> {
    let bridge = |n: &str| -> Result<Vec<String>> {
        if g.rootless {
            bail!("--network {n}: bridge networks need root (rootless networking is not available yet)");
        }
        let net = crate::front::network::Networks::new(&g.root)
            .get(n)
            .map_err(|e| anyhow!("--network: {e:#}"))?;
        Ok(vec![net.name])
    };
    match n {
        None | Some("default") if g.rootless => Ok(Vec::new()),
        None | Some("default") => bridge(crate::front::network::DEFAULT),
        Some(n @ ("none" | "host")) => Ok(vec![n.to_string()]),
        Some("private") => Ok(vec!["private".into()]),
        Some("") => bail!("--network: empty name"),
        Some(n) if n.starts_with("container:") => {
            bail!("--network {n}: builds cannot join a container's network")
        }
        Some(n) => bridge(n),
    }
}

type Inputs = (String, String, Option<PathBuf>, Option<Ignore>);

fn read_text(p: &Path, shown: &str) -> Result<String> {
    let b = std::fs::read(p).map_err(|e| anyhow!("{shown}: {}", crate::error::errno_text(&e)))?;
    String::from_utf8(b).map_err(|_| anyhow!("{shown}: not UTF-8 text"))
}

/// The Dockerfile (text and name as errors show it), the context directory, and its
/// `.dockerignore`.
fn inputs(a: &BuildArgs, staging: &crate::front::images::store::Staged) -> Result<Inputs> {
    if a.context.contains("://") || a.context.starts_with("git@") {
        bail!(
            "{}: remote build contexts are not supported: clone or download it first",
            a.context
        );
    }
    let stdin_df = a.file.as_deref() == Some("-");
    let context: Option<PathBuf> = if a.context == "-" {
        if stdin_df {
            bail!("-f -: the context is on stdin already");
        }
        let mut data = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("read stdin")?;
        if is_tar(&data) {
            let dir = staging.scratch("context");
            std::fs::create_dir_all(&dir)?;
            let opts = crate::front::images::unpack::Options {
                privilege: crate::front::images::unpack::Privilege::Root,
                ids: &Default::default(),
                lowers: &[],
            };
            crate::front::images::unpack::unpack(&data[..], &dir, None, &opts)
                .context("the context tar on stdin")?;
            Some(dir)
        } else {
            let text = String::from_utf8(data)
                .map_err(|_| anyhow!("stdin: the Dockerfile is not UTF-8 text"))?;
            return Ok((text, "Dockerfile".into(), None, None));
        }
    } else {
        let p = Path::new(&a.context);
        let abs = std::fs::canonicalize(p).map_err(|e| {
            anyhow!(
                "unable to prepare context: path {:?} not found: {}",
                a.context,
                crate::error::errno_text(&e)
            )
        })?;
        if !abs.is_dir() {
            bail!(
                "unable to prepare context: context must be a directory: {}",
                a.context
            );
        }
        Some(abs)
    };
    let ctx = context.clone().unwrap_or_default();
    let (text, name, df_path) =
        match a.file.as_deref() {
            Some("-") => {
                let mut s = String::new();
                std::io::stdin()
                    .lock()
                    .read_to_string(&mut s)
                    .context("read the Dockerfile from stdin")?;
                (s, "Dockerfile".to_string(), None)
            }
            Some(f) => {
                // Relative to the working directory, as Docker's -f (inside a stdin tar: to it).
                let p = if a.context == "-" {
                    ctx.join(f)
                } else {
                    PathBuf::from(f)
                };
                (read_text(&p, f)?, f.to_string(), Some(p))
            }
            None => {
                let found = ["Dockerfile", "Containerfile"]
                    .iter()
                    .map(|n| ctx.join(n))
                    .find(|p| p.is_file());
                let Some(p) = found else {
                    bail!(
                    "unable to prepare context: cannot find Dockerfile (or Containerfile) in {}",
                    if a.context == "-" { "the context on stdin" } else { a.context.as_str() }
                );
                };
                let n = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (read_text(&p, &n)?, n, Some(p))
            }
        };
    // `<Dockerfile>.dockerignore` beside it wins over the context's `.dockerignore`.
    let mut ignore_file = df_path
        .as_ref()
        .map(|p| PathBuf::from(format!("{}.dockerignore", p.display())))
        .filter(|p| p.is_file());
    if ignore_file.is_none() {
        ignore_file = Some(ctx.join(".dockerignore")).filter(|p| p.is_file());
    }
    let ignore = match ignore_file {
        Some(p) => Some(Ignore::parse(&read_text(&p, &p.display().to_string())?)),
        None => None,
    };
    Ok((text, name, context, ignore))
}

fn is_tar(data: &[u8]) -> bool {
    let Ok((_, mut plain)) = crate::front::images::compress::decompress(data) else {
        return false;
    };
    let mut b = [0u8; 512];
    plain.read_exact(&mut b).is_ok() && &b[257..262] == b"ustar"
}
