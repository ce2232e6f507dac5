//! Command glue: CLI args -> runtime call -> output.

pub(crate) mod front;
pub(crate) mod oci;
