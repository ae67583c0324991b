//! qu: a quorum-based uptime monitor. This library is the binary's body; the
//! `qu` executable is a thin `main` over `cli::run`.

pub mod alerts;
pub mod checks;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod transport;
pub mod trust;
