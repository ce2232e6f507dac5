//! The runc-compatible subcommands, with runc's flag names and defaults.

use clap::{Args, Subcommand, ValueEnum};

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// checkpoint a running container (berth has no CRIU support: always refused)
    Checkpoint {
        /// runc's checkpoint flags and the container id, accepted and not used
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// restore a container from a previous checkpoint (berth has no CRIU support: always refused)
    Restore {
        /// runc's restore flags and the container id, accepted and not used
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// create a container
    Create(CreateArgs),
    /// executes the user defined process in a created container
    Start { id: String },
    /// output the state of a container
    State { id: String },
    /// kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill {
        /// send the specified signal to all processes inside the container
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// delete any resources held by the container often used with detached container
    Delete {
        /// forcibly deletes the container if it is still running (uses SIGKILL)
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// create and run a container
    Run(RunArgs),
    /// execute new process inside the container
    Exec(Box<ExecArgs>),
    /// lists containers started by berth with the given root
    List {
        /// display only container IDs
        #[arg(short, long)]
        quiet: bool,
        /// select one of: table or json
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// create a new specification file
    Spec {
        /// path to the root of the bundle directory
        #[arg(short, long, default_value = "")]
        bundle: String,
        /// generate a configuration for a rootless container
        #[arg(long)]
        rootless: bool,
    },
    /// show the enabled features
    Features,
    /// display container events such as OOM notifications and cpu, memory, and IO usage statistics
    Events {
        /// the interval between stats reports
        #[arg(long, default_value = "5s")]
        interval: String,
        /// display the container's stats then exit
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// update container resource constraints
    Update(Box<UpdateArgs>),
    /// pause suspends all processes inside the container
    Pause { id: String },
    /// resumes all processes that have been previously paused
    Resume { id: String },
    /// ps displays the processes running inside a container
    Ps {
        /// select one of: table or json
        #[arg(short, long, value_enum, default_value = "table")]
        format: ListFormat,
        id: String,
        /// arguments passed to ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub(crate) struct CreateArgs {
    /// path to the root of the bundle directory, defaults to the current directory
    #[arg(short, long, default_value = "")]
    pub(crate) bundle: String,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub(crate) console_socket: Option<String>,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub(crate) pid_file: Option<String>,
    /// do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    pub(crate) no_pivot: bool,
    /// do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    pub(crate) no_new_keyring: bool,
    /// pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    pub(crate) id: String,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) create: CreateArgs,
    /// detach from the container's process
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// do not delete the container after it exits
    #[arg(long)]
    pub(crate) keep: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    /// path to the process.json
    #[arg(short, long)]
    pub(crate) process: Option<String>,
    /// allocate a pseudo-TTY
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket")]
    pub(crate) console_socket: Option<String>,
    /// detach from the container's process
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// specify the file to write the process id to
    #[arg(long = "pid-file")]
    pub(crate) pid_file: Option<String>,
    /// set environment variables
    #[arg(short, long)]
    pub(crate) env: Vec<String>,
    /// current working directory in the container
    #[arg(long)]
    pub(crate) cwd: Option<String>,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub(crate) additional_gids: Vec<u32>,
    /// add a capability to the bounding set for the process
    #[arg(short, long)]
    pub(crate) cap: Vec<String>,
    /// set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    pub(crate) no_new_privs: bool,
    /// pass N additional file descriptors to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub(crate) preserve_fds: u32,
    /// set the apparmor profile for the process (ignored when AppArmor is not enabled)
    #[arg(long)]
    pub(crate) apparmor: Option<String>,
    /// set the asm process label for the process commonly used with selinux
    #[arg(long = "process-label")]
    pub(crate) process_label: Option<String>,
    /// allow exec in a paused container (the process starts frozen)
    #[arg(long = "ignore-paused")]
    pub(crate) ignore_paused: bool,
    /// run in a sub-cgroup of the container's: PATH, or CONTROLLER[,CONTROLLER]:PATH (cgroup v1)
    #[arg(long = "cgroup")]
    pub(crate) cgroup: Vec<String>,
    pub(crate) id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// runc's `update` flags. Memory sizes take runc's suffixes (k, m, g; -1 = unlimited).
#[derive(Args, Debug, Default)]
pub(crate) struct UpdateArgs {
    /// path to the file containing the resources to update or '-' to read from the standard input
    #[arg(short, long)]
    pub(crate) resources: Option<String>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight")]
    pub(crate) blkio_weight: Option<u16>,
    /// CPU CFS period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-period")]
    pub(crate) cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub(crate) cpu_quota: Option<i64>,
    /// CPU hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period
    #[arg(long = "cpu-burst")]
    pub(crate) cpu_burst: Option<u64>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-share", visible_alias = "cpu-shares")]
    pub(crate) cpu_shares: Option<u64>,
    /// CPU realtime period to be used for hardcapping (in usecs). 0 to use system default
    #[arg(long = "cpu-rt-period")]
    pub(crate) cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub(crate) cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub(crate) cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub(crate) cpuset_mems: Option<String>,
    /// Memory limit (in bytes)
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) memory: Option<String>,
    /// Memory reservation or soft_limit (in bytes)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub(crate) memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); set '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Maximum number of pids allowed in the container
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    pub(crate) id: String,
}
