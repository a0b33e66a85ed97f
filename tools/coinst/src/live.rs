//! The live registry of the running Windows system (`HKEY_LOCAL_MACHINE`), read and written
//! through advapi32. Used by `xenbus-coinst check` and the reboot monitor.
#![allow(unsafe_code)]

use core::ptr::{null, null_mut};

use windows_sys::Win32::{
    Foundation::{ERROR_FILE_NOT_FOUND, ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS},
    System::Registry::{
        RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegDeleteValueW, RegEnumKeyExW,
        RegEnumValueW, RegOpenKeyExW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_READ,
        KEY_WRITE, REG_DWORD, REG_OPTION_NON_VOLATILE, REG_OPTION_VOLATILE,
    },
};

use crate::registry::{from_raw, RegValue, RegistryView};

/// `HKEY_LOCAL_MACHINE` of this machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveRegistry;

/// An open key, closed on drop.
pub struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: self.0 was returned by RegOpenKeyExW/RegCreateKeyExW and is closed once.
        unsafe {
            RegCloseKey(self.0);
        }
    }
}

impl Key {
    /// The raw handle (valid while `self` lives).
    pub fn handle(&self) -> HKEY {
        self.0
    }
}

/// A NUL-terminated UTF-16 copy of `s`.
pub fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(core::iter::once(0)).collect()
}

/// Opens `path` below HKLM for reading; `Ok(None)` if it does not exist.
pub fn open(path: &str) -> Result<Option<Key>, String> {
    let name = wide(path);
    let mut key: HKEY = null_mut();
    // SAFETY: `name` is NUL-terminated and outlives the call; `key` is a valid out pointer.
    let rc = unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, name.as_ptr(), 0, KEY_READ, &mut key) };
    match rc {
        ERROR_SUCCESS => Ok(Some(Key(key))),
        ERROR_FILE_NOT_FOUND => Ok(None),
        e => Err(format!("cannot open HKLM\\{path}: error {e}")),
    }
}

/// Creates (or opens) `path` below HKLM for writing; `volatile` keys vanish at reboot.
pub fn create(path: &str, volatile: bool) -> Result<Key, String> {
    let name = wide(path);
    let mut key: HKEY = null_mut();
    let options = if volatile {
        REG_OPTION_VOLATILE
    } else {
        REG_OPTION_NON_VOLATILE
    };
    // SAFETY: `name` is NUL-terminated; the class and security pointers may be null;
    // `key` is a valid out pointer and the disposition pointer may be null.
    let rc = unsafe {
        RegCreateKeyExW(
            HKEY_LOCAL_MACHINE,
            name.as_ptr(),
            0,
            null(),
            options,
            KEY_READ | KEY_WRITE,
            null(),
            &mut key,
            null_mut(),
        )
    };
    if rc == ERROR_SUCCESS {
        Ok(Key(key))
    } else {
        Err(format!("cannot create HKLM\\{path}: error {rc}"))
    }
}

/// Sets REG_DWORD `name` = `value` under `path` (created if needed).
pub fn set_dword(path: &str, name: &str, value: u32) -> Result<(), String> {
    let key = create(path, false)?;
    let name_w = wide(name);
    let data = value.to_le_bytes();
    // SAFETY: the key is open for writing, `name_w` is NUL-terminated and `data` holds
    // exactly the 4 bytes announced.
    let rc = unsafe { RegSetValueExW(key.0, name_w.as_ptr(), 0, REG_DWORD, data.as_ptr(), 4) };
    if rc == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(format!("cannot set HKLM\\{path}\\{name}: error {rc}"))
    }
}

/// Deletes value `name` under `path`; a missing key or value is not an error.
pub fn delete_value(path: &str, name: &str) -> Result<(), String> {
    let Some(key) = open_writable(path)? else {
        return Ok(());
    };
    let name_w = wide(name);
    // SAFETY: the key is open for writing and `name_w` is NUL-terminated.
    let rc = unsafe { RegDeleteValueW(key.0, name_w.as_ptr()) };
    match rc {
        ERROR_SUCCESS | ERROR_FILE_NOT_FOUND => Ok(()),
        e => Err(format!("cannot delete HKLM\\{path}\\{name}: error {e}")),
    }
}

