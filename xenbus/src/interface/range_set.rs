//! XENBUS_RANGE_SET V1 served as a C vtable over [`crate::range_set::RangeSet`].
//!
//! Each set handed out is a boxed [`SetObject`] with its own lock; the provider keeps the
//! addresses of the live ones, so every method first checks that the handle it was given
//! is one of them.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::{c_char, c_void};

use xen_include::interfaces::range_set::{RangeSet as CRangeSet, RangeSetInterfaceV1};
use xen_include::interfaces::{Interface, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED,
    STATUS_NO_MEMORY, STATUS_SUCCESS, STATUS_UNSUCCESSFUL,
};

use crate::range_set::RangeSet;
use common::sync::SpinLock;

/// Longest set name kept (longer names are truncated).
pub const NAME_MAX: usize = 31;

/// A set created through the interface.
pub struct SetObject {
    name: [u8; NAME_MAX],
    name_len: usize,
    set: SpinLock<RangeSet>,
}

impl SetObject {
    /// The (possibly truncated) name given at creation.
    pub fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..self.name_len).unwrap_or(&[])).unwrap_or("")
    }
}

/// The RANGE_SET provider: reference count and the live sets.
#[derive(Default)]
pub struct RangeSetProvider {
    references: super::References,
    sets: SpinLock<Vec<usize>>,
}

impl RangeSetProvider {
    /// A provider with no references and no sets.
    pub const fn new() -> Self {
        Self {
            references: super::References::new(),
            sets: SpinLock::new(Vec::new()),
        }
    }

    /// Current number of references taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }

    /// Number of sets created and not destroyed.
    pub fn live_sets(&self) -> usize {
        self.sets.lock().len()
    }

    fn create(&self, name: &[u8]) -> Result<*mut SetObject, NtStatus> {
        let mut fixed = [0u8; NAME_MAX];
        let len = name.len().min(NAME_MAX);
        for (d, s) in fixed.iter_mut().zip(name.iter()) {
            *d = *s;
        }
        let mut sets = self.sets.lock();
        sets.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        let object = Box::into_raw(Box::new(SetObject {
            name: fixed,
            name_len: len,
            set: SpinLock::new(RangeSet::new()),
        }));
        sets.push(object as usize);
        Ok(object)
    }

    fn with_set<R>(
        &self,
        handle: *mut CRangeSet,
        f: impl FnOnce(&mut RangeSet) -> R,
    ) -> Result<R, NtStatus> {
        let sets = self.sets.lock();
        if !sets.contains(&(handle as usize)) {
            return Err(STATUS_INVALID_HANDLE);
        }
        // SAFETY: the handle is in the live list, so it is a `SetObject` we boxed and have
        // not freed; holding the list lock keeps Destroy from freeing it meanwhile.
        let object = unsafe { &*(handle as *const SetObject) };
        let mut set = object.set.lock();
        Ok(f(&mut set))
    }

    fn destroy(&self, handle: *mut CRangeSet) -> Result<(), NtStatus> {
        let mut sets = self.sets.lock();
        let index = sets
            .iter()
            .position(|s| *s == handle as usize)
            .ok_or(STATUS_INVALID_HANDLE)?;
        // SAFETY: live handle (in the list) → a `SetObject` we boxed and have not freed.
        let empty = unsafe { &*(handle as *const SetObject) }
            .set
            .lock()
            .is_empty();
        if !empty {
            return Err(STATUS_UNSUCCESSFUL);
        }
        sets.swap_remove(index);
        // SAFETY: removed from the live list under its lock, so this is the only path that
        // frees it, exactly once; it came from `Box::into_raw` in `create`.
        drop(unsafe { Box::from_raw(handle as *mut SetObject) });
        Ok(())
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &RangeSetProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const RangeSetProvider as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        1 => unsafe { super::copy_interface(V1, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V1: RangeSetInterfaceV1 = RangeSetInterfaceV1 {
    interface: Interface::new(RangeSetInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    range_set_acquire: Some(acquire),
    range_set_release: Some(release),
    range_set_create: Some(create),
    range_set_put: Some(put),
    range_set_pop: Some(pop),
    range_set_get: Some(get),
    range_set_destroy: Some(destroy),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a RangeSetProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<RangeSetProvider>(interface) }
}

fn status(r: Result<(), NtStatus>) -> NtStatus {
    r.err().unwrap_or(STATUS_SUCCESS)
}

unsafe extern "C" fn acquire(interface: PInterface) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => {
            p.references.acquire();
            STATUS_SUCCESS
        }
        None => STATUS_INVALID_PARAMETER,
    }
}

unsafe extern "C" fn release(interface: PInterface) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        let _ = p.references.release();
    }
}

