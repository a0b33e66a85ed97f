//! `cargo xtask check-upgrade --registry FILE.reg`: the install-time compatibility check of
//! `xenbus-coinst check`, run on a regedit export (REGEDIT4 or version 5.00 UTF-16LE) so it
//! works on any host. Exit codes: 0 compatible, 1 vetoed, 2 unreadable input.
use std::{path::Path, process::ExitCode};

use xenbus_coinst::{run_on_reg_file, PackageTables, EXIT_COMPATIBLE, EXIT_INPUT_ERROR};

/// Parses the arguments and runs the check; returns the exit code and the lines to print.
pub fn run(args: &[String]) -> (u8, Vec<String>) {
    match args {
        [flag, file] if flag == "--registry" => {
            run_on_reg_file(Path::new(file), &PackageTables::current())
        }
        _ => (
            EXIT_INPUT_ERROR,
            vec!["usage: cargo xtask check-upgrade --registry FILE.reg".to_string()],
        ),
    }
}

/// Entry point of the subcommand.
pub fn main(args: &[String]) -> ExitCode {
    let (code, lines) = run(args);
    for line in lines {
        if code == EXIT_COMPATIBLE {
            println!("check-upgrade: {line}");
        } else {
            eprintln!("check-upgrade: {line}");
        }
    }
    ExitCode::from(code)
}

const SAMPLE_SERVICES: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services";
const SAMPLE_ENUM: &str = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Enum\\XENBUS";

/// A version 5 export (text; encode with `utf16le_with_bom`) with the given subscriptions (provider, consumer, interface,
/// version) and children (class, revision).
pub fn sample_export(subs: &[(&str, &str, &str, u32)], children: &[(&str, &str)]) -> String {
    let mut text = String::from("Windows Registry Editor Version 5.00\r\n\r\n");
    text.push_str(&format!(
        "[{SAMPLE_SERVICES}\\xenbus]\r\n\"Start\"=dword:00000000\r\n\r\n"
    ));
    for (provider, consumer, iface, v) in subs {
        text.push_str(&format!(
            "[{SAMPLE_SERVICES}\\{provider}\\Interfaces\\{consumer}]\r\n\"{iface}\"=dword:{v:08x}\r\n\r\n"
        ));
    }
    text.push_str(&format!("[{SAMPLE_ENUM}]\r\n\r\n"));
    for (class, rev) in children {
        text.push_str(&format!(
            "[{SAMPLE_ENUM}\\VEN_XP&DEV_{class}\\_]\r\n\"MatchingDeviceId\"=\"xenbus\\\\ven_xp0001&dev_{}&rev_{rev}\"\r\n\"Service\"=\"xen{}\"\r\n\r\n",
            class.to_lowercase(),
            class.to_lowercase()
        ));
    }
    text
}

