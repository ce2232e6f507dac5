//! The people face: Docker's commands, flags and help, with Podman's globals and the
//! additions Podman users rely on. Definitions only: src/commands/front/ runs them.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A daemonless container engine: Docker's commands, no daemon",
    disable_version_flag = true,
    disable_help_subcommand = true,
    after_help = "The runc-compatible OCI runtime face answers as `berth-runc COMMAND` (a link to \
                  berth) and as `berth oci COMMAND`; see `berth oci --help`."
)]
pub(crate) struct FrontCli {
    #[command(flatten)]
    pub(crate) top: FrontTop,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

// The top level's own flags (global ones included), apart so that a command line can be
// parsed against them and the one subcommand it names (see `hot_command`). A plain
// comment: a doc comment here would become the top level's about text.
#[derive(Args, Debug)]
pub(crate) struct FrontTop {
    /// Storage root directory (images, containers, volumes)
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) root: Option<String>,
    /// Runtime state directory (running containers, monitors, sockets)
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) runroot: Option<String>,
    /// Log messages at or above this level (debug, info, warn, error, fatal, panic)
    #[arg(long = "log-level", value_name = "LEVEL", default_value = "warn", global = true,
          value_parser = ["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic"])]
    pub(crate) log_level: String,
    /// Cgroup manager to use (cgroupfs or systemd)
    #[arg(long = "cgroup-manager", value_name = "MANAGER", global = true,
          value_parser = ["cgroupfs", "systemd"])]
    pub(crate) cgroup_manager: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub(crate) version: bool,
}

