//! `xenbus-coinst check [--registry FILE.reg]`: run before installing the XenBus package;
//! exit 0 = compatible, 1 = vetoed (the reasons are printed), 2 = input error.
//! `xenbus-coinst subscribe|unsubscribe …`: record a child driver's interface versions.
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (code, lines) = xenbus_coinst::cli(&args);
    let raw = args.last().is_some_and(|a| a == "--reg") && code == xenbus_coinst::EXIT_COMPATIBLE;
    for line in lines {
        if raw {
            print!("{line}");
        } else if code == xenbus_coinst::EXIT_COMPATIBLE {
            println!("xenbus-coinst: {line}");
        } else {
            eprintln!("xenbus-coinst: {line}");
        }
    }
    ExitCode::from(code)
}
