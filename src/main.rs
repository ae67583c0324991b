// The static (musl) build uses mimalloc: musl's malloc serialises a
// multi-threaded runtime (figures in BENCHMARKS.md → Static build).
#[cfg(all(target_env = "musl", feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    qu::cli::run()
}
