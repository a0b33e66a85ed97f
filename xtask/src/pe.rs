//! Static checks of a kernel image with the `object` crate: machine, subsystem,
//! DllCharacteristics, PE checksum, import and export tables. Plus the image mutations the
//! negative tests use to prove each check can fail.

use std::collections::BTreeSet;

use object::pe;
use object::read::pe::{ImageNtHeaders, PeFile64};
use object::LittleEndian as LE;

use crate::sys::Driver;

/// The outcome of one check on one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Short name of the check (stable: tests look for it).
    pub name: &'static str,
    /// Whether the image passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// DLLs a kernel image of the package may import from (compared case-insensitively).
pub const KERNEL_DLLS: [&str; 2] = ["ntoskrnl.exe", "hal.dll"];
/// Exports every export driver has besides its API, kept out of import libraries.
pub const PRIVATE_EXPORTS: &[&str] = xen_include::api::PRIVATE_EXPORT_NAMES;
/// DllCharacteristics every image must have.
pub const REQUIRED_DLL_CHARACTERISTICS: u16 = pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT
    | pe::IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE
    | pe::IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY;

/// File offset of the optional header's CheckSum field.
pub fn checksum_offset(data: &[u8]) -> Option<usize> {
    let lfanew = u32::from_le_bytes(data.get(0x3C..0x40)?.try_into().ok()?) as usize;
    let offset = lfanew.checked_add(4 + 20 + 64)?;
    (offset + 4 <= data.len()).then_some(offset)
}

