//! `xenbus_monitor.exe`: run by the service control manager as service `xenbus_monitor`;
//! `xenbus_monitor status` prints the pending reboot requests on a console.
use std::process::ExitCode;

#[cfg(windows)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("status") => xenbus_monitor::service::console_status().map(|s| println!("{s}")),
        None => xenbus_monitor::service::dispatch(),
        Some(other) => Err(format!(
            "unknown argument {other:?}; usage: xenbus_monitor [status]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenbus_monitor: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(windows))]
fn main() -> ExitCode {
    eprintln!("xenbus_monitor: a Windows service; build it with --target x86_64-pc-windows-gnu");
    ExitCode::from(2)
}
