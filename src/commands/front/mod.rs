//! The people face's commands: args -> front call -> output. Each returns the exit code.

mod version;

use anyhow::Result;

use crate::cli::front::{Command, ContainerCommand};
use crate::front::{Exit, Globals};

/// Whether a failure of this command before its process runs exits 125, as Docker's
/// `run`, `create`, `start` and `exec` do; every other command exits 1.
pub(crate) fn fails_with_125(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Run(_)
            | Command::Create(_)
            | Command::Start(_)
            | Command::Exec(_)
            | Command::Monitor(_)
            | Command::Container(
                ContainerCommand::Run(_)
                    | ContainerCommand::Create(_)
                    | ContainerCommand::Start(_)
                    | ContainerCommand::Exec(_)
            )
    )
}

fn not_implemented(name: &str) -> anyhow::Error {
    Exit {
        code: 125,
        msg: format!("berth {name}: not implemented yet"),
    }
    .into()
}

/// Runs one command; `name` is the command as typed (`container ls`), for messages.
pub(crate) fn dispatch(g: &Globals, cmd: Command, name: &str) -> Result<i32> {
    if g.cgroup_manager == crate::front::CgroupManager::Systemd {
        anyhow::bail!("--cgroup-manager systemd: the systemd cgroup driver is not available");
    }
    match cmd {
        Command::Version(a) if a.format.is_none() => version::version(g),
        _ => Err(not_implemented(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cmd(s: &str) -> Command {
        crate::cli::front::FrontCli::try_parse_from(s.split(' '))
            .unwrap()
            .command
            .unwrap()
    }

    #[test]
    fn exit_classes() {
        assert!(fails_with_125(&cmd("berth container run x")));
        assert!(fails_with_125(&cmd("berth start x")));
        assert!(!fails_with_125(&cmd("berth ps")));
        assert!(!fails_with_125(&cmd("berth rm x")));
    }
}
