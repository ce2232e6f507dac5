//! The people face's commands: args -> front call -> output. Each returns the exit code.

mod attach;
mod build;
mod commit;
mod container_prune;
mod cp;
mod create;
mod diff;
mod events;
mod exec;
mod exists;
mod export;
pub(crate) mod generate;
mod healthcheck;
mod history;
mod image_mount;
mod image_prune;
mod images;
mod import;
mod info;
mod inspect;
mod kill;
mod load;
mod login;
mod logs;
mod monitor;
mod network;
mod pause;
mod port;
mod ps;
mod pull;
mod push;
mod rename;
mod restart;
mod rm;
mod rmi;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod top;
mod update;
mod version;
mod volume;
mod wait;

use anyhow::{anyhow, bail, Context, Result};

use crate::cli::front::{
    Command, ContainerCommand, FormatOnly, GenerateCommand, HealthcheckCommand, ImageCommand,
    NetworkCommand, SystemCommand, VolumeCommand,
};
use crate::front::containers::Store;
use crate::front::{Exit, Globals};

/// The image store under `--root`.
pub(crate) fn image_store(g: &Globals) -> Result<crate::front::images::store::Store> {
    crate::front::images::store::Store::open(
        &g.root,
        crate::front::images::store::StoreOptions {
            rootless: g.rootless,
            ids: Default::default(),
        },
    )
}

/// The local image `q` names (short names as Podman looks them up), if any.
pub(crate) fn find_image(
    store: &crate::front::images::store::Store,
    q: &str,
) -> Result<
    Option<(
        crate::front::images::store::ImageRecord,
        crate::front::images::ops::Matched,
    )>,
> {
    // An exact name or id needs no registries.conf (a few ms of TOML for every `run`).
    if let Some(found) = crate::front::images::ops::find(store, q)? {
        return Ok(Some(found));
    }
    crate::front::images::pull::find_local(store, q, &pull::registries()?)
}

/// [`find_image`], with Docker's error for an image that is not there.
pub(crate) fn lookup_image(
    store: &crate::front::images::store::Store,
    q: &str,
) -> Result<(
    crate::front::images::store::ImageRecord,
    crate::front::images::ops::Matched,
)> {
    find_image(store, q)?.ok_or_else(|| anyhow!("no such image: {q}"))
}

/// The stored name a short name resolves to, for the store's own lookups.
pub(crate) fn canonical_image(
    store: &crate::front::images::store::Store,
    q: &str,
) -> Result<String> {
    crate::front::images::pull::canonical(store, q, &pull::registries()?)
}

/// Rootless, the image store is written from berth's user namespace (what `podman
/// unshare` is: layer files owned through the subuid ranges), entered here, before the
/// command starts any thread.
pub(crate) fn unpack_allowed(g: &Globals, what: &str) -> Result<()> {
    if g.rootless {
        crate::front::userns::enter().with_context(|| format!("{what}: rootless image storage"))?;
    }
    Ok(())
}

