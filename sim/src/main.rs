//! `xen-sim`: command-line entry to the simulator.
//!
//! * `xen-sim xenstored --socket PATH [--domain N]...` serves the simulated xenstored on a
//!   Unix socket, so stock tools work against it (`XENSTORED_PATH=PATH xenstore-ls`).
//! * `xen-sim demo` boots a simulated domain and prints what its guest sees.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::{Arc, Mutex};

use xen_sim::toolstack::{self, DomainConfig, NoGrants, Toolstack};
use xen_sim::xenstored::socket::SocketServer;
use xen_sim::xenstored::Xenstored;

const USAGE: &str = "usage:
  xen-sim xenstored --socket PATH [--domain DOMID]...
      serve the simulated xenstored on a Unix socket (dom0 protocol); each --domain
      has the toolstack build that domain's home first
  xen-sim demo
      boot a simulated domain and print what its guest sees";

fn xenstored(args: &[String]) -> Result<(), String> {
    let mut socket: Option<PathBuf> = None;
    let mut domains: Vec<u32> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().map(PathBuf::from),
            "--domain" => {
                let d = it
                    .next()
                    .and_then(|d| d.parse().ok())
                    .ok_or("--domain needs a domain id")?;
                domains.push(d);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let socket = socket.ok_or(format!("--socket PATH is required\n{USAGE}"))?;
    let shared = Arc::new(Mutex::new(Xenstored::default()));
    {
        let mut ts = Toolstack::new(&shared, Box::new(NoGrants::default()));
        for d in &domains {
            ts.create_domain(&DomainConfig::new(*d))
                .map_err(|e| format!("creating domain {d}: {e:?}"))?;
        }
    }
    let store = std::mem::take(&mut *toolstack::lock(&shared));
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
        Some("demo") => xen_sim::demo::run(&mut std::io::stdout()).map_err(|e| e.to_string()),
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
