//! The install-time compatibility check of the XenBus package, shared by the Windows tool
//! `xenbus-coinst check` (live registry) and `cargo xtask check-upgrade` (regedit export), and
//! the registry toolkit (in-memory model, `.reg` parser, live advapi32 access) that
//! `xenbus_monitor` uses too.
#![deny(unsafe_code)]

pub mod check;
#[cfg(windows)]
pub mod live;
pub mod regfile;
pub mod registry;
pub mod subscribe;
pub mod tables;

pub use check::{check_upgrade, Report};
pub use registry::{MemoryRegistry, RegValue, RegistryView};
pub use tables::PackageTables;

/// Exit code: installing the package is safe.
pub const EXIT_COMPATIBLE: u8 = 0;
/// Exit code: installing the package would break a subscriber or a child (veto).
pub const EXIT_VETO: u8 = 1;
/// Exit code: the input (registry export, arguments) could not be read.
pub const EXIT_INPUT_ERROR: u8 = 2;

/// Runs the check on `view` and renders the outcome as printable lines plus an exit code.
pub fn run(view: &dyn RegistryView, tables: &PackageTables) -> (u8, Vec<String>) {
    match check_upgrade(view, tables) {
        Err(e) => (EXIT_INPUT_ERROR, vec![format!("error: {e}")]),
        Ok(report) => {
            let mut lines: Vec<String> =
                report.notes.iter().map(|n| format!("note: {n}")).collect();
            lines.extend(report.vetoes.iter().map(|v| format!("VETO: {v}")));
            if report.vetoes.is_empty() {
                lines.push(format!(
                    "compatible: {} subscription(s) and {} installed child(ren) checked",
                    report.subscriptions_checked, report.children_checked
                ));
                (EXIT_COMPATIBLE, lines)
            } else {
                lines.push(format!(
                    "installation vetoed: {} problem(s); update the drivers named above first",
                    report.vetoes.len()
                ));
                (EXIT_VETO, lines)
            }
        }
    }
}

/// Reads a regedit export and runs the check on it.
pub fn run_on_reg_file(path: &std::path::Path, tables: &PackageTables) -> (u8, Vec<String>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return (
                EXIT_INPUT_ERROR,
                vec![format!("error: {}: {e}", path.display())],
            )
        }
    };
    match regfile::parse(&bytes) {
        Ok(registry) => run(&registry, tables),
        Err(e) => (
            EXIT_INPUT_ERROR,
            vec![format!("error: {}: {e}", path.display())],
        ),
    }
}

/// The usage text.
pub const USAGE: &str = "usage: xenbus-coinst check [--registry FILE.reg]\n       xenbus-coinst subscribe PROVIDER CONSUMER INTERFACE VERSION [--reg]\n       xenbus-coinst unsubscribe PROVIDER CONSUMER [--reg]";

/// Runs a command line (`check [--registry FILE]`, `subscribe …`, `unsubscribe …`) and
/// returns the exit code and lines to print. Without `--registry` the live registry is read
/// (Windows only).
pub fn cli(args: &[String]) -> (u8, Vec<String>) {
    let tables = PackageTables::current();
    match args {
        [cmd] if cmd == "check" => live_check(&tables),
        [cmd, flag, file] if cmd == "check" && flag == "--registry" => {
            run_on_reg_file(std::path::Path::new(file), &tables)
        }
        [cmd, ..] if cmd == "subscribe" || cmd == "unsubscribe" => subscribe::command(args),
        _ => (EXIT_INPUT_ERROR, vec![USAGE.to_string()]),
    }
}

#[cfg(windows)]
fn live_check(tables: &PackageTables) -> (u8, Vec<String>) {
    run(&live::LiveRegistry, tables)
}

#[cfg(not(windows))]
fn live_check(_tables: &PackageTables) -> (u8, Vec<String>) {
    (
        EXIT_INPUT_ERROR,
        vec![
            "the live registry exists only on Windows; pass --registry FILE.reg (a regedit export)"
                .to_string(),
        ],
    )
}
