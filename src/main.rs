//! The `snap` command: parses arguments, runs the library, prints, and maps errors to exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
