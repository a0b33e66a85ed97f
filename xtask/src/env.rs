//! The build environment: paths, running commands, and provisioning what a fresh Debian 12
//! machine with only rustup lacks (the Windows target, osslsigncode, a Python venv).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Windows target every driver is built for.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-msvc";

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        None => root().join("target"),
    }
}

/// The cargo binary that runs us (`$CARGO`), or `cargo`.
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root());
    command
}

/// Render a command for logs.
pub fn show(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Run a command with inherited output; error unless it exits with status 0.
pub fn run(command: &mut Command) -> Result<(), String> {
    println!("+ {}", show(command));
    let status = command
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", show(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", show(command)))
    }
}

/// Run a command and capture stdout; error with its stderr unless it exits with 0.
pub fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", show(command)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}{}",
            show(command),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// True when `program` is found on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Install Debian packages with apt-get (root only), running `apt-get update` once first.
pub fn apt_install(packages: &[&str]) -> Result<(), String> {
    static UPDATED: OnceLock<()> = OnceLock::new();
    if !have("apt-get") {
        return Err(format!(
            "apt-get not found: install {} by hand",
            packages.join(" ")
        ));
    }
    let root_user = output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    if !root_user {
        return Err(format!(
            "not root: run `sudo apt-get install {}`",
            packages.join(" ")
        ));
    }
    if UPDATED.get().is_none() {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        let _ = UPDATED.set(());
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Make sure `program` exists, installing Debian `package` when it does not.
pub fn ensure_program(program: &str, package: &str) -> Result<(), String> {
    if have(program) {
        return Ok(());
    }
    println!("xtask: {program} missing, installing Debian package {package}");
    apt_install(&[package])?;
    if have(program) {
        Ok(())
    } else {
        Err(format!(
            "{program} still missing after installing {package}"
        ))
    }
}

/// How the Windows target is compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's toolchain with the target's prebuilt `core` (the normal case).
    Rustup,
    /// Debian's `rustc-web` + `rust-web-src`, building `core`/`alloc` from source.
    DebianBuildStd {
        /// The Debian rustc.
        rustc: PathBuf,
        /// The linker to use when the toolchain ships no `rust-lld`.
        linker: Option<String>,
    },
}

impl Toolchain {
    /// Configure a cargo invocation for this toolchain (environment and `-Z` flags).
    pub fn apply(&self, command: &mut Command) {
        if let Toolchain::DebianBuildStd { rustc, linker } = self {
            command
                .env("RUSTC", rustc)
                .env("RUSTC_BOOTSTRAP", "1")
                .arg("-Zbuild-std=core,alloc");
            if let Some(linker) = linker {
                command.env("CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER", linker);
            }
        }
    }
}

/// Provision the Windows target: `rustup target add` when missing, else Debian's
/// `rustc-web` + `rust-web-src` with build-std.
pub fn windows_toolchain() -> Result<Toolchain, String> {
    static TOOLCHAIN: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    TOOLCHAIN.get_or_init(provision_windows_toolchain).clone()
}

fn provision_windows_toolchain() -> Result<Toolchain, String> {
    if std::env::var_os("XTASK_FORCE_DEBIAN_RUSTC").is_none() && have("rustup") {
        let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
            .unwrap_or_default();
        if installed.lines().any(|l| l.trim() == WINDOWS_TARGET) {
            return Ok(Toolchain::Rustup);
        }
        println!("xtask: Rust target {WINDOWS_TARGET} missing, adding it with rustup");
        match run(Command::new("rustup").args(["target", "add", WINDOWS_TARGET])) {
            Ok(()) => return Ok(Toolchain::Rustup),
            Err(e) => println!(
                "xtask: rustup could not add {WINDOWS_TARGET} ({e}); falling back to Debian's \
                 rustc-web + rust-web-src with -Zbuild-std=core,alloc"
            ),
        }
    }
    let rustc = PathBuf::from("/usr/bin/rustc");
    let src_ok = |rustc: &Path| {
        output(Command::new(rustc).args(["--print", "sysroot"])).is_ok_and(|s| {
            Path::new(s.trim())
                .join("lib/rustlib/src/rust/library/core")
                .is_dir()
        })
    };
    if !rustc.is_file() || !src_ok(&rustc) {
        apt_install(&["rustc-web", "rust-web-src"]).map_err(|e| {
            format!(
                "no way to build for {WINDOWS_TARGET}: rustup cannot add the target and \
                 Debian's rustc-web/rust-web-src cannot be installed ({e})"
            )
        })?;
    }
    if !src_ok(&rustc) {
        return Err(format!(
            "{} has no library sources for build-std",
            rustc.display()
        ));
    }
    let linker = if have("rust-lld") {
        None
    } else {
        ensure_program("lld-link", "lld")?;
        Some("lld-link".to_string())
    };
    Ok(Toolchain::DebianBuildStd { rustc, linker })
}

/// The Python venv under `target/venv` with `packages` installed (created when missing).
/// Returns the venv's `bin` directory.
pub fn python_venv(packages: &[&str]) -> Result<PathBuf, String> {
    let venv = target_dir().join("venv");
    let bin = venv.join("bin");
    if !bin.join("python").is_file() {
        let python = if have("python3") { "python3" } else { "python" };
        if run(Command::new(python).args(["-m", "venv"]).arg(&venv)).is_err() {
            ensure_program("python3", "python3")?;
            apt_install(&["python3-venv"])?;
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        }
    }
    let python = bin.join("python");
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|spec| {
            // "name==version" is installed when pip shows that exact version.
            let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
            let shown = output(Command::new(&python).args(["-m", "pip", "show", name]));
            !shown.is_ok_and(|text| {
                version.is_empty()
                    || text
                        .lines()
                        .any(|l| l.trim() == format!("Version: {version}"))
            })
        })
        .collect();
    if !missing.is_empty() {
        run(Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&missing))?;
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(command: &Command) -> Vec<(String, String)> {
        command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn rustup_toolchain_changes_nothing() {
        let mut command = Command::new("cargo");
        Toolchain::Rustup.apply(&mut command);
        assert!(envs(&command).is_empty());
        assert_eq!(command.get_args().count(), 0);
    }

    #[test]
    fn debian_fallback_builds_core_from_source_with_its_rustc() {
        let mut command = Command::new("cargo");
        command.arg("rustc");
        Toolchain::DebianBuildStd {
            rustc: PathBuf::from("/usr/bin/rustc"),
            linker: Some("lld-link".into()),
        }
        .apply(&mut command);
        let envs = envs(&command);
        assert!(envs.contains(&("RUSTC".into(), "/usr/bin/rustc".into())));
        assert!(envs.contains(&("RUSTC_BOOTSTRAP".into(), "1".into())));
        assert!(envs.contains(&(
            "CARGO_TARGET_X86_64_PC_WINDOWS_MSVC_LINKER".into(),
            "lld-link".into()
        )));
        assert_eq!(show(&command), "cargo rustc -Zbuild-std=core,alloc");
    }
}
