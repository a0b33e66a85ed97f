//! `cargo xtask cheaders [--check] [DIR]`: writes the C headers generated from crate
//! xen-include (`include/c/*.h`), or with `--check` reports files that differ.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xen_include::interfaces::C_FILES;

/// Renders every generated file as (name, text).
pub fn render_all() -> Result<Vec<(&'static str, String)>, std::fmt::Error> {
    C_FILES
        .iter()
        .map(|(name, render)| {
            let mut text = String::new();
            render(&mut text)?;
            Ok((*name, text))
        })
        .collect()
}

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/c")
}

/// Entry point of the `cheaders` command.
pub fn main(args: &[String]) -> ExitCode {
    let check = args.iter().any(|a| a == "--check");
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(default_dir);
    let files = match render_all() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("cheaders: rendering failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !check {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cheaders: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let mut stale = 0;
    for (name, text) in files {
        let path = dir.join(name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                eprintln!(
                    "cheaders: {} is stale (run `cargo xtask cheaders`)",
                    path.display()
                );
                stale += 1;
            }
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cheaders: {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