/// The definition of the top level with only the subcommand `args` names, for the
/// commands run most often (a container's start pays for every parse: the CLI's, the
/// monitor's): the whole tree of every command and flag costs more to build than the
/// parse itself. None when the command line names another command or anything the
/// pre-scan does not know. Matches from it give the same `FrontCli` as the whole tree's;
/// an error (or --help) from it is not for the user: the caller parses again with the
/// whole tree, whose words, usage lines and help are the ones users see.
pub(crate) fn hot_command(args: &[std::ffi::OsString]) -> Option<clap::Command> {
    use clap::Command as C;
    let mut it = args.iter().skip(1);
    let name = loop {
        let a = it.next()?.to_str()?;
        match a {
            "--root" | "--runroot" | "--log-level" | "--cgroup-manager" => {
                it.next()?;
            }
            _ if a.starts_with("--") && a.contains('=') => {}
            _ => break a,
        }
    };
    let sub = match name {
        // As the variants' attributes say (those that change parsing; help and usage
        // come from the whole tree).
        "run" => RunArgs::augment_args(C::new("run").disable_help_flag(true)),
        "create" => RunArgs::augment_args(C::new("create").disable_help_flag(true)),
        "exec" => ExecArgs::augment_args(C::new("exec")),
        "monitor" => MonitorArgs::augment_args(C::new("monitor")),
        "start" => StartArgs::augment_args(C::new("start")),
        "ps" => PsArgs::augment_args(C::new("ps")),
        "rm" => RmArgs::augment_args(C::new("rm")),
        "stop" => StopArgs::augment_args(C::new("stop")),
        "kill" => KillArgs::augment_args(C::new("kill")),
        "logs" => LogsArgs::augment_args(C::new("logs")),
        "inspect" => InspectArgs::augment_args(C::new("inspect")),
        "wait" => ContainersArgs::augment_args(C::new("wait")),
        "stats" => StatsArgs::augment_args(C::new("stats")),
        _ => return None,
    };
    Some(
        FrontTop::augment_args(
            C::new("berth")
                .disable_version_flag(true)
                .disable_help_subcommand(true),
        )
        .subcommand(sub),
    )
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    // Common commands, in the order `docker --help` lists them.
    /// Create and run a new container from an image
    #[command(
        disable_help_flag = true,
        override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
    )]
    Run(Box<RunArgs>),
    /// Execute a command in a running container
    #[command(override_usage = "berth exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// List containers
    #[command(visible_alias = "ls")]
    Ps(PsArgs),
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Show the berth version information
    Version(FormatOnly),
    /// Display system-wide information
    Info(FormatOnly),

    // Management commands.
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Generate structured data (systemd units)
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Run a container's healthcheck
    #[command(subcommand)]
    Healthcheck(HealthcheckCommand),

    // Swarm-less Docker's remaining top-level commands.
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    #[command(
        disable_help_flag = true,
        override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]"
    )]
    Create(Box<RunArgs>),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Get real time events from berth
    Events(EventsArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Return low-level information on berth objects
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(Box<UpdateArgs>),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),

    /// The per-container monitor (started by berth itself)
    #[command(hide = true)]
    Monitor(MonitorArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new container
    #[command(
        disable_help_flag = true,
        override_usage = "berth container create [OPTIONS] IMAGE [COMMAND] [ARG...]"
    )]
    Create(Box<RunArgs>),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(ContainerArg),
    /// Execute a command in a running container
    #[command(override_usage = "berth container exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
    Exec(ExecArgs),
    /// Check if a container exists (exit 0 if it does, 1 if not)
    Exists(ContainerArg),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Display detailed information on one or more containers
    Inspect(InspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Create and run a new container from an image
    #[command(
        disable_help_flag = true,
        override_usage = "berth container run [OPTIONS] IMAGE [COMMAND] [ARG...]"
    )]
    Run(Box<RunArgs>),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(Box<UpdateArgs>),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(Box<BuildArgs>),
    /// Check if an image exists in local storage (exit 0 if it does, 1 if not)
    Exists(ImageArg),
    /// Show the history of an image
    History(HistoryArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Mount an image's root filesystem and print where
    Mount(ImageMountArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Unmount an image's root filesystem
    #[command(visible_alias = "umount")]
    Unmount(ImageMountArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// Check if a volume exists (exit 0 if it does, 1 if not)
    Exists(NameArg),
    /// Display detailed information on one or more volumes
    Inspect(NamesFormatArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Create a network
    Create(NetworkCreateArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Check if a network exists (exit 0 if it does, 1 if not)
    Exists(NameArg),
    /// Display detailed information on one or more networks
    Inspect(NamesFormatArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum SystemCommand {
    /// Show berth disk usage
    Df(SystemDfArgs),
    /// Get real time events from berth
    Events(EventsArgs),
    /// Display system-wide information
    Info(FormatOnly),
    /// Remove unused data
    Prune(SystemPruneArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum GenerateCommand {
    /// Generate a systemd unit for a container
    Systemd(GenerateSystemdArgs),
}

#[derive(Subcommand, Debug)]
pub(crate) enum HealthcheckCommand {
    /// Run a container's healthcheck now
    Run(ContainerArg),
}

/// `run` and `create`: Docker's flags, plus Podman's `--rootfs`, `--replace` and `--sdnotify`.
#[derive(Args, Debug, Default)]
pub(crate) struct RunArgs {
    /// Print help (`-h` is --hostname, as Docker's)
    #[arg(long, action = clap::ArgAction::Help)]
    pub(crate) help: Option<bool>,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Automatically remove the container and its anonymous volumes when it exits
    #[arg(long)]
    pub(crate) rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub(crate) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub(crate) entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub(crate) hostname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub(crate) labels: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub(crate) label_file: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub(crate) init: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub(crate) memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub(crate) memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub(crate) cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub(crate) cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub(crate) cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub(crate) ulimit: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub(crate) cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub(crate) security_opt: Vec<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub(crate) device: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub(crate) shm_size: Option<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub(crate) sysctl: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub(crate) group_add: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub(crate) oom_score_adj: Option<i32>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub(crate) stop_timeout: Option<i64>,
    /// Logging driver for the container (json-file, k8s-file, journald, none)
    #[arg(long = "log-driver", value_name = "string")]
    pub(crate) log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub(crate) log_opt: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value = "true",
          num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub(crate) attach: Vec<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "string")]
    pub(crate) cidfile: Option<String>,
    /// The first argument is not an image but the root filesystem of an exploded container
    #[arg(long)]
    pub(crate) rootfs: bool,
    /// If a container with the same name exists, replace it
    #[arg(long)]
    pub(crate) replace: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", value_parser = ["always", "missing", "never", "newer"])]
    pub(crate) pull: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Connect a container to a network
    #[arg(long = "network", visible_alias = "net", value_name = "network")]
    pub(crate) network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "list")]
    pub(crate) network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub(crate) ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub(crate) ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub(crate) mac_address: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub(crate) add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub(crate) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub(crate) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", visible_alias = "dns-opt", value_name = "list")]
    pub(crate) dns_option: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub(crate) link: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub(crate) expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub(crate) volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub(crate) mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub(crate) tmpfs: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub(crate) volumes_from: Vec<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long, value_name = "string")]
    pub(crate) restart: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd", value_name = "string")]
    pub(crate) health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval", value_name = "duration")]
    pub(crate) health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub(crate) health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", value_name = "int")]
    pub(crate) health_retries: Option<i64>,
    /// Start period for the container to initialize before starting health-retries countdown
    #[arg(long = "health-start-period", value_name = "duration")]
    pub(crate) health_start_period: Option<String>,
    /// Time between running the check during the start period
    #[arg(long = "health-start-interval", value_name = "duration")]
    pub(crate) health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub(crate) no_healthcheck: bool,
    /// How to tell systemd the container is ready (container, monitor, healthy, ignore)
    #[arg(long, value_name = "string", value_parser = ["container", "conmon", "monitor", "healthy", "ignore"])]
    pub(crate) sdnotify: Option<String>,
    /// Pass a number of additional file descriptors into the container
    #[arg(long = "preserve-fds", value_name = "uint", default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    /// The image (with --rootfs: the root filesystem's directory)
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) image: String,
    /// The command to run and its arguments (default: the image's)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub(crate) workdir: Option<String>,
    /// Pass a number of additional file descriptors into the process
    #[arg(long = "preserve-fds", value_name = "uint", default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', 'TEMPLATE')
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub(crate) last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub(crate) latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub(crate) size: bool,
}

#[derive(Args, Debug)]
pub(crate) struct BuildArgs {
    /// Name and optionally a tag in the 'name:tag' format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub(crate) tag: Vec<String>,
    /// Name of the Dockerfile (default: 'PATH/Dockerfile')
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub(crate) file: Option<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub(crate) build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long, value_name = "string")]
    pub(crate) target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long, num_args = 0..=1, default_missing_value = "always", value_name = "policy")]
    pub(crate) pull: Option<String>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    pub(crate) iidfile: Option<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "string")]
    pub(crate) network: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Squash newly built layers into a single new layer
    #[arg(long)]
    pub(crate) squash: bool,
    /// Cache intermediate layers during build
    #[arg(long, value_name = "bool", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) layers: bool,
    /// The build context: a directory, or '-' for a Dockerfile or a tar on STDIN
    #[arg(value_name = "PATH | URL | -")]
    pub(crate) context: String,
}

