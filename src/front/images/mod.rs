//! Images: the content-addressed store, layer unpacking, container root filesystems
//! (overlay), archives (docker-archive, oci-archive, import) and the data behind
//! `images`, `inspect`, `rmi`, `tag`, `history`, `image prune` and `system df`.
//! The registry client writes pulled blobs into this store (`Store::begin`,
//! `Staged::put_blob`, `Staged::add_image`, `Staged::commit`).

pub(crate) mod archive;
pub(crate) mod compress;
pub(crate) mod durable;
pub(crate) mod manifest;
pub(crate) mod names;
pub(crate) mod ops;
pub(crate) mod overlay;
pub(crate) mod pull;
pub(crate) mod store;
pub(crate) mod stream;
pub(crate) mod tar;
pub(crate) mod unpack;

#[cfg(test)]
mod tests;
