//! Checks (SPEC §8, §9): probers, the per-node scheduler of aligned rounds,
//! and the leader's aggregator of quorum verdicts with hysteresis.

pub mod admit;
pub mod aggregate;
pub mod probe;
pub mod rollup;
pub mod rounds;
pub mod scheduler;
