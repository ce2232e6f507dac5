//! `run`: create, then start in one of three ways: detached (`-d`: a monitor of its own,
//! the id printed), attached to a terminal (`-it` at a terminal: a monitor of its own and
//! this command attached to it, so Ctrl-P Ctrl-Q can leave it running), or in the
//! foreground (this process is the monitor: what a systemd unit's ExecStart wants).

use std::os::fd::AsFd;

use anyhow::{anyhow, bail, Result};

use crate::cli::front::RunArgs;
use crate::front::containers::{create, lifecycle, Store};
use crate::front::monitor::{self, client, Foreground};
use crate::front::systemd::notify::Mode;
use crate::front::Globals;

pub(crate) fn run(g: &Globals, a: &RunArgs) -> Result<i32> {
    if !a.detach {
        // This process may become the container's parent (see exeseal): the early seal
        // left it to the parse when the command line looked detached. As the early seal
        // (lib.rs), best effort.
        let _ = crate::exeseal::ensure_sealed();
    }
    if g.rootless && (!a.rootfs || crate::front::network::args::asks_network(a)) {
        // The container may be created by this very process (foreground): it must have
        // been executed in berth's user namespace (on a user network: the one that owns
        // the network namespace its containers share).
        if let Some(n) = crate::front::network::args::user_network(a) {
            if !nix::unistd::geteuid().is_root() {
                crate::front::network::enter_shared_netns(&Store::new(g), &n)?;
                crate::front::userns::reexec()?;
            }
        }
        crate::front::userns::enter_and_reexec()?;
    }
    // What parsing touched of the binary is given back by the monitor, before the
    // runtime's part (see sys::residency): once for the two.
    let store = Store::new(g);
    let _settle = crate::front::network::settle_on_drop(
        &store,
        g.rootless && crate::front::network::args::user_network(a).is_some(),
    );
    let stdin_tty = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
    if a.tty && a.interactive && !a.detach && !stdin_tty {
        bail!("cannot attach stdin to a TTY-enabled container because stdin is not a terminal");
    }
    let sdnotify = crate::front::systemd::notify::parse_mode(a.sdnotify.as_deref())?;
    if a.detach && !matches!(sdnotify, Mode::Default | Mode::Ignore) {
        bail!("--sdnotify: a detached container does not notify systemd (run it without -d)");
    }
    let detach_keys = client::parse_detach_keys(a.detach_keys.as_deref())?;
    let streams = super::attach_streams(&a.attach, a.interactive)?;
    let src = source(g, a)?;
    crate::timeline::mark("people:image");
    let hc = crate::front::monitor::health::from_flags(a, src.config.healthcheck.as_ref())?;
    crate::front::systemd::notify::check_healthy(
        sdnotify,
        crate::front::monitor::health::active(hc.as_ref()),
    )?;
    let rec = create::create(&store, a, g.rootless, src)?;
    let id = rec.id.clone();
    crate::timeline::mark("people:create");
    crate::testpoint::hit("people:created");
    let cleanup_on_error = |e: anyhow::Error| -> anyhow::Error {
        if a.rm {
            if let Ok(c) = store.load(&id) {
                let _ = store.remove_files(&c.rec);
                crate::front::volumes::setup::remove_anonymous(&store, &c.rec);
            }
        }
        e
    };
    if a.detach {
        monitor::spawn(&store, &id, crate::front::containers::log_level(), None)
            .map_err(cleanup_on_error)?;
        crate::testpoint::hit("people:started");
        println!("{id}");
        return Ok(0);
    }
    if stdin_tty && (a.tty || a.interactive) {
        let opts = client::Options {
            stdin: streams[0],
            stdout: streams[1],
            stderr: streams[2],
            tty: a.tty,
            detach_keys,
            sig_proxy: a.sig_proxy,
        };
        return lifecycle::start_attached(&store, &id, &opts).map_err(cleanup_on_error);
    }
    let code = monitor::run_foreground(
        &store,
        &id,
        Foreground {
            stdin: streams[0],
            stdout: streams[1],
            stderr: streams[2],
            sig_proxy: a.sig_proxy,
            sdnotify,
        },
    )
    .map_err(cleanup_on_error)?;
    crate::front::systemd::notify::die_like_the_container(code);
    Ok(code)
}

/// What `IMAGE` names: `--rootfs DIR`, or an image of the store, pulled first when
/// missing (`--pull missing`, the default, as Docker: `Unable to find image ... locally`
/// then the pull on stderr), always (`--pull always`), never (`--pull never`), or when
/// the registry has a newer one (`--pull newer`: the local image if the registry cannot
/// be reached).
pub(crate) fn source(g: &Globals, a: &RunArgs) -> Result<create::Source> {
    if a.rootfs {
        return create::rootfs_source(a);
    }
    super::unpack_allowed(g, &a.image)?;
    let policy = a.pull.as_deref().unwrap_or("missing");
    let images = super::image_store(g)?;
    let opts = super::pull::pull_options(a.platform.as_deref())?;
    let local = match super::find_image(&images, &a.image)? {
        // An image of another platform than the one asked for is not the one wanted.
        Some((rec, _)) if a.platform.is_some() => {
            let (cfg, _) = images.config(&rec.id)?;
            (cfg.os == opts.platform.os && cfg.architecture == opts.platform.architecture)
                .then_some(rec)
        }
        found => found.map(|(rec, _)| rec),
    };
    let rec = match (policy, local) {
        ("missing", Some(rec)) => rec,
        ("never", Some(rec)) => rec,
        ("never", None) => bail!("{}: image not known (--pull never)", a.image),
        (_, local) => {
            let r = crate::front::reference::Reference::parse(&a.image)
                .map_err(|e| anyhow!("{}: {e}", a.image))?;
            if local.is_none() && policy == "missing" {
                eprintln!("Unable to find image '{}' locally", r.familiar());
            }
            let conf = super::pull::registries()?;
            let client = super::pull::client_options(None, None);
            let _extend = crate::front::systemd::notify::ExtendTimeout::start(
                crate::front::systemd::notify::parse_mode(a.sdnotify.as_deref())?,
                a.detach,
                std::time::Duration::from_secs(20),
            );
            match super::pull::pull_image(
                &images,
                &a.image,
                &conf,
                &client,
                &opts,
                super::pull::Out::Stderr,
            ) {
                Ok(p) => {
                    super::pull::pulled_event(g, &p.reference.to_string());
                    images
                        .image(&p.id)?
                        .ok_or_else(|| anyhow!("{}: pulled, then removed meanwhile", a.image))?
                }
                Err(e) => match local {
                    Some(rec) if policy == "newer" => {
                        crate::logging::warn(&format!("{e:#}: using the local image"));
                        rec
                    }
                    _ => return Err(e),
                },
            }
        }
    };
    create::image_source(&images, &rec, &a.image)
}
