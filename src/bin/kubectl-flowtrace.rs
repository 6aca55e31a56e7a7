//! `kubectl flowtrace`: kubectl finds this binary on PATH by its name.

fn main() -> std::process::ExitCode {
    flowtrace::cli::kubectl_plugin_main()
}
