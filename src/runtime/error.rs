//! What the lifecycle operations fail with: runc's phrases (callers match on the text:
//! podman, containerd) as variants a Rust caller can match on, and [`Error::Other`] for
//! everything else, with its cause chain.

use crate::state::{StateError, Status};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("container does not exist")]
    NotExist,
    #[error("container with given ID already exists")]
    Exists,
    #[error("container not running")]
    NotRunning,
    #[error("cannot start a container that has stopped")]
    Stopped,
    #[error("cannot start an already running container")]
    AlreadyRunning,
    #[error("cannot start a paused container")]
    StartPaused,
    #[error("cannot start a container that is still being created")]
    StillCreating,
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: Status },
    #[error("container already paused")]
    AlreadyPaused,
    #[error("container not paused")]
    NotPaused,
    #[error(transparent)]
    Other(anyhow::Error),
}

impl From<StateError> for Error {
    fn from(e: StateError) -> Error {
        match e {
            StateError::NotExist => Error::NotExist,
            StateError::Exists => Error::Exists,
            e => Error::Other(e.into()),
        }
    }
}

/// The operations are written with anyhow inside; a typed error raised there (`bail!`
/// with a variant, or a state error passed up with `?`) comes back out as itself, as long
/// as nothing was added to it on the way.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        if e.chain().count() > 1 {
            return Error::Other(e);
        }
        let e = match e.downcast::<Error>() {
            Ok(typed) => return typed,
            Err(e) => e,
        };
        match e.downcast::<StateError>() {
            Ok(s) => s.into(),
            Err(e) => Error::Other(e),
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_survive_anyhow_unless_wrapped() {
        let e: Error = anyhow::Error::from(Error::NotRunning).into();
        assert!(matches!(e, Error::NotRunning));
        let e: Error = anyhow::Error::from(StateError::NotExist).into();
        assert!(matches!(e, Error::NotExist));
        assert_eq!(e.to_string(), "container does not exist");
        let e: Error = anyhow::Error::from(StateError::Exists).into();
        assert_eq!(e.to_string(), "container with given ID already exists");
        let wrapped: Error = anyhow::Error::from(Error::NotRunning)
            .context("destroying")
            .into();
        assert!(matches!(wrapped, Error::Other(_)));
        assert_eq!(
            format!("{:#}", anyhow::Error::from(wrapped)),
            "destroying: container not running"
        );
        let other = Error::Other(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(format!("{:#}", anyhow::Error::from(other)), "outer: inner");
        let e = Error::NotStopped {
            id: "c".into(),
            status: Status::Running,
        };
        assert_eq!(
            e.to_string(),
            "cannot delete container c that is not stopped: running"
        );
    }
}
