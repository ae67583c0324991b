// Opt-in for the static (musl) build: `--features mimalloc`. The default is
// musl's malloc, which measured within the noise on CPU and at a third of
// mimalloc's memory (BENCHMARKS.md → Static build).
#[cfg(all(target_env = "musl", feature = "mimalloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    qu::cli::run()
}
