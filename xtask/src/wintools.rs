//! Builds the package's user-mode tools (`xenbus_monitor.exe`, `xenbus-coinst.exe`) for
//! `x86_64-pc-windows-gnu` and copies them into a package directory.
//!
//! Why gnu: an `x86_64-pc-windows-msvc` executable links against Microsoft's C runtime
//! import libraries (msvcrt/ucrt, kernel32 …), which come only with Visual Studio / the
//! Windows SDK and cannot be installed here. The drivers avoid that (no CRT, raw-dylib
//! imports only); the std-based tools cannot, but mingw-w64 (Debian `gcc-mingw-w64-x86-64`)
//! provides a linker and the import libraries. Missing pieces are provisioned: the rustup
//! target, and the mingw-w64 package through apt-get.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The Windows target the tools are built for.
pub const TARGET: &str = "x86_64-pc-windows-gnu";
/// The cargo profile of the tools (release, no debug info, stripped).
pub const PROFILE: &str = "wintools";
/// The mingw-w64 linker.
pub const LINKER: &str = "x86_64-w64-mingw32-gcc";
/// (package, executable) of every tool.
pub const TOOLS: [(&str, &str); 2] = [
    ("xenbus-monitor", "xenbus_monitor.exe"),
    ("xenbus-coinst", "xenbus-coinst.exe"),
];

/// Makes sure the rustup target and the mingw-w64 linker are installed.
pub fn provision() -> Result<(), String> {
    let installed =
        crate::env::output(Command::new("rustup").args(["target", "list", "--installed"]))
            .is_ok_and(|text| text.lines().any(|l| l.trim() == TARGET));
    if !installed {
        crate::env::run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }
    crate::env::ensure_program(LINKER, "gcc-mingw-w64-x86-64")
}

/// Builds both tools; returns the paths of the executables.
pub fn build() -> Result<Vec<PathBuf>, String> {
    provision()?;
    let mut cmd = crate::env::cargo();
    cmd.args(["build", "--profile", PROFILE, "--target", TARGET])
        .env(linker_variable(), LINKER);
    for (package, _) in TOOLS {
        cmd.args(["-p", package]);
    }
    crate::env::run(&mut cmd)?;
    let out = crate::env::target_dir().join(TARGET).join(PROFILE);
    TOOLS
        .iter()
        .map(|(_, exe)| {
            let path = out.join(exe);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} was not produced", path.display()))
            }
        })
        .collect()
}

fn linker_variable() -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        TARGET.replace('-', "_").to_uppercase()
    )
}

/// `cargo clippy` of the tools' Windows-only code (the live registry, the service glue),
/// which host clippy never compiles. Run by `cargo xtask test`.
pub fn clippy() -> Result<(), String> {
    provision()?;
    let mut cmd = crate::env::cargo();
    cmd.args(["clippy", "--target", TARGET, "--all-targets"]);
    for (package, _) in TOOLS {
        cmd.args(["-p", package]);
    }
    cmd.args(["--", "-D", "warnings"]);
    crate::env::run(&mut cmd)
}

/// Builds the tools and copies them into `dir`; returns the copied paths.
pub fn package(dir: &Path) -> Result<Vec<PathBuf>, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut copied = Vec::new();
    for exe in build()? {
        let name = exe.file_name().ok_or("tool without a file name")?;
        let dest = dir.join(name);
        fs::copy(&exe, &dest).map_err(|e| format!("copy to {}: {e}", dest.display()))?;
        copied.push(dest);
    }
    Ok(copied)
}

/// Checks that a file is a 64-bit Windows console/GUI executable (PE32+, AMD64).
pub fn check_pe(path: &Path) -> Result<(), String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |o: usize, n: usize| {
        bytes
            .get(o..o + n)
            .ok_or(format!("{}: truncated", path.display()))
    };
    if at(0, 2)? != b"MZ" {
        return Err(format!("{}: no MZ header", path.display()));
    }
    let pe = u32::from_le_bytes(at(0x3C, 4)?.try_into().map_err(|_| "header")?) as usize;
    if at(pe, 4)? != b"PE\0\0" {
        return Err(format!("{}: no PE signature", path.display()));
    }
    let machine = u16::from_le_bytes(at(pe + 4, 2)?.try_into().map_err(|_| "header")?);
    let magic = u16::from_le_bytes(at(pe + 24, 2)?.try_into().map_err(|_| "header")?);
    if machine != 0x8664 || magic != 0x20B {
        return Err(format!(
            "{}: machine {machine:#x}, optional header magic {magic:#x}; want AMD64 PE32+",
            path.display()
        ));
    }
    Ok(())
}

/// `cargo xtask wintools [DIR]` (default `target/dist/xenbus/x64`).
pub fn main(args: &[String]) -> std::process::ExitCode {
    let dir = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::env::target_dir().join("dist/xenbus/x64"));
    match package(&dir).and_then(|paths| {
        for p in &paths {
            check_pe(p)?;
        }
        Ok(paths)
    }) {
        Ok(paths) => {
            for p in paths {
                println!("wintools: {}", p.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wintools: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pe_check_rejects_non_images() {
        let dir = std::env::temp_dir().join(format!("xtask-wintools-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.exe");
        fs::write(&f, b"MZ").unwrap();
        assert!(check_pe(&f).unwrap_err().contains("truncated"));
        let mut img = vec![0u8; 0x200];
        img[..2].copy_from_slice(b"MZ");
        img[0x3C] = 0x80;
        img[0x80..0x84].copy_from_slice(b"PE\0\0");
        img[0x84..0x86].copy_from_slice(&0x14Cu16.to_le_bytes());
        img[0x98..0x9A].copy_from_slice(&0x10Bu16.to_le_bytes());
        fs::write(&f, &img).unwrap();
        assert!(check_pe(&f).unwrap_err().contains("want AMD64 PE32+"));
        img[0x84..0x86].copy_from_slice(&0x8664u16.to_le_bytes());
        img[0x98..0x9A].copy_from_slice(&0x20Bu16.to_le_bytes());
        fs::write(&f, &img).unwrap();
        check_pe(&f).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
