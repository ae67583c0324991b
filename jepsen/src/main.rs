//! qu-jepsen: the fault-injection harness (network namespaces, nemeses,
//! recorded histories, checkers). Not built yet: see issue 7 and
//! ARCHITECTURE.md. This binary says so instead of pretending to test.

fn main() -> std::process::ExitCode {
    eprintln!("qu-jepsen: the fault-injection harness is not implemented yet (tracked as issue 7); nothing was run");
    std::process::ExitCode::from(2)
}
