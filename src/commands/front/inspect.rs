//! `inspect`: a JSON array in Docker's shape (`docker inspect` of a container), or one
//! `--format` template execution per object.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::cli::front::InspectArgs;
use crate::front::containers::{is_no_such, Container, Live, Store, ZERO_TIME};
use crate::front::format::Formatter;
use crate::front::images::ops;
use crate::front::{Exit, Globals};

pub(crate) fn inspect(g: &Globals, a: &InspectArgs, containers_only: bool) -> Result<i32> {
    let kind = match (containers_only, a.kind.as_deref()) {
        (true, _) => Kind::Container,
        (false, None) => Kind::Any,
        (false, Some("container")) => Kind::Container,
        (false, Some("image")) => Kind::Image,
        (false, Some("volume")) => Kind::Volume,
        (false, Some(t)) => bail!("--type {t}: expected container, image or volume"),
    };
    inspect_kind(g, a, kind)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Container,
    Image,
    /// A container by that name or id, else an image, else a volume (Docker's order).
    Any,
    Volume,
}

pub(crate) fn inspect_kind(g: &Globals, a: &InspectArgs, kind: Kind) -> Result<i32> {
    let store = Store::new(g);
    if kind == Kind::Volume {
        return super::volume::inspect(
            g,
            &crate::cli::front::NamesFormatArgs {
                format: a.format.clone(),
                names: a.names.clone(),
            },
        );
    }
    let images = if kind == Kind::Container {
        None
    } else {
        Some(super::image_store(g)?)
    };
    let mut objs = Vec::new();
    let mut failed = false;
    let sizes = super::ps::Sizes::new(g, &store);
    for q in &a.names {
        let container = if kind == Kind::Image {
            Err(crate::front::containers::no_such(q))
        } else {
            store.get_brief(q)
        };
        match container {
            Ok(c) => {
                let mut v = to_json(&store, &c);
                if a.size {
                    // `-s`: the sizes Docker adds, in bytes.
                    let (rw, root) = sizes.bytes(&c);
                    v["SizeRw"] = json!(rw);
                    v["SizeRootFs"] = json!(root);
                }
                objs.push(v);
            }
            Err(e) if is_no_such(&e) => {
                let image = match &images {
                    Some(s) => super::find_image(s, q).and_then(|f| match f {
                        Some((rec, _)) => ops::inspect(s, &rec).map(Some),
                        None => Ok(None),
                    }),
                    None => Ok(None),
                };
                let image = match image {
                    Ok(None) if kind == Kind::Any => {
                        Ok(super::volume::inspect_objects(g, std::slice::from_ref(q))
                            .0
                            .pop())
                    }
                    other => other,
                };
                match image {
                    Ok(Some(v)) => objs.push(v),
                    Ok(None) => {
                        failed = true;
                        let what = match kind {
                            Kind::Container => "container",
                            Kind::Image => "image",
                            Kind::Any | Kind::Volume => "object",
                        };
                        crate::logging::error(&format!("No such {what}: {q}"));
                    }
                    Err(e) => {
                        failed = true;
                        crate::logging::error(&format!("{e:#}"));
                    }
                }
            }
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    match &a.format {
        Some(f) => {
            let fmt = Formatter::new(Some(f), "")?;
            print!("{}", fmt.render(&objs, &json!({}))?);
        }
        None => {
            let text = crate::front::format::go_json_indent(&Value::Array(objs), "    ", true);
            println!("{text}");
        }
    }
    if failed {
        return Err(Exit {
            code: 1,
            msg: String::new(),
        }
        .into());
    }
    Ok(0)
}

/// The container's overlay directories (the merged one is mounted in its monitor's mount
/// namespace only, while it runs).
fn graph_driver(store: &Store, r: &crate::front::containers::Record) -> Value {
    if r.image_id.is_empty() {
        return json!({"Data": null, "Name": ""});
    }
    let o = crate::front::containers::OverlayDirs::of(store, &r.id);
    json!({
        "Data": {
            "MergedDir": o.merged,
            "UpperDir": o.upper,
            "WorkDir": o.work,
        },
        "Name": "overlay",
    })
}

fn time_or_zero(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

pub(crate) fn to_json(store: &Store, c: &Container) -> Value {
    let live = store.derive(c);
    let r = &c.rec;
    let h = &r.host_config;
    let s = &c.state;
    let active = live.is_active();
    let mut config = json!({
        "Hostname": r.config.hostname,
        "Domainname": r.config.domainname,
        "User": r.config.user,
        "AttachStdin": r.config.attach_stdin,
        "AttachStdout": r.config.attach_stdout,
        "AttachStderr": r.config.attach_stderr,
        "Tty": r.config.tty,
        "OpenStdin": r.config.open_stdin,
        "StdinOnce": r.config.stdin_once,
        "Env": r.config.env,
        "Cmd": r.config.cmd,
        "Image": r.config.image,
        "Volumes": null,
        "WorkingDir": r.config.working_dir,
        "Entrypoint": r.config.entrypoint,
        "OnBuild": null,
        "Labels": r.config.labels,
    });
    if !r.config.volumes.is_empty() {
        config["Volumes"] = json!(r.config.volumes);
    }
    if !r.config.exposed_ports.is_empty() {
        config["ExposedPorts"] = json!(r.config.exposed_ports);
    }
    if !r.config.stop_signal.is_empty() {
        config["StopSignal"] = json!(r.config.stop_signal);
    }
    if let Some(t) = r.config.stop_timeout {
        config["StopTimeout"] = json!(t);
    }
    let (binds, tmpfs, from) = crate::front::volumes::setup::inspect_host_config(r);
    if let Some(h) = &r.config.healthcheck {
        config["Healthcheck"] = json!(h);
    }
    let mut host_config = json!({
            "Binds": binds,
            "Tmpfs": tmpfs,
            "VolumesFrom": from,
            "ContainerIDFile": h.container_id_file,
            "LogConfig": {"Type": h.log_config.kind, "Config": h.log_config.config},
            "NetworkMode": h.network_mode,
            "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
            "AutoRemove": h.auto_remove,
            "CapAdd": h.cap_add,
            "CapDrop": h.cap_drop,
            "GroupAdd": h.group_add,
            "OomScoreAdj": h.oom_score_adj,
            "Privileged": h.privileged,
            "ReadonlyRootfs": h.readonly_rootfs,
            "SecurityOpt": h.security_opt,
            "ShmSize": h.shm_size,
            "Sysctls": h.sysctls,
            "Init": h.init,
            "Memory": h.memory,
            "MemoryReservation": h.memory_reservation,
            "MemorySwap": h.memory_swap,
            "NanoCpus": h.nano_cpus,
            "CpuShares": h.cpu_shares,
            "CpusetCpus": h.cpuset_cpus,
            "PidsLimit": h.pids_limit,
            "Ulimits": h.ulimits,
            "Devices": h.devices,
    });
    if let (Some(h), Value::Object(n)) = (
        host_config.as_object_mut(),
        crate::front::network::show::host_config(r),
    ) {
        h.extend(n);
    }
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": {
            "Status": live.word(),
            "Running": active,
            "Paused": live == Live::Paused,
            "Restarting": live == Live::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": false,
            "Pid": if active { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": time_or_zero(&s.started_at),
            "FinishedAt": time_or_zero(&s.finished_at),
        },
        "Image": if r.image_id.is_empty() { &r.image } else { &r.image_id },
        "ResolvConfPath": r.resolv_conf_path,
        "HostnamePath": r.hostname_path,
        "HostsPath": r.hosts_path,
        "LogPath": if h.log_config.kind == "none" { Value::from("") } else { json!(r.log_path) },
        "Name": format!("/{}", r.name),
        "RestartCount": s.restart_count,
        "Driver": if r.image_id.is_empty() { "" } else { "overlay" },
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": graph_driver(store, r),
        "Mounts": crate::front::volumes::setup::inspect_mounts(r),
        "Config": config,
        "NetworkSettings": crate::front::network::show::settings(store, r, active),
        "Rootfs": r.rootfs,
    });
    if let Some(h) = &s.health {
        v["State"]["Health"] = json!(h);
    }
    v
}
