//! Command glue: CLI args -> runtime call -> output.

pub(crate) mod oci;
