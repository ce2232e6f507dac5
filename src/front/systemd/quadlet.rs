//! Quadlet `.container` files.
