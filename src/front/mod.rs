//! The people face: Docker's language over berth's own runtime. A client of `runtime`
//! exactly as podman is a client of runc, but in-process: images, containers and their
//! monitor, logs, volumes, networks, build. Nothing here is reached by the runc face.

pub(crate) mod digest;
pub(crate) mod images;
