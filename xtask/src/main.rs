//! `cargo xtask <command>`: the project's build, package and test driver.
use std::process::ExitCode;

mod cheaders;
mod inf;
mod infcheck;
mod pytest;
mod rig;
mod upgrade;
mod wintools;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprintln!("usage: cargo xtask <command> [args]");
        return ExitCode::from(2);
    };
    match command.as_str() {
        "cheaders" => cheaders::main(&args[1..]),
        "stamp-inf" => inf::main(&args[1..]),
        "infcheck" => infcheck::main(&args[1..]),
        "rig" => match rig::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        },
        "check-upgrade" => upgrade::main(&args[1..]),
        "check-upgrade-selftest" => match upgrade::selftest() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("check-upgrade-selftest: {e}");
                ExitCode::FAILURE
            }
        },
        "pytest" => pytest::main(),
        "wintools" => wintools::main(&args[1..]),
        _ => {
            eprintln!("xtask: unknown command {command:?}");
            ExitCode::from(2)
        }
    }
}
