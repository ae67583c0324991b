//! qu-jepsen: the fault-injection harness for qu.
//!
//! - `history`: the JSON-lines history format of a run.
//! - `checkers`: linearizable configuration, no minority page, every
//!   transition delivered, leadership convergence, detection after the heal,
//!   timings; each tested on doctored histories that hold the violation it
//!   must catch (`tests/doctored.rs`).
//! - `runner`: network namespaces, a `qu` cluster in them, workloads,
//!   nemeses, sinks, and the run that records and checks a history.
//! - `proxy`: the userspace L4 proxy that makes links slow and flaky.
//! - `http`: the one loopback HTTP/1.1 server of every test and benchmark.
//! - `bench`: benchmarks on loopback that print figures (never assert).
//! - `soak`: back-to-back runs rotating seeds and fault menus, one summary.
#![forbid(unsafe_code)]

pub mod bench;
pub mod checkers;
pub mod history;
pub mod http;
pub mod proxy;
pub mod runner;
pub mod soak;
