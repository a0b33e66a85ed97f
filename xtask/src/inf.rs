//! Stamping of the package INF template `inf/xenbus.inx` into `xenbus.inf`.
//!
//! Every `@TOKEN@` of the template is replaced by its value; a line that holds a token whose
//! value is empty is dropped (the build switch for the vendor device model line and the
//! `; @FORCE_ACTIVATE@` lines). Values come from the root crate `xenbus-rs` (stamped by its
//! `build.rs` from the same environment variables as the drivers), from `FORCE_ACTIVATE`, and
//! from the build date (`SOURCE_DATE_EPOCH` when set, for reproducible packages).
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

/// The PCI vendor ID of the Xen platform device ("XS"); xenbus refuses any other vendor.
pub const PLATFORM_VENDOR_ID: u16 = xen_include::platform::XEN_PLATFORM_VENDOR_ID;
/// The generic platform PCI device IDs every build binds to.
pub const PLATFORM_DEVICE_IDS: [u16; 2] = [
    xen_include::platform::XEN_PLATFORM_DEVICE_ID,
    xen_include::platform::XEN_PLATFORM_DEVICE_ID_XENSERVER,
];
/// The name of the package catalog (made by inf2cat on Windows).
pub const CATALOG_NAME: &str = "xenbus.cat";
/// The file name of the stamped INF.
pub const INF_NAME: &str = "xenbus.inf";
/// The file name of the template, relative to the workspace root.
pub const TEMPLATE_PATH: &str = "inf/xenbus.inx";

/// The architecture an INF is stamped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit x86 (`NTamd64`), the only architecture this package is built for.
    X64,
}

impl Arch {
    /// The INF decoration suffix (`amd64` / `x86`).
    pub fn inf_name(self) -> &'static str {
        match self {
            Arch::X64 => "amd64",
        }
    }
    /// The package directory name (`x64` / `x86`).
    pub fn dir_name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
        }
    }
}

/// Everything the template's tokens are stamped from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampConfig {
    /// `MAJOR_VERSION`.
    pub major: u32,
    /// `MINOR_VERSION`.
    pub minor: u32,
    /// `MICRO_VERSION`.
    pub micro: u32,
    /// `BUILD_NUMBER`.
    pub build: u32,
    /// `VENDOR_NAME` (the INF provider).
    pub vendor_name: String,
    /// `VENDOR_PREFIX`.
    pub vendor_prefix: String,
    /// `PRODUCT_NAME`.
    pub product_name: String,
    /// `VENDOR_DEVICE_ID`: four hex digits, or `None` for no vendor device.
    pub vendor_device_id: Option<String>,
    /// `COPYRIGHT`.
    pub copyright: String,
    /// `FORCE_ACTIVATE`: any non-empty value keeps the `; @FORCE_ACTIVATE@` lines.
    pub force_activate: Option<String>,
    /// DriverVer date as (year, month, day).
    pub date: (u32, u32, u32),
    /// Target architecture.
    pub arch: Arch,
    /// Catalog file name.
    pub catalog: String,
    /// Source revision recorded in a comment (dropped when unknown).
    pub git_revision: Option<String>,
}

