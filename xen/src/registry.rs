//! `registry.c` helpers over the `Os` edge: the well-known key paths and typed reads.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use common::os::{KeyHandle, Os, RegValue};
use xen_include::status::{NtStatus, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND};

/// `HKLM\SYSTEM\CurrentControlSet`.
pub const CCS: &str = "SYSTEM\\CurrentControlSet";
/// The xen.sys service key.
pub const SERVICE_PATH: &str = "SYSTEM\\CurrentControlSet\\Services\\XEN";
/// `HKLM\SYSTEM\CurrentControlSet\Control` (holds `SystemStartOptions`).
pub const CONTROL_PATH: &str = "SYSTEM\\CurrentControlSet\\Control";

/// Read a `REG_DWORD`; another type is `STATUS_INVALID_PARAMETER`.
pub fn query_dword(os: &dyn Os, key: KeyHandle, name: &str) -> Result<u32, NtStatus> {
    match os.registry_query(key, name)? {
        RegValue::Dword(v) => Ok(v),
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

/// Read a `REG_SZ`; another type is `STATUS_INVALID_PARAMETER`.
pub fn query_sz(os: &dyn Os, key: KeyHandle, name: &str) -> Result<String, NtStatus> {
    match os.registry_query(key, name)? {
        RegValue::Sz(v) => Ok(v),
        _ => Err(STATUS_INVALID_PARAMETER),
    }
}

/// Run `f` with the key `path` opened (relative to HKLM), closing it afterwards.
pub fn with_key<T>(
    os: &dyn Os,
    path: &str,
    f: impl FnOnce(KeyHandle) -> Result<T, NtStatus>,
) -> Result<T, NtStatus> {
    let key = os.registry_open(None, path)?;
    let result = f(key);
    os.registry_close(key);
    result
}

/// `RegistryQuerySystemStartOption`: the whole space-separated option of
/// `Control\SystemStartOptions` that starts with `prefix`.
pub fn query_system_start_option(os: &dyn Os, prefix: &str) -> Result<String, NtStatus> {
    let options = with_key(os, CONTROL_PATH, |key| {
        query_sz(os, key, "SystemStartOptions")
    })?;
    find_start_option(&options, prefix)
        .map(String::from)
        .ok_or(STATUS_OBJECT_NAME_NOT_FOUND)
}

/// The first space-separated option of `options` that starts with `prefix`.
pub fn find_start_option<'a>(options: &'a str, prefix: &str) -> Option<&'a str> {
    options
        .split(' ')
        .filter(|o| !o.is_empty())
        .find(|o| o.starts_with(prefix))
}

/// The value of a `KEY=VALUE` start option (`XEN:BOOT_EMULATED=TRUE` → `TRUE`).
pub fn start_option_value(os: &dyn Os, key: &str) -> Option<String> {
    query_system_start_option(os, key)
        .ok()
        .and_then(|o| o.get(key.len()..).map(String::from))
}

/// Names of the subkeys of `path`.
pub fn subkeys(os: &dyn Os, path: &str) -> Result<Vec<String>, NtStatus> {
    with_key(os, path, |key| os.registry_subkeys(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_options() {
        let o = " NOEXECUTE=OPTOUT  XEN:BOOT_EMULATED=TRUE XEN:DBG_PRINT=OFF";
        assert_eq!(
            find_start_option(o, "XEN:BOOT_EMULATED="),
            Some("XEN:BOOT_EMULATED=TRUE")
        );
        assert_eq!(find_start_option(o, "XEN:"), Some("XEN:BOOT_EMULATED=TRUE"));
        assert_eq!(find_start_option(o, "NOEXECUTE"), Some("NOEXECUTE=OPTOUT"));
        assert_eq!(find_start_option(o, "SAFEBOOT"), None);
        assert_eq!(find_start_option("", "X"), None);
    }
}
