//! xenbus's own interface subscriptions (seed README "Interfaces"): xenbus consumes
//! XENFILT_EMULATED and records the version it uses under
//! `Services\XENFILT\Interfaces\XENBUS`, so an installer can tell whether a new xenfilt
//! still serves it. The records go through the `Os` edge's registry.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;

use common::os::{KeyHandle, Os, RegValue};
use xen_include::interfaces::emulated::XENFILT_EMULATED_INTERFACE_VERSION_MAX;
use xen_include::status::{NtStatus, STATUS_OBJECT_NAME_NOT_FOUND};
use xen_include::subscription::{
    subscribe, unsubscribe_all, Subscription, SubscriptionError, SubscriptionStore,
};

/// The version of XENFILT_EMULATED xenbus queries from the filter below its FDO.
pub const EMULATED_VERSION_USED: u16 = XENFILT_EMULATED_INTERFACE_VERSION_MAX;

/// A [`SubscriptionStore`] over the kernel registry (keys relative to HKLM).
pub struct OsSubscriptionStore<'a> {
    os: &'a dyn Os,
}

impl<'a> OsSubscriptionStore<'a> {
    /// A store writing through `os`.
    pub fn new(os: &'a dyn Os) -> Self {
        Self { os }
    }

    fn delete_below(&self, key: KeyHandle, depth: u32) -> Result<(), NtStatus> {
        // Subscription trees are two levels deep; the bound keeps a hostile registry from
        // recursing without end.
        if depth > 8 {
            return Err(xen_include::status::STATUS_INVALID_PARAMETER);
        }
        let children: Vec<String> = self.os.registry_subkeys(key)?;
        for child in children {
            let handle = self.os.registry_open(Some(key), &child)?;
            let result = self
                .delete_below(handle, depth + 1)
                .and_then(|()| self.os.registry_delete_key(handle));
            self.os.registry_close(handle);
            result?;
        }
        Ok(())
    }
}

impl SubscriptionStore for OsSubscriptionStore<'_> {
    type Error = NtStatus;

    fn set_dword(&mut self, key: &str, name: &str, value: u32) -> Result<(), NtStatus> {
        let handle = self.os.registry_create(None, key, false)?;
        let result = self.os.registry_set(handle, name, &RegValue::Dword(value));
        self.os.registry_close(handle);
        result
    }

    fn delete_tree(&mut self, key: &str) -> Result<(), NtStatus> {
        let handle = match self.os.registry_open(None, key) {
            Ok(handle) => handle,
            Err(STATUS_OBJECT_NAME_NOT_FOUND) => return Ok(()),
            Err(status) => return Err(status),
        };
        let result = self
            .delete_below(handle, 0)
            .and_then(|()| self.os.registry_delete_key(handle));
        self.os.registry_close(handle);
        result
    }
}

fn status(error: SubscriptionError<NtStatus>) -> NtStatus {
    match error {
        SubscriptionError::Store(status) => status,
        _ => xen_include::status::STATUS_INVALID_PARAMETER,
    }
}

/// Record that xenbus uses XENFILT_EMULATED at [`EMULATED_VERSION_USED`] (at FDO creation,
/// when the interface is queried from the filter below), replacing older records.
pub fn record(os: &dyn Os) -> Result<(), NtStatus> {
    let mut store = OsSubscriptionStore::new(os);
    unsubscribe_all(&mut store, "XENFILT", "XENBUS").map_err(status)?;
    let subscription = Subscription::new(
        "XENFILT",
        "XENBUS",
        "EMULATED",
        u32::from(EMULATED_VERSION_USED),
    )
    .map_err(status)?;
    subscribe(&mut store, &subscription).map_err(status)
}

/// Remove xenbus's records (uninstall).
pub fn remove(os: &dyn Os) -> Result<(), NtStatus> {
    unsubscribe_all(&mut OsSubscriptionStore::new(os), "XENFILT", "XENBUS").map_err(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_sim::machine::Machine;

    const KEY: &str =
        r"\Registry\Machine\SYSTEM\CurrentControlSet\Services\XENFILT\Interfaces\XENBUS";

    #[test]
    fn record_writes_the_emulated_version_and_remove_clears_it() {
        let machine = Machine::new();
        {
            let mut registry = machine.guest.registry();
            registry
                .create_key(&format!("{KEY}\\Stale"), false)
                .expect("key");
            registry
                .set_value(KEY, "OLD", RegValue::Dword(1))
                .expect("value");
        }
        record(&*machine.guest).expect("recorded");
        let registry = machine.guest.registry();
        assert_eq!(
            registry.query_value(KEY, "EMULATED"),
            Ok(RegValue::Dword(3))
        );
        assert!(
            registry.query_value(KEY, "OLD").is_err(),
            "older records are replaced"
        );
        assert!(!registry.key_exists(&format!("{KEY}\\Stale")));
        drop(registry);
        remove(&*machine.guest).expect("removed");
        assert!(!machine.guest.registry().key_exists(KEY));
        assert_eq!(remove(&*machine.guest), Ok(()), "removing nothing is fine");
        assert_eq!(machine.guest.open_key_handles(), 0, "every handle closed");
    }
}
