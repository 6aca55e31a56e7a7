fn main() -> std::process::ExitCode {
    flowtrace::cli::main()
}