/// Which container (short id) uses an image, for `rmi` and `image prune`.
pub(crate) fn image_user(
    containers: &Store,
) -> impl Fn(&crate::front::digest::Digest) -> Option<String> + '_ {
    move |id| {
        let want = id.to_string();
        containers
            .list_brief()
            .into_iter()
            .find(|c| c.rec.image_id == want)
            .map(|c| crate::front::containers::short(&c.rec.id).to_string())
    }
}

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
    let makes_one = matches!(
        cmd,
        Command::Run(_)
            | Command::Create(_)
            | Command::Container(ContainerCommand::Run(_) | ContainerCommand::Create(_))
    );
    if makes_one {
        g.check_cgroup_manager()?;
    }
    match cmd {
        Command::Version(a) if a.format.is_none() => version::version(g),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(g, &a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            create::create(g, &a)
        }
        Command::Monitor(a) => monitor::monitor(g, &a),
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => start::start(g, &a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => stop::stop(g, &a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            restart::restart(g, &a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => kill::kill(g, &a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => rm::rm(g, &a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::ps(g, &a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => logs::logs(g, &a),
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => wait::wait(g, &a),
        Command::Inspect(a) => inspect::inspect(g, &a, false),
        Command::Container(ContainerCommand::Inspect(a)) => inspect::inspect(g, &a, true),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => exec::exec(g, &a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            attach::attach(g, &a)
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            rename::rename(g, &a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            pause::pause(g, &a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            pause::pause(g, &a, false)
        }
        Command::Container(ContainerCommand::Exists(a)) => exists::exists(g, &a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::pull(g, &a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::push(g, &a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::images(g, &a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => rmi::rmi(g, &a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => tag::tag(g, &a),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => history::history(g, &a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => save::save(g, &a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => load::load(g, &a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => import::import(g, &a),
        Command::Image(ImageCommand::Inspect(a)) => {
            inspect::inspect_kind(g, &a, inspect::Kind::Image)
        }
        Command::Image(ImageCommand::Exists(a)) => exists::image_exists(g, &a),
        Command::Image(ImageCommand::Mount(a)) => image_mount::mount(g, &a),
        Command::Image(ImageCommand::Unmount(a)) => image_mount::unmount(g, &a),
        Command::Image(ImageCommand::Prune(a)) => image_prune::prune(g, &a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => stats::stats(g, &a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => top::top(g, &a),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => cp::cp(g, &a),
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            export::export(g, &a)
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => diff::diff(g, &a),
        Command::Container(ContainerCommand::Prune(a)) => container_prune::prune(g, &a),
        Command::System(SystemCommand::Prune(a)) => system::prune(g, &a),
        Command::System(SystemCommand::Df(a)) => system::df(g, &a),
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            update::update(g, &a)
        }
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            info::info(g, a.format.as_deref())
        }
        Command::Version(FormatOnly { format: Some(f) }) => info::version_format(g, &f),
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => events::events(g, &a),
        Command::Healthcheck(HealthcheckCommand::Run(a)) => healthcheck::run(g, &a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(g, &a),
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commit::commit(g, &a)
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => port::port(g, &a),
        Command::Network(NetworkCommand::Create(a)) => network::create(g, &a),
        Command::Network(NetworkCommand::Ls(a)) => network::ls(g, &a),
        Command::Network(NetworkCommand::Inspect(a)) => network::inspect(g, &a),
        Command::Network(NetworkCommand::Rm(a)) => network::rm(g, &a),
        Command::Network(NetworkCommand::Prune(a)) => network::prune(g, &a),
        Command::Network(NetworkCommand::Exists(a)) => network::exists(g, &a),
        Command::Network(NetworkCommand::Connect(a)) => network::connect(g, &a),
        Command::Network(NetworkCommand::Disconnect(a)) => network::disconnect(g, &a),
        Command::Generate(GenerateCommand::Systemd(a)) => generate::systemd(g, &a),
        Command::Login(a) => login::login(g, &a),
        Command::Logout(a) => login::logout(g, &a),
        Command::Volume(VolumeCommand::Create(a)) => volume::create(g, &a),
        Command::Volume(VolumeCommand::Ls(a)) => volume::ls(g, &a),
        Command::Volume(VolumeCommand::Inspect(a)) => volume::inspect(g, &a),
        Command::Volume(VolumeCommand::Rm(a)) => volume::rm(g, &a),
        Command::Volume(VolumeCommand::Prune(a)) => volume::prune(g, &a),
        Command::Volume(VolumeCommand::Exists(a)) => volume::exists(g, &a),
        _ => Err(not_implemented(name)),
    }
}

/// `-a/--attach` of run/create: which of stdin, stdout, stderr (default: stdout and
/// stderr, and stdin with -i).
pub(crate) fn attach_streams(list: &[String], interactive: bool) -> Result<[bool; 3]> {
    if list.is_empty() {
        return Ok([interactive, true, true]);
    }
    let mut s = [false; 3];
    for a in list.iter().flat_map(|x| x.split(',')) {
        match a.to_ascii_lowercase().as_str() {
            "stdin" => s[0] = true,
            "stdout" => s[1] = true,
            "stderr" => s[2] = true,
            _ => bail!("-a/--attach {a}: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    Ok(s)
}

/// The containers a command acts on: its arguments, the ids in `--cidfile` files, or every
/// container with `--all` (`running` narrows that to running ones).
pub(crate) fn targets(
    store: &Store,
    args: &[String],
    cidfiles: &[String],
    all: bool,
    running: bool,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = args.to_vec();
    for f in cidfiles {
        let id = std::fs::read_to_string(f)
            .map_err(|e| anyhow!("--cidfile {f}: {}", crate::error::errno_text(&e)))?;
        out.push(id.trim().to_string());
    }
    if all {
        let mut list = store.list_brief();
        list.sort_by(|a, b| b.rec.created.cmp(&a.rec.created));
        for c in list {
            if !running || store.derive(&c).is_active() {
                out.push(c.rec.id.clone());
            }
        }
    } else if out.is_empty() {
        bail!("requires at least 1 container name or id");
    }
    Ok(out)
}

/// Runs `f` on each container, printing what the user typed on success; goes on past
/// failures (each reported once) and ends with 1 if any failed.
pub(crate) fn each(
    targets: &[String],
    ignore_missing: bool,
    mut f: impl FnMut(&str) -> Result<()>,
) -> Result<i32> {
    let mut failed = false;
    for q in targets {
        match f(q) {
            Ok(()) => println!("{q}"),
            Err(e) if ignore_missing && crate::front::containers::is_no_such(&e) => {}
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    if failed {
        // Every failure is reported already: main prints nothing more, and exits with the
        // command's class (125 for start, 1 for the others).
        return Err(anyhow!(""));
    }
    Ok(0)
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
