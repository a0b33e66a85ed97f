//! `cargo xtask pytest`: runs the Python tests of the top-level scripts (tests/python),
//! provisioning pytest in a venv under `target/pyvenv` when the system Python lacks it.
use std::{path::Path, process::Command};

use crate::inf::workspace_root;

fn has_pytest(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// A Python interpreter with pytest: the system's, or a venv made under `target/pyvenv`
/// (installing Debian's python3-venv first when running as root and it is missing).
pub fn python_with_pytest() -> Result<std::path::PathBuf, String> {
    let system = Path::new("python3");
    if has_pytest(system) {
        return Ok(system.to_path_buf());
    }
    let venv = workspace_root().join("target/pyvenv");
    let python = venv.join("bin/python3");
    if has_pytest(&python) {
        return Ok(python);
    }
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            // Debian splits ensurepip into python3-venv.
            run_checked(
                Command::new("apt-get").args(["install", "-y", "-q", "python3-venv"]),
                "apt-get install python3-venv",
            )?;
            run_checked(
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
                "python3 -m venv",
            )?;
        }
    }
    run_checked(
        Command::new(&python).args(["-m", "pip", "install", "-q", "pytest"]),
        "pip install pytest",
    )?;
    if has_pytest(&python) {
        Ok(python)
    } else {
        Err("pytest is still not importable after installing it".into())
    }
}

/// Runs `pytest -q tests/python`.
pub fn run() -> Result<(), String> {
    let python = python_with_pytest()?;
    run_checked(
        Command::new(python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/python",
            ])
            .current_dir(workspace_root()),
        "pytest tests/python",
    )
}

/// Entry point of `cargo xtask pytest`.
pub fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pytest: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
