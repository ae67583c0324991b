//! qu-jepsen: the fault-injection harness for qu.
//!
//! Built so far: the history format (`history`) and the checkers
//! (`checkers`), each tested on doctored histories that contain the
//! violation it must catch. Not built yet: the runner (network namespaces,
//! nemeses, workloads) that records histories — see issue 7 and
//! ARCHITECTURE.md.

pub mod checkers;
pub mod history;
pub mod runner;