/// The PE image checksum (as `CheckSumMappedFile` computes it): 16-bit one's-complement-style
/// sum of the file with the CheckSum field taken as zero, plus the file length.
pub fn compute_checksum(data: &[u8], checksum_offset: usize) -> u32 {
    let mut sum: u64 = 0;
    for (index, chunk) in data.chunks(2).enumerate() {
        let offset = index * 2;
        if offset == checksum_offset || offset == checksum_offset + 2 {
            continue;
        }
        let word = u64::from(chunk[0]) | (u64::from(chunk.get(1).copied().unwrap_or(0)) << 8);
        sum += word;
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    sum = (sum & 0xFFFF) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

/// Rewrite the CheckSum field to the correct value.
pub fn fix_checksum(data: &mut [u8]) -> Result<(), String> {
    let offset = checksum_offset(data).ok_or("no PE header")?;
    let sum = compute_checksum(data, offset);
    data[offset..offset + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// Run every static check of `driver`'s image. `api` is the xen.sys API (the export list
/// beyond [`PRIVATE_EXPORTS`]); only used for the export driver.
pub fn check_image(data: &[u8], driver: &Driver, api: &[String]) -> Vec<Check> {
    let file = match PeFile64::parse(data) {
        Ok(file) => file,
        Err(e) => return vec![Check::new("pe64", false, format!("not a PE32+ image: {e}"))],
    };
    let mut checks = vec![Check::new("pe64", true, "PE32+ image")];
    let nt = file.nt_headers();
    let machine = nt.file_header().machine.get(LE);
    checks.push(Check::new(
        "machine",
        machine == pe::IMAGE_FILE_MACHINE_AMD64,
        format!("{machine:#06x} (AMD64 = 0x8664)"),
    ));
    let optional = nt.optional_header();
    let subsystem = object::read::pe::ImageOptionalHeader::subsystem(optional);
    checks.push(Check::new(
        "subsystem",
        subsystem == pe::IMAGE_SUBSYSTEM_NATIVE,
        format!("{subsystem} (NATIVE = 1)"),
    ));
    let characteristics = object::read::pe::ImageOptionalHeader::dll_characteristics(optional);
    checks.push(Check::new(
        "dll-characteristics",
        characteristics & REQUIRED_DLL_CHARACTERISTICS == REQUIRED_DLL_CHARACTERISTICS,
        format!("{characteristics:#06x} (needs NX_COMPAT|DYNAMIC_BASE|FORCE_INTEGRITY = {REQUIRED_DLL_CHARACTERISTICS:#06x})"),
    ));
    let stored = object::read::pe::ImageOptionalHeader::check_sum(optional);
    let computed = checksum_offset(data).map(|offset| compute_checksum(data, offset));
    checks.push(Check::new(
        "checksum",
        stored != 0 && Some(stored) == computed,
        format!(
            "stored {stored:#010x}, computed {:#010x}",
            computed.unwrap_or(0)
        ),
    ));
    let entry = object::read::pe::ImageOptionalHeader::address_of_entry_point(optional);
    checks.push(Check::new(
        "entry-point",
        entry != 0,
        format!("RVA {entry:#x}"),
    ));
    checks.push(check_imports(&file, driver));
    checks.push(check_exports(&file, driver, api));
    checks
}

fn check_imports(file: &PeFile64<'_>, driver: &Driver) -> Check {
    let table = match file.import_table() {
        Ok(Some(table)) => table,
        Ok(None) => return Check::new("imports", false, "no import table"),
        Err(e) => return Check::new("imports", false, format!("bad import table: {e}")),
    };
    let mut dlls = Vec::new();
    let mut descriptors = match table.descriptors() {
        Ok(descriptors) => descriptors,
        Err(e) => return Check::new("imports", false, format!("bad import descriptors: {e}")),
    };
    loop {
        match descriptors.next() {
            Ok(Some(descriptor)) => match table.name(descriptor.name.get(LE)) {
                Ok(name) => dlls.push(String::from_utf8_lossy(name).into_owned()),
                Err(e) => return Check::new("imports", false, format!("bad DLL name: {e}")),
            },
            Ok(None) => break,
            Err(e) => return Check::new("imports", false, format!("bad import descriptor: {e}")),
        }
    }
    let allowed = |dll: &str| {
        KERNEL_DLLS.iter().any(|k| k.eq_ignore_ascii_case(dll))
            || (!driver.export_driver && dll.eq_ignore_ascii_case("xen.sys"))
    };
    let bad: Vec<&String> = dlls.iter().filter(|dll| !allowed(dll)).collect();
    let has_kernel = dlls.iter().any(|d| d.eq_ignore_ascii_case("ntoskrnl.exe"));
    let ok = bad.is_empty() && has_kernel;
    let mut detail = format!("from {}", dlls.join(", "));
    if !bad.is_empty() {
        detail.push_str(&format!(
            "; not allowed: {}",
            bad.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Check::new("imports", ok, detail)
}

fn check_exports(file: &PeFile64<'_>, driver: &Driver, api: &[String]) -> Check {
    let exports: BTreeSet<String> = match file.export_table() {
        Ok(Some(table)) => match table.exports() {
            Ok(exports) => exports
                .iter()
                .map(|e| String::from_utf8_lossy(e.name.unwrap_or(b"<ordinal>")).into_owned())
                .collect(),
            Err(e) => return Check::new("exports", false, format!("bad export table: {e}")),
        },
        Ok(None) => BTreeSet::new(),
        Err(e) => return Check::new("exports", false, format!("bad export directory: {e}")),
    };
    let expected: BTreeSet<String> = if driver.export_driver {
        PRIVATE_EXPORTS
            .iter()
            .map(|s| s.to_string())
            .chain(api.iter().cloned())
            .collect()
    } else {
        BTreeSet::new()
    };
    let missing: Vec<&String> = expected.difference(&exports).collect();
    let extra: Vec<&String> = exports.difference(&expected).collect();
    let ok = missing.is_empty() && extra.is_empty();
    let detail = if ok {
        if exports.is_empty() {
            "none".to_string()
        } else {
            format!(
                "exactly {} ({} PRIVATE + the {} API functions of xen_include::api)",
                exports.len(),
                PRIVATE_EXPORTS.join(" and "),
                api.len()
            )
        }
    } else {
        format!("missing {missing:?}, unexpected {extra:?}")
    };
    Check::new("exports", ok, detail)
}

/// A deliberate defect for the negative tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Defect {
    /// Subsystem WINDOWS_CUI instead of NATIVE (checksum kept correct).
    Subsystem,
    /// NX_COMPAT cleared (checksum kept correct).
    NoNx,
    /// The ntoskrnl.exe import renamed to the user-mode kernel32.dll (checksum kept correct).
    UserModeImport,
    /// CheckSum off by one.
    Checksum,
    /// One byte of code changed after signing (checksum kept correct).
    Tampered,
    /// The export `XenTouch` renamed `XenTouci` (export drivers only; checksum kept correct).
    RenamedExport,
}

impl Defect {
    /// Every defect.
    pub const ALL: [Defect; 6] = [
        Defect::RenamedExport,
        Defect::Subsystem,
        Defect::NoNx,
        Defect::UserModeImport,
        Defect::Checksum,
        Defect::Tampered,
    ];

    /// The check that must fail on an image with this defect.
    pub const fn failing_check(self) -> &'static str {
        match self {
            Defect::Subsystem => "subsystem",
            Defect::NoNx => "dll-characteristics",
            Defect::UserModeImport => "imports",
            Defect::Checksum => "checksum",
            Defect::Tampered => "signature",
            Defect::RenamedExport => "exports",
        }
    }

    /// Short name for file names and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Defect::Subsystem => "subsystem",
            Defect::NoNx => "no-nx",
            Defect::UserModeImport => "user-mode-import",
            Defect::Checksum => "checksum",
            Defect::Tampered => "tampered",
            Defect::RenamedExport => "renamed-export",
        }
    }

    /// Whether the defect can be made in `driver`'s image.
    pub const fn applies_to(self, driver: &Driver) -> bool {
        match self {
            Defect::RenamedExport => driver.export_driver,
            _ => true,
        }
    }

    /// Apply the defect to an image.
    pub fn apply(self, data: &mut [u8]) -> Result<(), String> {
        let offset = checksum_offset(data).ok_or("no PE header")?;
        // Optional header field offsets relative to CheckSum (PE32+): Subsystem +4,
        // DllCharacteristics +6.
        match self {
            Defect::Subsystem => {
                data[offset + 4..offset + 6]
                    .copy_from_slice(&pe::IMAGE_SUBSYSTEM_WINDOWS_CUI.to_le_bytes());
            }
            Defect::NoNx => {
                let old = u16::from_le_bytes([data[offset + 6], data[offset + 7]]);
                let new = old & !pe::IMAGE_DLLCHARACTERISTICS_NX_COMPAT;
                data[offset + 6..offset + 8].copy_from_slice(&new.to_le_bytes());
            }
            Defect::UserModeImport => {
                let needle = b"ntoskrnl.exe\0";
                let at = data
                    .windows(needle.len())
                    .position(|w| w == needle)
                    .ok_or("no ntoskrnl.exe import name")?;
                data[at..at + needle.len()].copy_from_slice(b"kernel32.dll\0");
            }
            Defect::Checksum => {
                let old =
                    u32::from_le_bytes(data[offset..offset + 4].try_into().map_err(|_| "short")?);
                data[offset..offset + 4].copy_from_slice(&old.wrapping_add(1).to_le_bytes());
                return Ok(());
            }
            Defect::RenamedExport => {
                let needle = b"XenTouch\0";
                let at = data
                    .windows(needle.len())
                    .position(|w| w == needle)
                    .ok_or("no XenTouch export name")?;
                data[at..at + needle.len()].copy_from_slice(b"XenTouci\0");
            }
            Defect::Tampered => {
                let file = PeFile64::parse(&data[..]).map_err(|e| e.to_string())?;
                let text = file
                    .section_table()
                    .iter()
                    .find(|s| &s.name[..5] == b".text")
                    .ok_or("no .text section")?;
                let at = text.pointer_to_raw_data.get(LE) as usize + 16;
                data[at] ^= 0xFF;
            }
        }
        fix_checksum(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny buffer with e_lfanew = 0x40, so CheckSum sits at 0x40 + 88 = 0x98.
    fn synthetic(len: usize) -> Vec<u8> {
        let mut data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        data[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        data
    }

    /// Straightforward reference: sum all words except the field, fold, add length.
    fn reference(data: &[u8], skip: usize) -> u32 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            if i != skip && i != skip + 2 {
                let lo = u32::from(data[i]);
                let hi = u32::from(*data.get(i + 1).unwrap_or(&0));
                sum += lo | (hi << 8);
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
            i += 2;
        }
        (sum & 0xFFFF) + (sum >> 16) + data.len() as u32
    }

    #[test]
    fn checksum_matches_reference_and_ignores_the_field() {
        for len in [0x100, 0x101, 0x1000, 0x1235] {
            let mut data = synthetic(len);
            let offset = checksum_offset(&data).expect("offset");
            assert_eq!(offset, 0x98);
            let sum = compute_checksum(&data, offset);
            assert_eq!(sum, reference(&data, offset));
            // The stored field does not change the sum, and fix_checksum stores it.
            fix_checksum(&mut data).expect("fix");
            assert_eq!(compute_checksum(&data, offset), sum);
            assert_eq!(
                u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4")),
                sum
            );
            // Any other byte does.
            data[0x200 % len] ^= 1;
            assert_ne!(compute_checksum(&data, offset), sum);
        }
    }

    #[test]
    fn known_checksum_of_a_tiny_file() {
        // 0x100 bytes of zero except e_lfanew: the only word is 0x0040, plus length 0x100.
        let mut data = vec![0u8; 0x100];
        data[0x3C] = 0x40;
        assert_eq!(compute_checksum(&data, 0x98), 0x40 + 0x100);
    }

    #[test]
    fn garbage_is_not_a_pe() {
        let driver = crate::sys::DRIVERS[1];
        let checks = check_image(b"MZ not really", &driver, &[]);
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].ok);
    }
}
