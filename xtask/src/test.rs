//! `cargo xtask test`: THE test command. Runs every section in [`SECTIONS`] in order, prints
//! PASS/FAIL with timing for each, and ends with `sections: N passed, M failed`; exits
//! non-zero when any section fails. `.ci/run` calls exactly this with `CI=true`.

use std::time::Instant;

use crate::pe::Defect;
use crate::sys::DRIVERS;
use crate::{dist, env, sign, sys, verify};

/// What a section runs.
pub enum Run {
    /// `cargo <args>` in the workspace root.
    Cargo(&'static [&'static str]),
    /// A function of xtask.
    Task(fn() -> Result<(), String>),
    /// `cargo xtask <args>` (in a child process).
    Xtask(&'static [&'static str]),
}

/// The sections, in order. Adding a section is one line here.
pub const SECTIONS: &[(&str, Run)] = &[
    ("fmt", Run::Cargo(&["fmt", "--all", "--check"])),
    (
        "clippy",
        Run::Cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    ),
    ("clippy-windows", Run::Task(sys::clippy_windows)),
    ("cargo-test", Run::Cargo(&["test", "--workspace"])),
    ("demo", Run::Xtask(&["demo"])),
    ("clippy-windows-tools", Run::Task(crate::wintools::clippy)),
    ("pytest", Run::Xtask(&["pytest"])),
    ("check-upgrade", Run::Xtask(&["check-upgrade-selftest"])),
    ("dist", Run::Task(dist::run)),
    ("infcheck", Run::Xtask(&["infcheck"])),
    ("verify", Run::Task(verify_dist)),
    ("verify-rejects-broken", Run::Task(verify_rejects_broken)),
    ("rig", Run::Task(crate::rig::test_section)),
];

fn verify_dist() -> Result<(), String> {
    verify::command(&[])
}

/// Feed verify one broken copy of each image per [`Defect`] and require the matching check
/// to fail (and the `verify` command to exit non-zero).
fn verify_rejects_broken() -> Result<(), String> {
    let api = verify::xen_api();
    let ca = sign::cert_dir().join("xenbus-test.pem");
    let work = env::target_dir().join("verify-negative");
    let mut problems = Vec::new();
    for defect in Defect::ALL {
        let dir = work.join(defect.name());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        for driver in DRIVERS {
            if !defect.applies_to(&driver) {
                continue;
            }
            let source = dist::package_dir().join(driver.image);
            let mut data = std::fs::read(&source)
                .map_err(|e| format!("{}: {e} (run dist first)", source.display()))?;
            defect.apply(&mut data)?;
            let broken = dir.join(driver.image);
            std::fs::write(&broken, &data)
                .map_err(|e| format!("write {}: {e}", broken.display()))?;
            let checks = verify::check_one(&driver, &broken, &api, &ca, None);
            let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
            let caught = failed.contains(&defect.failing_check());
            println!(
                "verify-rejects-broken {:<12} {:<17} {}  failed checks: {}",
                driver.image,
                defect.name(),
                if caught { "PASS" } else { "FAIL" },
                failed.join(", ")
            );
            if !caught {
                problems.push(format!(
                    "{} with defect {} passed check {}",
                    driver.image,
                    defect.name(),
                    defect.failing_check()
                ));
            }
        }
    }
    // The command itself must exit non-zero on a broken package.
    let dir = work.join(Defect::UserModeImport.name());
    let status = env::cargo()
        .args([
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "verify",
            "--no-emulate",
        ])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run xtask verify: {e}"))?;
    println!(
        "verify-rejects-broken `cargo xtask verify {}` exit: {status}",
        dir.display()
    );
    if status.success() {
        problems.push("`cargo xtask verify` exited 0 on a broken package".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `cargo xtask test [--only a,b] [--skip a,b] [--list]`.
pub fn command(args: &[String]) -> Result<(), String> {
    let mut only: Option<Vec<String>> = None;
    let mut skip: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let list = |v: Option<&String>| -> Result<Vec<String>, String> {
            Ok(v.ok_or(format!("{arg} needs a comma-separated list"))?
                .split(',')
                .map(str::to_string)
                .collect())
        };
        match arg.as_str() {
            "--only" => only = Some(list(args.next())?),
            "--skip" => skip = list(args.next())?,
            "--list" => {
                for (name, _) in SECTIONS {
                    println!("{name}");
                }
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    for name in only.iter().flatten().chain(skip.iter()) {
        if !SECTIONS.iter().any(|(n, _)| n == name) {
            return Err(format!("no section named {name:?} (see --list)"));
        }
    }
    let started = Instant::now();
    let mut results = Vec::new();
    for (name, run) in SECTIONS {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name))
            || skip.iter().any(|n| n == name)
        {
            continue;
        }
        println!("\n==> section {name}");
        let start = Instant::now();
        let result = match run {
            Run::Cargo(args) => env::run(env::cargo().args(*args)),
            Run::Task(task) => task(),
            // Through cargo, so a rebuilt xtask binary is used, not a deleted one.
            Run::Xtask(args) => env::run(
                env::cargo()
                    .args(["run", "--quiet", "-p", "xtask", "--"])
                    .args(*args),
            ),
        };
        let seconds = start.elapsed().as_secs_f64();
        match &result {
            Ok(()) => println!("==> PASS {name} ({seconds:.1}s)"),
            Err(e) => println!("==> FAIL {name} ({seconds:.1}s): {e}"),
        }
        results.push((*name, result.is_ok(), seconds));
    }
    println!("\nsummary ({:.1}s):", started.elapsed().as_secs_f64());
    for (name, ok, seconds) in &results {
        println!(
            "  {} {name:<24} {seconds:>7.1}s",
            if *ok { "PASS" } else { "FAIL" }
        );
    }
    let passed = results.iter().filter(|r| r.1).count();
    let failed = results.len() - passed;
    println!("sections: {passed} passed, {failed} failed");
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} section(s) failed"))
    }
}
