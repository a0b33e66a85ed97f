//! `xen-sim`: command-line entry to the simulator.
//!
//! * `xen-sim xenstored --socket PATH [--domain N]...` serves the simulated xenstored on a
//!   Unix socket, so stock tools work against it (`XENSTORED_PATH=PATH xenstore-ls`).

use std::path::PathBuf;
use std::process::ExitCode;

use xen_sim::xenstored::socket::SocketServer;
use xen_sim::xenstored::Xenstored;

const USAGE: &str = "usage:
  xen-sim xenstored --socket PATH
      serve the simulated xenstored on a Unix socket (dom0 protocol)";

fn xenstored(args: &[String]) -> Result<(), String> {
    let mut socket: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().map(PathBuf::from),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let socket = socket.ok_or(format!("--socket PATH is required\n{USAGE}"))?;
    let store = Xenstored::default();
    let server = SocketServer::start(&socket, store)
        .map_err(|e| format!("binding {}: {e}", socket.display()))?;
    eprintln!(
        "xen-sim xenstored: serving {} (export XENSTORED_PATH={})",
        socket.display(),
        socket.display()
    );
    server.wait();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("xenstored") => xenstored(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xen-sim: {e}");
            ExitCode::from(2)
        }
    }
}
