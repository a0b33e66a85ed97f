//! `cargo xtask pytest`: runs the Python tests of the top-level scripts (tests/python) with
//! pytest from the system Python or, when it lacks pytest, from the venv under `target/venv`.
use std::{path::PathBuf, process::Command};

/// A Python interpreter with pytest importable.
pub fn python_with_pytest() -> Result<PathBuf, String> {
    let system_has_it = Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if system_has_it {
        return Ok(PathBuf::from("python3"));
    }
    Ok(crate::env::python_venv(&["pytest"])?.join("python"))
}

/// Runs `pytest -q tests/python`.
pub fn run() -> Result<(), String> {
    let python = python_with_pytest()?;
    crate::env::run(
        Command::new(python)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/python",
            ])
            .current_dir(crate::env::root()),
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
