//! process.rlimits. A limit above the current hard limit needs CAP_SYS_RESOURCE; the error
//! names the limit so the user knows which one to lower.

use nix::errno::Errno;
use nix::sys::resource::Resource;
use oci_spec::runtime::PosixRlimit;

#[derive(Debug, thiserror::Error)]
#[error("process.rlimits.{name}: setrlimit(soft {soft}, hard {hard}): {msg}")]
pub(crate) struct RlimitError {
    name: String,
    soft: u64,
    hard: u64,
    msg: String,
}

pub(crate) fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

pub(crate) fn name(r: &PosixRlimit) -> String {
    serde_json::to_value(r.typ())
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{:?}", r.typ()))
}

pub(crate) fn apply(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for r in limits {
        let name = name(r);
        let err = |msg: String| RlimitError {
            name: name.clone(),
            soft: r.soft(),
            hard: r.hard(),
            msg,
        };
        let res = resource(&name).ok_or_else(|| err("unknown rlimit".into()))?;
        let ret = nix::sys::resource::setrlimit(res, r.soft(), r.hard());
        if let Err(e) = ret {
            let hint = if e == Errno::EPERM {
                let (_, cur_hard) = nix::sys::resource::getrlimit(res).unwrap_or((0, 0));
                format!(
                    "{} (the hard limit is {cur_hard} and berth cannot raise it)",
                    crate::error::errno_desc(e)
                )
            } else {
                crate::error::errno_desc(e)
            };
            return Err(err(hint));
        }
    }
    Ok(())
}