#[derive(Args, Debug)]
pub(crate) struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Require HTTPS and verify certificates when contacting registries
    #[arg(long = "tls-verify", value_name = "bool", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) tls_verify: Option<bool>,
    /// Path of the authentication file
    #[arg(long = "authfile", value_name = "string")]
    pub(crate) authfile: Option<String>,
    /// Use certificates at path (*.crt, *.cert, *.key) to connect to the registry
    #[arg(long = "cert-dir", value_name = "path")]
    pub(crate) cert_dir: Option<std::path::PathBuf>,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub(crate) image: String,
}

#[derive(Args, Debug)]
pub(crate) struct PushArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Require HTTPS and verify certificates when contacting registries
    #[arg(long = "tls-verify", value_name = "bool", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) tls_verify: Option<bool>,
    /// Path of the authentication file
    #[arg(long = "authfile", value_name = "string")]
    pub(crate) authfile: Option<String>,
    /// Use certificates at path (*.crt, *.cert, *.key) to connect to the registry
    #[arg(long = "cert-dir", value_name = "path")]
    pub(crate) cert_dir: Option<std::path::PathBuf>,
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) image: String,
    /// Where to push, when not the image's own name
    #[arg(value_name = "DESTINATION")]
    pub(crate) destination: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Show digests
    #[arg(long)]
    pub(crate) digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) reference: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LoginArgs {
    /// Username
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) username: Option<String>,
    /// Password
    #[arg(short = 'p', long, value_name = "string")]
    pub(crate) password: Option<String>,
    /// Take the password from stdin
    #[arg(long = "password-stdin")]
    pub(crate) password_stdin: bool,
    /// Require HTTPS and verify certificates when contacting registries
    #[arg(long = "tls-verify", value_name = "bool", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) tls_verify: Option<bool>,
    /// Path of the authentication file
    #[arg(long = "authfile", value_name = "string")]
    pub(crate) authfile: Option<String>,
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LogoutArgs {
    /// Remove the credentials of every registry
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Path of the authentication file
    #[arg(long = "authfile", value_name = "string")]
    pub(crate) authfile: Option<String>,
    #[arg(value_name = "SERVER")]
    pub(crate) server: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct FormatOnly {
    /// Format the output using the given Go template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long, value_name = "string")]
    pub(crate) author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long, value_name = "string")]
    pub(crate) message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, value_name = "bool", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) image: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "SRC_PATH")]
    pub(crate) source: String,
    #[arg(value_name = "DEST_PATH")]
    pub(crate) destination: String,
}

