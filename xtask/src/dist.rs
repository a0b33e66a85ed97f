//! `cargo xtask dist`: provision what is missing, build the release images, test-sign them
//! and lay out the package in `target/dist/xenbus/x64/` (signed `.sys`, `.pdb`, INF,
//! `kdfiles64.txt`), then print a summary with sizes and SHA-256 hashes.

use std::path::PathBuf;
use std::process::Command;

use crate::sys;
use crate::{env, sign, verify};

/// What the packaging steps work on.
pub struct Package {
    /// `target/dist/xenbus`.
    pub root: PathBuf,
    /// `target/dist/xenbus/x64`: the files `pnputil /add-driver` installs from.
    pub arch_dir: PathBuf,
}

/// A packaging step run after the images are signed and copied; adding one is one line.
pub type Step = fn(&Package) -> Result<(), String>;

/// Packaging steps in order.
pub const STEPS: &[(&str, Step)] = &[
    ("windows tools", package_tools),
    ("xenbus.inf", stamp_inf),
    ("kdfiles64.txt", write_kdfiles),
    ("xen.def", write_xen_def),
];

/// `target/dist/xenbus`.
pub fn dist_root() -> PathBuf {
    env::target_dir().join("dist").join("xenbus")
}

/// `target/dist/xenbus/x64`.
pub fn package_dir() -> PathBuf {
    dist_root().join("x64")
}

/// Run the whole `dist` command.
pub fn run() -> Result<(), String> {
    let started = std::time::Instant::now();
    // Provision first, so a fresh machine fails early and clearly.
    env::windows_toolchain()?;
    env::ensure_program("osslsigncode", "osslsigncode")?;
    env::python_venv(&[verify::SPEAKEASY])?;
    let cert = sign::test_cert()?;

    let images = sys::build_all("release")?;
    let package = Package {
        root: dist_root(),
        arch_dir: package_dir(),
    };
    if package.root.exists() {
        std::fs::remove_dir_all(&package.root)
            .map_err(|e| format!("clean {}: {e}", package.root.display()))?;
    }
    std::fs::create_dir_all(&package.arch_dir)
        .map_err(|e| format!("create {}: {e}", package.arch_dir.display()))?;
    for image in &images {
        let name = image.file_name().ok_or("image without a name")?;
        sign::sign(&cert, image, &package.arch_dir.join(name))?;
        let pdb = image.with_extension("pdb");
        copy(
            &pdb,
            &package
                .arch_dir
                .join(pdb.file_name().ok_or("pdb without a name")?),
        )?;
    }
    // The public half of the test certificate, for the target's TrustedPublisher store.
    env::output(
        Command::new("openssl")
            .args(["x509", "-outform", "der", "-in"])
            .arg(&cert.cert)
            .arg("-out")
            .arg(package.root.join("xenbus-test.cer")),
    )?;
    for (name, step) in STEPS {
        step(&package).map_err(|e| format!("{name}: {e}"))?;
    }
    summary(&package)?;
    println!("dist: done in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn copy(from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// `xenbus_monitor.exe` and `xenbus-coinst.exe`, built for x86_64-pc-windows-gnu
/// (`cargo xtask wintools`) and test-signed like the drivers.
fn package_tools(package: &Package) -> Result<(), String> {
    let cert = sign::test_cert()?;
    for exe in crate::wintools::build()? {
        let name = exe.file_name().ok_or("tool without a name")?;
        let dest = package.arch_dir.join(name);
        sign::sign(&cert, &exe, &dest)?;
        crate::wintools::check_pe(&dest)?;
        sign::verify(&dest, &cert.cert)?;
        println!("dist: signed {}", dest.display());
    }
    Ok(())
}

/// Stamp `inf/xenbus.inx` into `x64/xenbus.inf` (`cargo xtask stamp-inf`).
fn stamp_inf(package: &Package) -> Result<(), String> {
    let path = crate::inf::write_inf(&package.arch_dir, &crate::inf::StampConfig::from_build())?;
    println!("dist: stamped {}", path.display());
    Ok(())
}

/// The WinDbg `.kdfiles` map, written by `kdfiles.py` into `x64/kdfiles64.txt`.
fn write_kdfiles(package: &Package) -> Result<(), String> {
    let python = env::python_venv(&[])?.join("python");
    env::run(
        Command::new(python)
            .arg(env::root().join("kdfiles.py"))
            .arg("--package")
            .arg(&package.root)
            .arg("--out-dir")
            .arg(&package.arch_dir),
    )
}

/// The `.def` of xen.sys, from which C consumers make an import library
/// (`llvm-dlltool -m i386:x86-64 -d xen.def -l xen.lib`).
fn write_xen_def(package: &Package) -> Result<(), String> {
    let path = package.root.join("xen.def");
    std::fs::write(&path, verify::xen_def_text())
        .map_err(|e| format!("write {}: {e}", path.display()))
}

/// Print name, size and SHA-256 of every file of the package.
fn summary(package: &Package) -> Result<(), String> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [&package.root, &package.arch_dir] {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            if entry.path().is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    println!("\npackage {}:", package.root.display());
    for file in files {
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let hash = env::output(Command::new("sha256sum").arg(&file))?;
        let hash = hash.split_whitespace().next().unwrap_or("?").to_string();
        let name = file.strip_prefix(&package.root).unwrap_or(&file);
        println!("  {:<28} {:>9} bytes  sha256 {hash}", name.display(), size);
    }
    Ok(())
}
