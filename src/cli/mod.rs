//! clap definitions only: the runc face (`Cli`, runc's globals before the subcommand) and
//! the people face (`front::FrontCli`).

pub(crate) mod front;
pub(crate) mod oci;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.1"),
    about = "berth: a daemonless OCI container runtime (runc-compatible)",
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
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
    pub(crate) command: oci::Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}