#[derive(Args, Debug)]
pub(crate) struct ContainerArg {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct ImageArg {
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
}

#[derive(Args, Debug)]
pub(crate) struct NameArg {
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

#[derive(Args, Debug)]
pub(crate) struct ContainersArgs {
    /// Every container
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format the output using the given Go template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub(crate) since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub(crate) until: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub(crate) output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, value_name = "bool", default_value = "true", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
}

#[derive(Args, Debug)]
pub(crate) struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub(crate) message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub(crate) source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) reference: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    /// Return JSON for specified type (container, image, volume, network)
    #[arg(long = "type", value_name = "string")]
    pub(crate) kind: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string", default_value = "KILL")]
    pub(crate) signal: String,
    /// Every running container
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Read the container ID from a file
    #[arg(long, value_name = "string")]
    pub(crate) cidfile: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub(crate) input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

#[derive(Args, Debug)]
pub(crate) struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub(crate) details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub(crate) since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub(crate) tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub(crate) timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub(crate) until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub(crate) port: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(value_name = "NEW_NAME")]
    pub(crate) new_name: String,
}

#[derive(Args, Debug)]
pub(crate) struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub(crate) signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub(crate) time: Option<i64>,
    /// Every running container
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Ignore errors when a specified container is missing
    #[arg(short = 'i', long)]
    pub(crate) ignore: bool,
    /// Read the container ID from a file
    #[arg(long, value_name = "string")]
    pub(crate) cidfile: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub(crate) volumes: bool,
    /// Every container
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Ignore errors when a specified container is missing
    #[arg(short = 'i', long)]
    pub(crate) ignore: bool,
    /// Seconds to wait for stop before killing the container
    #[arg(
        short = 't',
        long = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub(crate) time: Option<i64>,
    /// Read the container ID from a file
    #[arg(long, value_name = "string")]
    pub(crate) cidfile: Vec<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
    /// Every image
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub(crate) output: Option<String>,
    /// Archive format: docker-archive (default) or oci-archive
    #[arg(long, value_name = "string", default_value = "docker-archive",
          value_parser = ["docker-archive", "oci-archive"])]
    pub(crate) format: String,
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub(crate) attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Start every container (with --filter, those that match)
    #[arg(long)]
    pub(crate) all: bool,
    /// Filter the containers --all starts
    #[arg(long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", value_name = "bool", num_args = 0..=1,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub(crate) sig_proxy: Option<bool>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub(crate) no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub(crate) source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]", required = true)]
    pub(crate) targets: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(
        value_name = "ps OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub(crate) blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub(crate) cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub(crate) cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub(crate) cpu_shares: Option<u64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub(crate) cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub(crate) cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub(crate) cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub(crate) memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub(crate) memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub(crate) restart: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PruneArgs {
    /// Remove all unused objects, not just dangling ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>=<value>")
    #[arg(long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ImageMountArgs {
    #[arg(value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct VolumeCreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub(crate) driver: String,
    /// Set metadata for a volume
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", value_name = "string")]
    pub(crate) name_flag: Option<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Do not fail if the volume already exists
    #[arg(long)]
    pub(crate) ignore: bool,
    #[arg(value_name = "VOLUME")]
    pub(crate) name: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct NamesFormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(value_name = "NAME", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ListArgs {
    /// Provide filter values
    #[arg(short = 'f', long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Only display names or IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
}

#[derive(Args, Debug)]
pub(crate) struct VolumeRmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings")]
    pub(crate) alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "string")]
    pub(crate) ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "string")]
    pub(crate) ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub(crate) link: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub(crate) network: String,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "NETWORK")]
    pub(crate) network: String,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub(crate) driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings")]
    pub(crate) subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings")]
    pub(crate) gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings")]
    pub(crate) ip_range: Vec<String>,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub(crate) ipv6: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub(crate) internal: bool,
    /// Set metadata on a network
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Do not fail if the network already exists
    #[arg(long)]
    pub(crate) ignore: bool,
    #[arg(value_name = "NETWORK")]
    pub(crate) name: String,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct SystemDfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long, value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub(crate) volumes: bool,
}

