//! The distribution side of the people face: registries.conf, credentials, certificates,
//! and a blocking client of the OCI distribution API (pull and push).

pub(crate) mod auth;
mod base64;
pub(crate) mod certs;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod manifest;
pub(crate) mod pull;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testserver;
