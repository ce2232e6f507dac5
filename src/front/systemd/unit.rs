//! Generated units.
