//! Parsing the `SystemModuleInformation` reply of `ZwQuerySystemInformation`
//! (`RTL_PROCESS_MODULES`): the loaded kernel images. Pure and bounds-checked; tested on the
//! host with built replies.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER};

use crate::os::ModuleInfo;

/// `SystemModuleInformation`.
pub const SYSTEM_MODULE_INFORMATION: u32 = 11;
/// Size of one `RTL_PROCESS_MODULE_INFORMATION` on x64.
pub const ENTRY_SIZE: usize = 0x128;
/// Offset of the first entry (after `ULONG NumberOfModules` and padding).
pub const FIRST_ENTRY: usize = 8;
const IMAGE_BASE: usize = 0x10;
const IMAGE_SIZE: usize = 0x18;
const FULL_PATH_NAME: usize = 0x28;
const FULL_PATH_LEN: usize = 256;

fn read<const N: usize>(buffer: &[u8], offset: usize) -> Option<[u8; N]> {
    buffer.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// The modules of a reply of `length` valid bytes. Names are the full path as the kernel
/// reports it (ANSI, up to the first NUL).
pub fn parse(buffer: &[u8], length: usize) -> Result<Vec<ModuleInfo>, NtStatus> {
    let buffer = buffer.get(..length).ok_or(STATUS_INVALID_PARAMETER)?;
    let count = u32::from_le_bytes(read::<4>(buffer, 0).ok_or(STATUS_INVALID_PARAMETER)?) as usize;
    let needed = count
        .checked_mul(ENTRY_SIZE)
        .and_then(|n| n.checked_add(FIRST_ENTRY));
    if needed.is_none_or(|n| n > buffer.len()) {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mut modules = Vec::with_capacity(count);
    for index in 0..count {
        let entry = buffer
            .get(FIRST_ENTRY + index * ENTRY_SIZE..FIRST_ENTRY + (index + 1) * ENTRY_SIZE)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let base =
            u64::from_le_bytes(read::<8>(entry, IMAGE_BASE).ok_or(STATUS_INVALID_PARAMETER)?);
        let size =
            u32::from_le_bytes(read::<4>(entry, IMAGE_SIZE).ok_or(STATUS_INVALID_PARAMETER)?);
        let path = entry
            .get(FULL_PATH_NAME..FULL_PATH_NAME + FULL_PATH_LEN)
            .ok_or(STATUS_INVALID_PARAMETER)?;
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let name: String = path
            .get(..end)
            .unwrap_or(&[])
            .iter()
            .map(|&b| char::from(b))
            .collect();
        modules.push(ModuleInfo {
            base: base as usize,
            size: size as usize,
            name,
        });
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(modules: &[(u64, u32, &str)]) -> Vec<u8> {
        let mut out = vec![0u8; FIRST_ENTRY + modules.len() * ENTRY_SIZE];
        out[..4].copy_from_slice(&(modules.len() as u32).to_le_bytes());
        for (i, (base, size, name)) in modules.iter().enumerate() {
            let e = FIRST_ENTRY + i * ENTRY_SIZE;
            out[e + IMAGE_BASE..e + IMAGE_BASE + 8].copy_from_slice(&base.to_le_bytes());
            out[e + IMAGE_SIZE..e + IMAGE_SIZE + 4].copy_from_slice(&size.to_le_bytes());
            out[e + FULL_PATH_NAME..e + FULL_PATH_NAME + name.len()]
                .copy_from_slice(name.as_bytes());
        }
        out
    }

    #[test]
    fn modules_are_read() {
        let data = reply(&[
            (
                0xFFFF_F800_1000_0000,
                0x9A_0000,
                "\\SystemRoot\\system32\\ntoskrnl.exe",
            ),
            (
                0xFFFF_F800_2000_0000,
                0x2_0000,
                "\\SystemRoot\\System32\\drivers\\xen.sys",
            ),
        ]);
        let modules = parse(&data, data.len()).expect("parse");
        assert_eq!(modules.len(), 2);
        assert_eq!(modules[1].base, 0xFFFF_F800_2000_0000);
        assert_eq!(modules[1].size, 0x2_0000);
        assert_eq!(modules[1].name, "\\SystemRoot\\System32\\drivers\\xen.sys");
    }

    #[test]
    fn lying_counts_are_refused() {
        let mut data = reply(&[(1, 2, "a")]);
        data[..4].copy_from_slice(&2u32.to_le_bytes());
        assert_eq!(parse(&data, data.len()), Err(STATUS_INVALID_PARAMETER));
        data[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse(&data, data.len()), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(parse(&data, data.len() + 1), Err(STATUS_INVALID_PARAMETER));
        assert_eq!(parse(&[1, 0], 2), Err(STATUS_INVALID_PARAMETER));
        // A name filling the whole field (no NUL) is taken whole.
        let long = "n".repeat(FULL_PATH_LEN);
        let data = reply(&[(1, 2, &long)]);
        assert_eq!(
            parse(&data, data.len()).expect("parse")[0].name.len(),
            FULL_PATH_LEN
        );
    }
}
