//! Building the kernel images: each driver crate is linked as a `cdylib` for
//! `x86_64-pc-windows-msvc` with its `sys` feature (the kernel runtime and the linker
//! arguments of its build.rs), written straight to `<name>.sys` with its `.pdb` beside it.

use std::path::{Path, PathBuf};

use crate::env::{self, Toolchain, WINDOWS_TARGET};

/// A driver of the package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Driver {
    /// Cargo package name.
    pub package: &'static str,
    /// Image file name.
    pub image: &'static str,
    /// Exports the xen.sys API (an export driver) rather than importing it.
    pub export_driver: bool,
}

/// The three drivers, xen.sys first (the others import from it).
pub const DRIVERS: [Driver; 3] = [
    Driver {
        package: "xen",
        image: "xen.sys",
        export_driver: true,
    },
    Driver {
        package: "xenbus",
        image: "xenbus.sys",
        export_driver: false,
    },
    Driver {
        package: "xenfilt",
        image: "xenfilt.sys",
        export_driver: false,
    },
];

/// Where the linked images of `profile` go.
pub fn image_dir(profile: &str) -> PathBuf {
    env::target_dir()
        .join(WINDOWS_TARGET)
        .join(profile)
        .join("sys")
}

/// Build every driver with `profile` (`release` or `dev`); returns the image paths.
pub fn build_all(profile: &str) -> Result<Vec<PathBuf>, String> {
    let toolchain = env::windows_toolchain()?;
    let dir = image_dir(if profile == "dev" { "debug" } else { profile });
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    DRIVERS
        .iter()
        .map(|driver| build(driver, profile, &toolchain, &dir))
        .collect()
}

fn build(
    driver: &Driver,
    profile: &str,
    toolchain: &Toolchain,
    dir: &Path,
) -> Result<PathBuf, String> {
    let image = dir.join(driver.image);
    let mut command = env::cargo();
    command.args([
        "rustc",
        "--quiet",
        "-p",
        driver.package,
        "--lib",
        "--profile",
        profile,
    ]);
    command.args([
        "--target",
        WINDOWS_TARGET,
        "--features",
        "sys",
        "--crate-type",
        "cdylib",
    ]);
    toolchain.apply(&mut command);
    // /OUT names the image and, through it, the PDB and the export directory's DLL name.
    command
        .arg("--")
        .arg(format!("-Clink-arg=/OUT:{}", image.display()));
    // The image is rewritten on every link; remove a stale one so a failed link cannot
    // leave an old image behind.
    let _ = std::fs::remove_file(&image);
    env::run(&mut command)?;
    if image.is_file() {
        Ok(image)
    } else {
        Err(format!("{} was not produced", image.display()))
    }
}

/// Clippy for the Windows target over the driver crates, kernel runtime included.
pub fn clippy_windows() -> Result<(), String> {
    let toolchain = env::windows_toolchain()?;
    let mut command = env::cargo();
    command.args([
        "clippy",
        "--target",
        WINDOWS_TARGET,
        "-p",
        "common",
        "-p",
        "xen",
        "-p",
        "xenbus",
    ]);
    command.args([
        "-p",
        "xenfilt",
        "--lib",
        "--features",
        "xen/sys,xenbus/sys,xenfilt/sys",
    ]);
    toolchain.apply(&mut command);
    command.args(["--", "-D", "warnings"]);
    env::run(&mut command)
}