/// Deletes `path` and everything below it; a missing key is not an error.
pub fn delete_tree(path: &str) -> Result<(), String> {
    let name = wide(path);
    // SAFETY: `name` is NUL-terminated and HKLM is a predefined key.
    let rc = unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, name.as_ptr()) };
    match rc {
        ERROR_SUCCESS | ERROR_FILE_NOT_FOUND => Ok(()),
        e => Err(format!("cannot delete HKLM\\{path}: error {e}")),
    }
}

fn open_writable(path: &str) -> Result<Option<Key>, String> {
    let name = wide(path);
    let mut key: HKEY = null_mut();
    // SAFETY: as in `open`.
    let rc = unsafe {
        RegOpenKeyExW(
            HKEY_LOCAL_MACHINE,
            name.as_ptr(),
            0,
            KEY_READ | KEY_WRITE,
            &mut key,
        )
    };
    match rc {
        ERROR_SUCCESS => Ok(Some(Key(key))),
        ERROR_FILE_NOT_FOUND => Ok(None),
        e => Err(format!("cannot open HKLM\\{path}: error {e}")),
    }
}

impl RegistryView for LiveRegistry {
    fn subkeys(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let Some(key) = open(path)? else {
            return Ok(None);
        };
        let mut names = Vec::new();
        for index in 0u32.. {
            let mut buffer = [0u16; 256];
            let mut len = buffer.len() as u32;
            // SAFETY: `buffer` holds `len` UTF-16 units; the optional pointers are null.
            let rc = unsafe {
                RegEnumKeyExW(
                    key.0,
                    index,
                    buffer.as_mut_ptr(),
                    &mut len,
                    null(),
                    null_mut(),
                    null_mut(),
                    null_mut(),
                )
            };
            match rc {
                ERROR_SUCCESS => {
                    let used = buffer.get(..len as usize).unwrap_or(&[]);
                    names.push(String::from_utf16_lossy(used));
                }
                ERROR_NO_MORE_ITEMS => break,
                e => return Err(format!("cannot enumerate HKLM\\{path}: error {e}")),
            }
        }
        Ok(Some(names))
    }

    fn values(&self, path: &str) -> Result<Option<Vec<(String, RegValue)>>, String> {
        let Some(key) = open(path)? else {
            return Ok(None);
        };
        let mut values = Vec::new();
        let mut index = 0u32;
        let mut data = vec![0u8; 1024];
        loop {
            let mut name = [0u16; 16_384];
            let mut name_len = name.len() as u32;
            let mut kind = 0u32;
            let mut data_len = data.len() as u32;
            // SAFETY: `name` holds `name_len` units and `data` holds `data_len` bytes.
            let rc = unsafe {
                RegEnumValueW(
                    key.0,
                    index,
                    name.as_mut_ptr(),
                    &mut name_len,
                    null(),
                    &mut kind,
                    data.as_mut_ptr(),
                    &mut data_len,
                )
            };
            match rc {
                ERROR_SUCCESS => {
                    let n = String::from_utf16_lossy(name.get(..name_len as usize).unwrap_or(&[]));
                    let bytes = data.get(..data_len as usize).unwrap_or(&[]);
                    let v = from_raw(kind, bytes).map_err(|e| format!("HKLM\\{path}\\{n}: {e}"))?;
                    values.push((n, v));
                    index += 1;
                }
                ERROR_MORE_DATA => {
                    // Grow to what the value needs and retry the same index.
                    let wanted = (data_len as usize).max(data.len() * 2);
                    data.resize(wanted, 0);
                }
                ERROR_NO_MORE_ITEMS => break,
                e => return Err(format!("cannot read values of HKLM\\{path}: error {e}")),
            }
        }
        Ok(Some(values))
    }
}
