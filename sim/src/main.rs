//! `xen-sim`: command-line entry to the simulator (demo, xenstored on a socket).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    eprintln!("xen-sim: no commands yet (got {args:?})");
    std::process::exit(2);
}
