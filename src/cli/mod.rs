//! clap definitions only: the runc face (`Cli`, runc's globals before the subcommand) and
//! the people face (`front::FrontCli`).

pub(crate) mod front;
pub(crate) mod oci;

use clap::{CommandFactory, Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "Open Container Initiative runtime",
    before_help = "berth's runc face: runc's commands, flags and phrases, for the tools that\nexecute OCI bundles (podman/conmon, containerd's shim) and for people used to runc.",
    disable_version_flag = true
)]
pub(crate) struct Cli {
    /// print the version
    #[arg(short = 'v', long = "version")]
    pub(crate) version: bool,
    /// root directory for storage of container state (this should be located in tmpfs)
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<String>,
    /// set the log file to write berth logs to (default is stderr)
    #[arg(long, value_name = "FILE")]
    pub(crate) log: Option<String>,
    /// set the log format
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// enable debug logging
    #[arg(long)]
    pub(crate) debug: bool,
    /// enable systemd cgroup support
    #[arg(long = "systemd-cgroup")]
    pub(crate) systemd_cgroup: bool,
    /// ignore cgroup permission errors ("true", "false", or "auto")
    #[arg(long, value_name = "VALUE", num_args = 0..=1, default_missing_value = "true",
          value_parser = ["true", "false", "auto"])]
    pub(crate) rootless: Option<String>,
    /// accepted for runc compatibility (criu is not used)
    #[arg(long, hide = true)]
    pub(crate) criu: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Option<oci::Command>,
}

impl Cli {
    /// The runc face's command as `bin` (how berth was invoked), with runc's help layout
    /// (urfave/cli): "NAME:" then "   <bin> [<command>] - <about>", which tools and runc's
    /// own tests read.
    pub(crate) fn oci_command(bin: &str) -> clap::Command {
        let top = format!(
            "NAME:\n   {bin} - {{about}}\n\n{{before-help}}USAGE:\n   {bin} [global options] \
             command [command options] [arguments...]\n\nCOMMANDS:\n{{subcommands}}\n\n\
             GLOBAL OPTIONS:\n{{options}}\n"
        );
        Cli::command()
            .bin_name(bin)
            .help_template(top)
            .mut_subcommands(|s| {
                let t = format!(
                    "NAME:\n   {bin} {} - {{about}}\n\nUSAGE:\n   {{usage}}\n\nOPTIONS:\n{{options}}\n",
                    s.get_name()
                );
                s.help_template(t)
            })
    }

    /// `-v`/`--version` as runc prints it (`runc version X`, `commit:`, `spec:`), under
    /// the name berth was invoked as.
    pub(crate) fn version_text(bin: &str) -> String {
        format!(
            "{bin} version {}\ncommit: {}\nspec: 1.2.1\n",
            env!("CARGO_PKG_VERSION"),
            option_env!("BERTH_COMMIT").unwrap_or("unknown")
        )
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}