unsafe extern "C" fn create(
    interface: PInterface,
    name: *const c_char,
    range_set: *mut *mut CRangeSet,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if range_set.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let name: &[u8] = if name.is_null() {
        b""
    } else {
        // SAFETY: non-NULL Name is a NUL-terminated string (header contract).
        unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes()
    };
    match p.create(name) {
        Ok(object) => {
            // SAFETY: `range_set` is a non-NULL out pointer (header contract).
            unsafe { *range_set = object.cast() };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

/// Apply a `(start, count)` operation to the set behind `range_set`.
///
/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn update(
    interface: PInterface,
    range_set: *mut CRangeSet,
    op: impl FnOnce(&mut RangeSet) -> Result<(), NtStatus>,
) -> NtStatus {
    // SAFETY: forwarded caller contract.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    status(p.with_set(range_set, op).and_then(|r| r))
}

unsafe extern "C" fn put(
    interface: PInterface,
    range_set: *mut CRangeSet,
    start: i64,
    count: u64,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { update(interface, range_set, |s| s.put(start, count)) }
}

unsafe extern "C" fn pop(
    interface: PInterface,
    range_set: *mut CRangeSet,
    count: u64,
    start: *mut i64,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if start.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match p.with_set(range_set, |s| s.pop(count)).and_then(|r| r) {
        Ok(first) => {
            // SAFETY: `start` is a non-NULL out pointer (header contract).
            unsafe { *start = first };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn get(
    interface: PInterface,
    range_set: *mut CRangeSet,
    start: i64,
    count: u64,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { update(interface, range_set, |s| s.get(start, count)) }
}

unsafe extern "C" fn destroy(interface: PInterface, range_set: *mut CRangeSet) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        // A non-empty or unknown set is refused and left as it is (the original BUGs);
        // the caller keeps a valid handle.
        let _ = p.destroy(range_set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_include::interfaces::range_set::GUID_XENBUS_RANGE_SET_INTERFACE;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_INSUFFICIENT_RESOURCES};

    fn query(provider: &RangeSetProvider) -> RangeSetInterfaceV1 {
        let mut table = RangeSetInterfaceV1::EMPTY;
        let st = unsafe {
            get_interface(
                provider,
                1,
                &mut table as *mut _ as *mut c_void,
                RangeSetInterfaceV1::SIZE,
            )
        };
        assert_eq!(st, STATUS_SUCCESS);
        table
    }

    #[test]
    fn query_rules() {
        let p = RangeSetProvider::new();
        let mut table = RangeSetInterfaceV1::EMPTY;
        let dst = &mut table as *mut _ as *mut c_void;
        unsafe {
            assert_eq!(get_interface(&p, 2, dst, 88), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 1, dst, 87), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, dst, 200), STATUS_SUCCESS);
        }
        assert_eq!(table.interface.size, 88);
        assert_eq!(table.interface.version, 1);
        assert_eq!(table.interface.context as usize, &p as *const _ as usize);
        assert!(table.interface.interface_reference.is_none());
        assert!(table.interface.interface_dereference.is_none());
        assert!(RangeSetInterfaceV1::GUID.const_eq(&GUID_XENBUS_RANGE_SET_INTERFACE));
    }

    #[test]
    fn a_c_caller_drives_a_set_through_the_vtable() {
        let p = RangeSetProvider::new();
        let mut t = query(&p);
        let i = &mut t as *mut RangeSetInterfaceV1 as PInterface;
        unsafe {
            assert_eq!((t.range_set_acquire.unwrap())(i), STATUS_SUCCESS);
            assert_eq!(p.references(), 1);
            let mut set: *mut CRangeSet = core::ptr::null_mut();
            let name = c"a_rather_long_range_set_name_for_testing";
            assert_eq!(
                (t.range_set_create.unwrap())(i, name.as_ptr(), &mut set),
                STATUS_SUCCESS
            );
            assert_eq!((*(set as *const SetObject)).name().len(), NAME_MAX);
            assert_eq!((t.range_set_put.unwrap())(i, set, 32, 480), STATUS_SUCCESS);
            assert_eq!(
                (t.range_set_put.unwrap())(i, set, 40, 1),
                STATUS_INVALID_PARAMETER
            );
            assert_eq!(
                (t.range_set_put.unwrap())(i, set, 0, 0),
                STATUS_INVALID_PARAMETER
            );
            let mut first = 0i64;
            assert_eq!(
                (t.range_set_pop.unwrap())(i, set, 10, &mut first),
                STATUS_SUCCESS
            );
            assert_eq!(first, 32);
            assert_eq!((t.range_set_get.unwrap())(i, set, 100, 10), STATUS_SUCCESS);
            assert_eq!(
                (t.range_set_pop.unwrap())(i, set, 1000, &mut first),
                STATUS_INSUFFICIENT_RESOURCES
            );
            // Not empty: Destroy refuses and the handle stays usable.
            (t.range_set_destroy.unwrap())(i, set);
            assert_eq!(p.live_sets(), 1);
            assert_eq!((t.range_set_put.unwrap())(i, set, 32, 10), STATUS_SUCCESS);
            assert_eq!((t.range_set_put.unwrap())(i, set, 100, 10), STATUS_SUCCESS);
            assert_eq!((t.range_set_get.unwrap())(i, set, 32, 480), STATUS_SUCCESS);
            (t.range_set_destroy.unwrap())(i, set);
            assert_eq!(p.live_sets(), 0);
            // Stale handle: refused, not dereferenced.
            assert_eq!(
                (t.range_set_put.unwrap())(i, set, 1, 1),
                STATUS_INVALID_HANDLE
            );
            (t.range_set_release.unwrap())(i);
            assert_eq!(p.references(), 0);
        }
    }
}
