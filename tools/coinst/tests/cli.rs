//! The `xenbus-coinst` binary: exit codes and messages as installers see them.
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xenbus-coinst"))
        .args(args)
        .output()
        .expect("run xenbus-coinst");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("coinst-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn malformed_input_exits_2_without_panicking() {
    for (name, bytes) in [
        ("garbage.reg", &b"\x00\x01\x02garbage"[..]),
        ("header.reg", &b"REGEDIT5\n"[..]),
        (
            "value.reg",
            &b"REGEDIT4\n[HKEY_LOCAL_MACHINE\\SYSTEM]\n\"A\"=hex(b):01\n"[..],
        ),
    ] {
        let (code, _, err) = run(&["check", "--registry", &write(name, bytes)]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains("error:"), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let (code, _, err) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("usage: xenbus-coinst check"));
}

#[test]
fn veto_and_success_exit_codes() {
    let veto = "REGEDIT4\n\n[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\XENBUS\\Interfaces\\XENNET]\n\"STORE\"=dword:00000001\n";
    let (code, _, err) = run(&["check", "--registry", &write("veto.reg", veto.as_bytes())]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("VETO: subscriber XENNET uses XENBUS interface STORE version 1"));
    let ok = veto.replace("dword:00000001", "dword:00000002");
    let (code, out, _) = run(&["check", "--registry", &write("ok.reg", ok.as_bytes())]);
    assert_eq!(code, 0);
    assert!(out.contains("compatible: 1 subscription(s)"));
}
