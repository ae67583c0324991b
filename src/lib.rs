//! qu: a quorum-based uptime monitor. This library is the binary's body; the
//! `qu` executable is a thin `main` over `cli::run`.

// Unsafe code is denied; the one exception (registering the ICMP socket
// with tokio) carries its own `allow` and justification.
#![deny(unsafe_code)]

pub mod alerts;
pub mod checks;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod errors;
pub mod ids;
pub mod transport;
pub mod trust;
pub mod version;
pub mod web;