impl StampConfig {
    /// The configuration of this build: constants of the root crate, `FORCE_ACTIVATE`,
    /// today's date (or `SOURCE_DATE_EPOCH`), x64, `xenbus.cat`, the git revision if known.
    pub fn from_build() -> Self {
        let force_activate = std::env::var("FORCE_ACTIVATE")
            .ok()
            .filter(|v| !v.is_empty());
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            });
        let git_revision = Command::new("git")
            .args(["rev-parse", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty());
        StampConfig {
            major: xenbus_rs::MAJOR_VERSION,
            minor: xenbus_rs::MINOR_VERSION,
            micro: xenbus_rs::MICRO_VERSION,
            build: xenbus_rs::BUILD_NUMBER,
            vendor_name: xenbus_rs::VENDOR_NAME.to_string(),
            vendor_prefix: xenbus_rs::VENDOR_PREFIX.to_string(),
            product_name: xenbus_rs::PRODUCT_NAME.to_string(),
            vendor_device_id: xenbus_rs::VENDOR_DEVICE_ID.map(|v| v.to_ascii_uppercase()),
            copyright: xenbus_rs::COPYRIGHT.to_string(),
            force_activate,
            date: civil_from_days((epoch / 86_400) as i64),
            arch: Arch::X64,
            catalog: CATALOG_NAME.to_string(),
            git_revision,
        }
    }

    /// The `DriverVer` value, `MM/DD/YYYY,major.minor.micro.build`.
    pub fn driver_ver(&self) -> String {
        let (y, m, d) = self.date;
        format!(
            "{m:02}/{d:02}/{y:04},{}.{}.{}.{}",
            self.major, self.minor, self.micro, self.build
        )
    }

    /// Every token the template may use, with its value ("" = drop the line).
    pub fn tokens(&self) -> Vec<(&'static str, String)> {
        let (y, m, d) = self.date;
        vec![
            ("MAJOR_VERSION", self.major.to_string()),
            ("MINOR_VERSION", self.minor.to_string()),
            ("MICRO_VERSION", self.micro.to_string()),
            ("BUILD_NUMBER", self.build.to_string()),
            ("VENDOR_NAME", self.vendor_name.clone()),
            ("VENDOR_PREFIX", self.vendor_prefix.clone()),
            ("PRODUCT_NAME", self.product_name.clone()),
            (
                "VENDOR_DEVICE_ID",
                self.vendor_device_id.clone().unwrap_or_default(),
            ),
            ("COPYRIGHT", self.copyright.clone()),
            (
                "FORCE_ACTIVATE",
                self.force_activate.clone().unwrap_or_default(),
            ),
            ("INF_DATE", format!("{m:02}/{d:02}/{y:04}")),
            ("INF_ARCH", self.arch.inf_name().to_string()),
            ("CATALOG", self.catalog.clone()),
            (
                "GIT_REVISION",
                self.git_revision.clone().unwrap_or_default(),
            ),
        ]
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
pub fn civil_from_days(days: i64) -> (u32, u32, u32) {
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

/// Finds the `@TOKEN@` names on one line (upper-case letters, digits and `_`).
pub fn line_tokens(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('@') {
        let after = &rest[start + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if len > 0 && after.as_bytes().get(len) == Some(&b'@') {
            found.push(&after[..len]);
            rest = &after[len + 1..];
        } else {
            rest = after;
        }
    }
    found
}

/// Stamps a template: substitutes every token, drops lines holding an empty token, and
/// returns the INF text with CRLF line endings. Unknown tokens are an error.
pub fn stamp(template: &str, cfg: &StampConfig) -> Result<String, String> {
    let tokens = cfg.tokens();
    let value = |name: &str| tokens.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let mut out = String::with_capacity(template.len());
    for (number, line) in template.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let mut drop = false;
        for name in line_tokens(line) {
            match value(name) {
                None => return Err(format!("line {}: unknown token @{name}@", number + 1)),
                Some(v) if v.is_empty() => drop = true,
                Some(_) => {}
            }
        }
        if drop {
            continue;
        }
        let mut stamped = line.to_string();
        for (name, v) in &tokens {
            stamped = stamped.replace(&format!("@{name}@"), v);
        }
        if !stamped.is_ascii() {
            return Err(format!(
                "line {}: stamped text is not ASCII (check VENDOR_NAME, PRODUCT_NAME, COPYRIGHT)",
                number + 1
            ));
        }
        out.push_str(&stamped);
        out.push_str("\r\n");
    }
    Ok(out)
}

/// The workspace root (the parent of the xtask crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Stamps `inf/xenbus.inx` with `cfg` and writes `xenbus.inf` into `out_dir` (created if
/// missing). Called by `cargo xtask dist` with `target/dist/xenbus/x64/`.
pub fn write_inf(out_dir: &Path, cfg: &StampConfig) -> Result<PathBuf, String> {
    let template_path = workspace_root().join(TEMPLATE_PATH);
    let template = fs::read_to_string(&template_path)
        .map_err(|e| format!("{}: {e}", template_path.display()))?;
    let text = stamp(&template, cfg)?;
    fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let path = out_dir.join(INF_NAME);
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// `cargo xtask stamp-inf [DIR]`: writes the stamped INF of this build into DIR
/// (default `target/dist/xenbus/x64`).
pub fn main(args: &[String]) -> std::process::ExitCode {
    let cfg = StampConfig::from_build();
    let dir = args.first().map(PathBuf::from).unwrap_or_else(|| {
        workspace_root()
            .join("target/dist/xenbus")
            .join(cfg.arch.dir_name())
    });
    match write_inf(&dir, &cfg) {
        Ok(path) => {
            println!("stamp-inf: wrote {} ({})", path.display(), cfg.driver_ver());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stamp-inf: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed configuration for tests (no vendor device, no forced activation).
    pub(crate) fn config() -> StampConfig {
        StampConfig {
            major: 9,
            minor: 1,
            micro: 0,
            build: 42,
            vendor_name: "Xen Project".into(),
            vendor_prefix: "XP".into(),
            product_name: "Xen".into(),
            vendor_device_id: None,
            copyright: "Copyright (c) Xen Project.".into(),
            force_activate: None,
            date: (2026, 12, 4),
            arch: Arch::X64,
            catalog: CATALOG_NAME.into(),
            git_revision: None,
        }
    }

    pub(crate) fn template() -> String {
        fs::read_to_string(workspace_root().join(TEMPLATE_PATH)).expect("template")
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
    }

    #[test]
    fn tokens_on_a_line() {
        assert_eq!(line_tokens("a @X@ b @Y_1@ c@"), vec!["X", "Y_1"]);
        assert_eq!(line_tokens("user@example.com"), Vec::<&str>::new());
        assert_eq!(line_tokens("@@A@"), vec!["A"]);
    }

    #[test]
    fn empty_token_drops_the_line_and_unknown_token_fails() {
        let cfg = config();
        let text = stamp("keep @MAJOR_VERSION@\ndrop @VENDOR_DEVICE_ID@\nend\n", &cfg).unwrap();
        assert_eq!(text, "keep 9\r\nend\r\n");
        let err = stamp("x @NOPE@\n", &cfg).unwrap_err();
        assert!(err.contains("unknown token @NOPE@"), "{err}");
        let mut bad = cfg;
        bad.product_name = "Xén".into();
        assert!(stamp("@PRODUCT_NAME@\n", &bad)
            .unwrap_err()
            .contains("not ASCII"));
    }

    #[test]
    fn stamped_default_inf_has_the_expected_content() {
        let text = stamp(&template(), &config()).unwrap();
        assert!(!text.contains('@'), "unsubstituted token left");
        assert!(text.contains("DriverVer=12/04/2026,9.1.0.42\r\n"));
        assert!(text.contains("CatalogFile=xenbus.cat\r\n"));
        assert!(text.contains("PnpLockdown=1\r\n"));
        assert!(text.contains("[Inst.NTamd64]\r\n"));
        assert!(text.contains("%Vendor%=Inst,NTamd64\r\n"));
        assert!(text.contains("PCI\\VEN_5853&DEV_0001\r\n"));
        assert!(text.contains("PCI\\VEN_5853&DEV_0002\r\n"));
        assert!(
            !text.contains("SUBSYS_"),
            "vendor device line must be dropped"
        );
        assert!(
            !text.contains("Precedence"),
            "FORCE_ACTIVATE lines must be dropped"
        );
        assert!(!text.contains("UpperFilters"));
        assert!(text.contains("\"MSISupported\",0x00010001,1"));
        assert!(text.contains("LoadOrderGroup=\"Boot Bus Extender\""));
        assert!(text.contains("HKLM,%UnplugKey%,\"NICS\",0x00010001,0"));
        assert!(text.contains("HKLM,%UnplugKey%,\"DISKS\",0x00010001,0"));
        assert!(text.contains("xenbus_monitor_9_1_0_42.exe,xenbus_monitor.exe"));
        assert!(text.contains("Vendor=\"Xen Project\""));
        // The INF's SupportedClasses are the ones xenbus.sys was written for.
        let classes: Vec<String> = xenbus::fdo::default_supported_classes()
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        let line = format!(
            "HKR,\"Parameters\",\"SupportedClasses\",0x00010000,{}\r\n",
            classes.join(",")
        );
        assert!(text.contains(&line), "{line}");
    }

    #[test]
    fn vendor_device_and_force_activate_variants() {
        let mut cfg = config();
        cfg.vendor_device_id = Some("C000".into());
        cfg.force_activate = Some("1".into());
        let text = stamp(&template(), &cfg).unwrap();
        assert!(text.contains("PCI\\VEN_5853&DEV_C000&SUBSYS_C0005853&REV_01\r\n"));
        assert!(text.contains("\"PCI\\VEN_5853&DEV_C000\",0x00010001,0xC000"));
        assert!(text.contains("\"PCI\\VEN_5853&DEV_0001\",0x00010001,1"));
        assert!(text.contains("HKLM,%SystemClassKey%,\"UpperFilters\",0x00010008,\"XENFILT\""));
        cfg.vendor_device_id = None;
        let text = stamp(&template(), &cfg).unwrap();
        assert!(text.contains("Precedence\",\"PCI\\VEN_5853&DEV_0002\""));
        assert!(!text.contains("0xC000"));
    }

    #[test]
    fn write_inf_writes_the_file() {
        let dir = std::env::temp_dir().join(format!("xtask-inf-{}", std::process::id()));
        let path = write_inf(&dir, &config()).unwrap();
        assert_eq!(path.file_name().unwrap(), INF_NAME);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("; Xen PV Bus package"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
