//! `cargo xtask <command>`: the project's build, package and test driver.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("usage: cargo xtask <command> [args]");
        return ExitCode::from(2);
    };
    eprintln!("xtask: unknown command {command:?}");
    ExitCode::from(2)
}
