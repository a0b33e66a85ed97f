//! `xenbus-coinst check [--registry FILE.reg]`: run before installing the XenBus package;
//! exit 0 = compatible, 1 = vetoed (the reasons are printed), 2 = input error.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (code, lines) = xenbus_coinst::cli(&args);
    for line in lines {
        if code == xenbus_coinst::EXIT_COMPATIBLE {
            println!("xenbus-coinst: {line}");
        } else {
            eprintln!("xenbus-coinst: {line}");
        }
    }
    ExitCode::from(code)
}