/// The end-to-end table run by `cargo xtask test`: writes a compatible, a vetoing and a
/// malformed export under `target/check-upgrade/` and runs `xtask check-upgrade` on each,
/// expecting exit codes 0, 1 and 2.
pub fn selftest() -> Result<(), String> {
    let dir = crate::inf::workspace_root().join("target/check-upgrade");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let compatible = sample_export(&[("XENBUS", "XENVIF", "EVTCHN", 9)], &[("VIF", "0900000c")]);
    let vetoed = sample_export(
        &[
            ("XENBUS", "XENVIF", "EVTCHN", 4),
            ("XENFILT", "XENVBD", "EMULATED", 9),
        ],
        &[("VBD", "09000003")],
    );
    let cases: [(&str, Vec<u8>, u8); 3] = [
        (
            "compatible.reg",
            xenbus_coinst::regfile::utf16le_with_bom(&compatible),
            0,
        ),
        (
            "vetoed.reg",
            xenbus_coinst::regfile::utf16le_with_bom(&vetoed),
            1,
        ),
        (
            "malformed.reg",
            b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\SYSTEM]\n\"X\"=dword:xyz\n".to_vec(),
            2,
        ),
    ];
    let exe = std::env::current_exe().map_err(|e| format!("xtask executable: {e}"))?;
    let mut problems = Vec::new();
    for (name, bytes, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let out = std::process::Command::new(&exe)
            .args(["check-upgrade", "--registry"])
            .arg(&path)
            .output()
            .map_err(|e| format!("run {}: {e}", exe.display()))?;
        let code = out.status.code().unwrap_or(-1);
        print!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("check-upgrade {name}: exit {code} (want {want})");
        if code != i32::from(want) {
            problems.push(format!("{name}: exit {code}, want {want}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use xenbus_coinst::{regfile::utf16le_with_bom, EXIT_VETO};

    fn run_bytes(name: &str, bytes: &[u8]) -> (u8, Vec<String>) {
        let dir = std::env::temp_dir().join(format!("xtask-upgrade-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        let out = run(&[
            "--registry".to_string(),
            path.to_string_lossy().into_owned(),
        ]);
        fs::remove_file(&path).unwrap();
        out
    }

    /// The test table of issue 11: (case, export, expected exit code, expected text).
    #[test]
    fn upgrade_table() {
        let export = sample_export;
        let cases: Vec<(&str, Vec<u8>, u8, Vec<&str>)> = vec![
            (
                "compatible upgrade",
                utf16le_with_bom(&export(
                    &[
                        ("XENBUS", "XENVIF", "EVTCHN", 9),
                        ("XENBUS", "XENVBD", "STORE", 2),
                        ("XENFILT", "XENVBD", "EMULATED", 3),
                    ],
                    &[("VIF", "0900000c"), ("VBD", "0900000a")],
                )),
                EXIT_COMPATIBLE,
                vec!["compatible: 3 subscription(s) and 2 installed child(ren) checked"],
            ),
            (
                "compatible upgrade, REGEDIT4",
                export(&[("XENBUS", "XENVIF", "GNTTAB", 4)], &[])
                    .replace("Windows Registry Editor Version 5.00", "REGEDIT4")
                    .into_bytes(),
                EXIT_COMPATIBLE,
                vec!["compatible: 1 subscription(s)"],
            ),
            (
                "removed interface version",
                utf16le_with_bom(&export(&[("XENBUS", "XENVIF", "EVTCHN", 4)], &[])),
                EXIT_VETO,
                vec!["subscriber XENVIF uses XENBUS interface EVTCHN version 4, but the new package serves only versions 5..9"],
            ),
            (
                "retired revision",
                utf16le_with_bom(&export(&[], &[("VBD", "09000005")])),
                EXIT_VETO,
                vec!["XENBUS\\VEN_XP&DEV_VBD\\_ (service xenvbd) is bound to revision 09000005"],
            ),
            (
                "multiple subscribers",
                utf16le_with_bom(&export(
                    &[
                        ("XENBUS", "XENVIF", "CACHE", 3),
                        ("XENBUS", "XENVBD", "CACHE", 2),
                        ("XENBUS", "XENIFACE", "SHARED_INFO", 1),
                        ("XENFILT", "XENVBD", "EMULATED", 0x10),
                    ],
                    &[],
                )),
                EXIT_VETO,
                vec![
                    "subscriber XENVIF uses XENBUS interface CACHE version 3",
                    "subscriber XENIFACE uses XENBUS interface SHARED_INFO version 1",
                    "subscriber XENVBD uses XENFILT interface EMULATED version 16",
                    "3 problem(s)",
                ],
            ),
            (
                "malformed: not an export",
                b"this is not a registry file\n".to_vec(),
                EXIT_INPUT_ERROR,
                vec!["malformed registry export, line 1: header"],
            ),
            (
                "malformed: truncated UTF-16",
                utf16le_with_bom(&export(&[("XENBUS", "XENVIF", "EVTCHN", 9)], &[]))
                    .into_iter()
                    .collect::<Vec<u8>>()
                    .split_last()
                    .map(|(_, rest)| rest.to_vec())
                    .unwrap(),
                EXIT_INPUT_ERROR,
                vec!["odd number of bytes"],
            ),
            (
                "malformed: truncated value",
                export(&[("XENBUS", "XENVIF", "EVTCHN", 9)], &[])
                    .replace("dword:00000009", "dword:")
                    .into_bytes(),
                EXIT_INPUT_ERROR,
                vec!["bad dword"],
            ),
        ];
        for (case, bytes, code, expect) in cases {
            let (got, lines) = run_bytes("case.reg", &bytes);
            assert_eq!(got, code, "{case}: {lines:#?}");
            for e in expect {
                assert!(
                    lines.iter().any(|l| l.contains(e)),
                    "{case}: expected {e:?} in {lines:#?}"
                );
            }
        }
    }

    #[test]
    fn missing_file_and_bad_usage_are_input_errors() {
        let (code, lines) = run(&["--registry".into(), "/nonexistent/x.reg".into()]);
        assert_eq!(code, EXIT_INPUT_ERROR);
        assert!(lines[0].contains("/nonexistent/x.reg"));
        assert_eq!(run(&[]).0, EXIT_INPUT_ERROR);
    }
}
