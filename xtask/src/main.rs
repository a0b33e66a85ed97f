//! `cargo xtask <command>`: the project's build, package, verify and test driver.
//!
//! * `dist` — provision what is missing, build the three signed `.sys` + `.pdb` and lay out
//!   `target/dist/xenbus/x64/`.
//! * `verify [DIR]` — PE, signature and emulated-run checks of every `.sys` in `DIR`
//!   (default: the dist directory).
//! * `test [--only a,b] [--skip a,b] [--list]` — every test section (the one test command).
use std::process::ExitCode;

/// `demo` runs the whole package on the simulator inside the IRQL model: heap use above
/// DISPATCH_LEVEL there panics, as pool use bug-checks a real kernel (everything else xtask
/// does runs on threads the model never raises).
#[global_allocator]
static ALLOCATOR: common::irql::model::CheckingAllocator =
    common::irql::model::CheckingAllocator::SYSTEM;

mod cheaders;
mod demo;
mod dist;
mod env;
mod inf;
mod infcheck;
mod pe;
mod pytest;
mod rig;
mod sign;
mod sys;
mod test;
mod upgrade;
mod verify;
mod wintools;

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask <command>\n\
         \x20 demo                      boot the package on the simulator and tell the story\n\
         \x20 dist                      build, sign and lay out target/dist/xenbus/x64\n\
         \x20 verify [DIR]              check every .sys in DIR (default: the dist directory)\n\
         \x20 test [--only a,b] [--skip a,b] [--list]\n\
         \x20                           run the test sections (fmt, clippy, tests, dist, verify, …)"
    );
    ExitCode::from(2)
}

/// Exit status of a command returning `Result`, printing the error.
fn report(command: &str, result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {command}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return usage();
    };
    match command.as_str() {
        "dist" => report(command, dist::run()),
        "demo" => demo::main(),
        "verify" => report(command, verify::command(&args[1..])),
        "test" => report(command, test::command(&args[1..])),
        "help" | "--help" | "-h" => usage(),
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
            usage()
        }
    }
}
