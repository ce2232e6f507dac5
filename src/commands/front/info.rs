//! `info [--format]` in Docker's layout (the engine is this binary: its "server" half is
//! what this host and berth's stores hold), and `version --format` over Docker's
//! `{Client, Server}` shape.

use anyhow::Result;
use serde_json::{json, Value};

use crate::front::containers::{Live, Store};
use crate::front::format::Formatter;
use crate::front::{units, Globals};

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// `PRETTY_NAME` of os-release.
fn operating_system() -> String {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

/// Docker's `Info` object, with the fields berth has.
fn info_value(g: &Globals) -> Value {
    let store = Store::new(g);
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    let list = store.list();
    for c in &list {
        match store.derive(c) {
            Live::Running | Live::Starting => running += 1,
            Live::Paused => paused += 1,
            _ => stopped += 1,
        }
    }
    let images = super::image_store(g)
        .and_then(|s| s.images())
        .map_or(0, |v| v.len());
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut security = vec![json!("name=seccomp,profile=builtin")];
    if g.rootless {
        security.push(json!("name=rootless"));
    }
    let cgroup_driver = match g.cgroup_manager {
        crate::front::CgroupManager::Systemd => "systemd",
        _ => "cgroupfs",
    };
    json!({
        "ID": "",
        "Containers": list.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "overlay"], ["Supports d_type", "true"]],
        "LoggingDriver": "json-file",
        "CgroupDriver": cgroup_driver,
        "CgroupVersion": cgroup_version(),
        "DefaultRuntime": "berth-runc",
        "KernelVersion": field(|u| u.release()),
        "OperatingSystem": operating_system(),
        "OSType": "linux",
        "Architecture": field(|u| u.machine()),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": crate::front::stats::host_memory(),
        "Name": field(|u| u.nodename()),
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "DockerRootDir": g.root.to_string_lossy(),
        "RunRoot": g.runroot.to_string_lossy(),
        "Rootless": g.rootless,
        "SecurityOptions": security,
        "Debug": false,
    })
}

pub(crate) fn info(g: &Globals, format: Option<&str>) -> Result<i32> {
    let v = info_value(g);
    if let Some(f) = format {
        let fmt = Formatter::new(Some(f), "")?;
        print!("{}", fmt.render(&[v], &json!({}))?);
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        x => x.to_string(),
    };
    let mut o = String::new();
    o.push_str("Client:\n");
    o.push_str(&format!(" Version:    {}\n", env!("CARGO_PKG_VERSION")));
    o.push_str(" Context:    default\n Debug Mode: false\n\nServer:\n");
    o.push_str(&format!(" Containers: {}\n", s("Containers")));
    o.push_str(&format!("  Running: {}\n", s("ContainersRunning")));
    o.push_str(&format!("  Paused: {}\n", s("ContainersPaused")));
    o.push_str(&format!("  Stopped: {}\n", s("ContainersStopped")));
    o.push_str(&format!(" Images: {}\n", s("Images")));
    o.push_str(&format!(" Server Version: {}\n", s("ServerVersion")));
    o.push_str(" Storage Driver: overlay\n  Supports d_type: true\n");
    o.push_str(&format!(" Logging Driver: {}\n", s("LoggingDriver")));
    o.push_str(&format!(" Cgroup Driver: {}\n", s("CgroupDriver")));
    o.push_str(&format!(" Cgroup Version: {}\n", s("CgroupVersion")));
    o.push_str(" Runtimes: berth-runc\n Default Runtime: berth-runc\n");
    o.push_str(" Security Options:\n  seccomp\n   Profile: builtin\n");
    if g.rootless {
        o.push_str("  rootless\n");
    }
    o.push_str(&format!(" Kernel Version: {}\n", s("KernelVersion")));
    o.push_str(&format!(" Operating System: {}\n", s("OperatingSystem")));
    o.push_str(" OSType: linux\n");
    o.push_str(&format!(" Architecture: {}\n", s("Architecture")));
    o.push_str(&format!(" CPUs: {}\n", s("NCPU")));
    o.push_str(&format!(
        " Total Memory: {}\n",
        units::bytes_size(v["MemTotal"].as_u64().unwrap_or(0) as f64)
    ));
    o.push_str(&format!(" Name: {}\n", s("Name")));
    o.push_str(&format!(" Berth Root Dir: {}\n", s("DockerRootDir")));
    o.push_str(&format!(" Berth Run Root: {}\n", s("RunRoot")));
    o.push_str(&format!(" Rootless: {}\n", g.rootless));
    o.push_str(" Debug Mode: false\n");
    print!("{o}");
    Ok(0)
}

/// `version --format`: Docker's `{Client, Server}` object (the server is this binary).
pub(crate) fn version_format(g: &Globals, format: &str) -> Result<i32> {
    let part = |extra: Value| {
        let mut v = json!({
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": "1.43",
            "GoVersion": "",
            "GitCommit": option_env!("BERTH_COMMIT").unwrap_or(""),
            "Os": "linux",
            "Arch": arch(),
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    };
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = json!({
        "Client": part(json!({"Platform": {"Name": "berth"}, "Context": "default"})),
        "Server": part(json!({
            "Platform": {"Name": "berth"},
            "KernelVersion": kernel,
            "MinAPIVersion": "1.12",
            "Rootless": g.rootless,
            "Components": [{"Name": "berth-runc", "Version": env!("CARGO_PKG_VERSION"),
                            "Details": {"GitCommit": ""}}],
        })),
    });
    let fmt = Formatter::new(Some(format), "")?;
    print!("{}", fmt.render(&[v], &json!({}))?);
    Ok(0)
}
