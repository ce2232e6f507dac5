//! process.rlimits. A limit above the current hard limit needs CAP_SYS_RESOURCE; the error
//! names the limit so the user knows which one to lower.

use nix::errno::Errno;

use crate::spec::plan::RlimitPlan;

#[derive(Debug, thiserror::Error)]
#[error("process.rlimits.{name}: setrlimit(soft {soft}, hard {hard}): {msg}")]
pub(crate) struct RlimitError {
    name: &'static str,
    soft: u64,
    hard: u64,
    msg: String,
}

pub(crate) fn apply(limits: &[RlimitPlan]) -> Result<(), RlimitError> {
    for r in limits {
        let ret = nix::sys::resource::setrlimit(r.resource, r.soft, r.hard);
        if let Err(e) = ret {
            let hint = if e == Errno::EPERM {
                let (_, cur_hard) = nix::sys::resource::getrlimit(r.resource).unwrap_or((0, 0));
                format!(
                    "{} (the hard limit is {cur_hard} and berth cannot raise it)",
                    crate::error::errno_desc(e)
                )
            } else {
                crate::error::errno_desc(e)
            };
            return Err(RlimitError {
                name: r.name,
                soft: r.soft,
                hard: r.hard,
                msg: hint,
            });
        }
    }
    Ok(())
}