#[derive(Args, Debug)]
pub(crate) struct GenerateSystemdArgs {
    /// Create a new container when the unit starts and remove it when it stops
    #[arg(long)]
    pub(crate) new: bool,
    /// Use container names instead of IDs in the unit
    #[arg(short = 'n', long)]
    pub(crate) name: bool,
    /// Write the unit to a file in the current directory instead of STDOUT
    #[arg(short = 'f', long)]
    pub(crate) files: bool,
    /// Systemd restart policy
    #[arg(long = "restart-policy", value_name = "string")]
    pub(crate) restart_policy: Option<String>,
    /// Stop timeout override
    #[arg(short = 't', long, value_name = "uint")]
    pub(crate) time: Option<u64>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

/// The hidden monitor: started by `run -d`/`start`, never by people.
#[derive(Args, Debug)]
pub(crate) struct MonitorArgs {
    /// The container's full id
    pub(crate) id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(s: &str) -> FrontCli {
        FrontCli::try_parse_from(s.split(' ')).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn definitions_are_consistent() {
        FrontCli::command().debug_assert();
    }

    #[test]
    fn the_hot_commands_parse_as_the_whole_tree_does() {
        use clap::FromArgMatches;
        let hot = |s: &str| -> Option<String> {
            let args: Vec<std::ffi::OsString> = s.split(' ').map(Into::into).collect();
            let m = hot_command(&args)?.try_get_matches_from(args).ok()?;
            Some(format!("{:?}", FrontCli::from_arg_matches(&m).ok()?))
        };
        for s in [
            "berth run --rm --network none img true",
            "berth --root /r --runroot /rr run -d -e A=1 --name x img sleep 1000",
            "berth run --root /r img",
            "berth --log-level=debug run -it --rm -m 64m img sh -c true",
            "berth create --cgroup-manager systemd img",
            "berth exec -it c1 sh -c true",
            "berth --root /r monitor abc",
            "berth start -a c1",
            "berth ps -a -q --no-trunc --filter name=x",
            "berth rm -f -v c1 c2",
            "berth stop -t 3 c1",
            "berth kill -s HUP c1",
            "berth logs -f --tail 5 c1",
            "berth inspect --format {{.Id}} c1",
            "berth wait c1 c2",
            "berth stats --no-stream",
            "berth --root /r stats -a --no-trunc --format {{.Name}} c1 c2",
        ] {
            let whole = format!("{:?}", parse(s));
            assert_eq!(hot(s).as_deref(), Some(whole.as_str()), "{s}");
        }
        // Not a hot command, or a shape the pre-scan does not know: the whole tree.
        for s in [
            "berth images",
            "berth container run img",
            "berth -v run img",
            "berth",
        ] {
            let args: Vec<std::ffi::OsString> = s.split(' ').map(Into::into).collect();
            assert!(hot_command(&args).is_none(), "{s}");
        }
        // What the short tree refuses (help, bad flags) is parsed again by the whole tree.
        for s in [
            "berth run --help",
            "berth run",
            "berth ps --bogus",
            "berth exec",
            "berth stats --help",
            "berth stats --bogus",
        ] {
            assert!(hot(s).is_none(), "{s}");
        }
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let Some(Command::Run(r)) = parse("berth run -it --rm busybox ls -la --color").command
        else {
            panic!("not run")
        };
        assert!(r.interactive && r.tty && r.rm);
        assert_eq!(r.image, "busybox");
        assert_eq!(r.command, ["ls", "-la", "--color"]);
        let Some(Command::Run(r)) = parse("berth run busybox -x").command else {
            panic!("not run")
        };
        assert_eq!(r.command, ["-x"]);
        let Some(Command::Exec(e)) = parse("berth exec -it c1 sh -c true").command else {
            panic!("not exec")
        };
        assert_eq!((e.container.as_str(), e.command.len()), ("c1", 3));
    }

    #[test]
    fn management_forms_share_the_arguments() {
        let Some(Command::Container(ContainerCommand::Ls(p))) =
            parse("berth container ls -a -q").command
        else {
            panic!("not container ls")
        };
        assert!(p.all && p.quiet);
        assert!(matches!(
            parse("berth --root /x image ls").command,
            Some(Command::Image(ImageCommand::Ls(_)))
        ));
        assert_eq!(parse("berth ps --root /x").top.root.as_deref(), Some("/x"));
    }
}
