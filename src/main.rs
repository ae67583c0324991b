fn main() -> std::process::ExitCode {
    qu::cli::run()
}
