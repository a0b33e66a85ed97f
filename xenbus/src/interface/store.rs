//! XENBUS_STORE V2 served as a C vtable over [`crate::store::Store`].
//!
//! Buffers returned by `StoreRead`/`StoreDirectory` are boxed byte slices (payload plus
//! two NULs) the provider tracks until `StoreFree`; transaction and watch handles are the
//! addresses of the store's records and are looked up, never dereferenced. `StorePrintf`
//! is C-variadic: its entry is an assembly shim from [`xen_include::variadic_shim!`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::{c_char, c_void, CStr};

use common::sync::SpinLock;
use xen_include::interfaces::store::{
    StoreInterfaceV2, StorePermission, StoreTransaction, StoreWatch,
};
use xen_include::interfaces::{Boolean, Interface, KEvent, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED,
    STATUS_NO_MEMORY, STATUS_SUCCESS,
};
use xen_include::variadic::{vformat, FormatError, SliceSink};

use crate::store::{Store, PRINTF_MAX};

/// The STORE provider: the subsystem, its reference count and the buffers handed out.
pub struct StoreProvider {
    store: &'static Store,
    references: super::References,
    buffers: SpinLock<Vec<Box<[u8]>>>,
}

impl StoreProvider {
    /// A provider serving `store`.
    pub fn new(store: &'static Store) -> Self {
        Self {
            store,
            references: super::References::new(),
            buffers: SpinLock::new(Vec::new()),
        }
    }

    /// References taken with `StoreAcquire`.
    pub fn references(&self) -> u32 {
        self.references.get()
    }

    /// Buffers handed out and not yet freed.
    pub fn buffers(&self) -> usize {
        self.buffers.lock().len()
    }

    /// Keep `payload` + two NULs and return a pointer to it for the caller.
    fn hand_out(&self, payload: &[u8]) -> Result<*mut c_char, NtStatus> {
        let mut data = Vec::new();
        data.try_reserve_exact(payload.len() + 2)
            .map_err(|_| STATUS_NO_MEMORY)?;
        data.extend_from_slice(payload);
        data.extend_from_slice(&[0, 0]);
        let mut buffer = data.into_boxed_slice();
        let pointer = buffer.as_mut_ptr().cast::<c_char>();
        let mut buffers = self.buffers.lock();
        buffers.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        buffers.push(buffer);
        Ok(pointer)
    }

    fn free(&self, pointer: *mut c_char) -> bool {
        let mut buffers = self.buffers.lock();
        match buffers
            .iter()
            .position(|b| core::ptr::eq(b.as_ptr(), pointer.cast::<u8>()))
        {
            Some(i) => {
                buffers.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &StoreProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const StoreProvider as *const c_void;
    match version {
        // SAFETY: forwarded caller contract.
        2 => unsafe { super::copy_interface(V2, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V2: StoreInterfaceV2 = StoreInterfaceV2 {
    interface: Interface::new(StoreInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    store_acquire: Some(acquire),
    store_release: Some(release),
    store_free: Some(free),
    store_read: Some(read),
    store_printf: Some(store_printf_entry),
    store_permissions_set: Some(permissions_set),
    store_remove: Some(remove),
    store_directory: Some(directory),
    store_transaction_start: Some(transaction_start),
    store_transaction_end: Some(transaction_end),
    store_watch_add: Some(watch_add),
    store_watch_remove: Some(watch_remove),
    store_poll: Some(poll),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a StoreProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<StoreProvider>(interface) }
}

/// Optional C string as bytes.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string alive for `'a`.
unsafe fn opt<'a>(s: *const c_char) -> Option<&'a [u8]> {
    if s.is_null() {
        None
    } else {
        // SAFETY: non-NULL, NUL-terminated (caller contract).
        Some(unsafe { CStr::from_ptr(s) }.to_bytes())
    }
}

/// The provider, optional prefix and node of a path-taking method.
type PathArgs<'a> = (&'a StoreProvider, Option<&'a [u8]>, &'a [u8]);

/// Decode the arguments of a path-taking method.
///
/// # Safety
/// C caller contract: our interface, NUL-terminated strings (prefix may be NULL).
unsafe fn path_args<'a>(
    interface: PInterface,
    prefix: *const c_char,
    node: *const c_char,
) -> Option<PathArgs<'a>> {
    // SAFETY: forwarded caller contract.
    let p = unsafe { provider(interface) }?;
    // SAFETY: forwarded caller contract.
    let (node, prefix) = (unsafe { opt(node) }?, unsafe { opt(prefix) });
    Some((p, prefix, node))
}

fn status(r: Result<(), NtStatus>) -> NtStatus {
    r.err().unwrap_or(STATUS_SUCCESS)
}

fn transaction_handle(t: *mut StoreTransaction) -> Option<usize> {
    (!t.is_null()).then_some(t as usize)
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
        if p.references.release() == Some(0) {
            // Upstream BUGs here; a leak is reported instead of crashing the system.
            let (transactions, watches) = p.store.outstanding();
            let buffers = p.buffers();
            if transactions + watches + buffers != 0 {
                error!(
                    p.store.api(),
                    "STORE: OUTSTANDING at last Release: {transactions} transaction(s), {watches} watch(es), {buffers} buffer(s)"
                );
            }
        }
    }
}

unsafe extern "C" fn free(interface: PInterface, buffer: *mut c_char) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        if !p.free(buffer) {
            warning!(
                p.store.api(),
                "STORE: Free of an unknown buffer {:p}",
                buffer
            );
        }
    }
}

/// Common body of Read and Directory.
///
/// # Safety
/// C caller contract of the two methods.
unsafe fn read_like(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    buffer: *mut *mut c_char,
    directory: bool,
) -> NtStatus {
    // SAFETY: C caller contract (our interface, NUL-terminated strings).
    let Some((p, prefix, node)) = (unsafe { path_args(interface, prefix, node) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if buffer.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let t = transaction_handle(transaction);
    let result = if directory {
        p.store.directory(t, prefix, node)
    } else {
        p.store.read(t, prefix, node)
    };
    match result.and_then(|payload| p.hand_out(&payload)) {
        Ok(pointer) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *buffer = pointer };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn read(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    buffer: *mut *mut c_char,
) -> NtStatus {
    // SAFETY: forwarded C caller contract.
    unsafe { read_like(interface, transaction, prefix, node, buffer, false) }
}

unsafe extern "C" fn directory(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    buffer: *mut *mut c_char,
) -> NtStatus {
    // SAFETY: forwarded C caller contract.
    unsafe { read_like(interface, transaction, prefix, node, buffer, true) }
}

xen_include::variadic_shim! {
    C fn store_printf_entry(
        interface: PInterface,
        transaction: *mut StoreTransaction,
        prefix: *mut c_char,
        node: *mut c_char,
        format: *const c_char,
        ...
    ) -> NtStatus => store_printf_impl;
}

/// `StorePrintf` after the variadic shim: format into at most [`PRINTF_MAX`] bytes, write.
///
/// # Safety
/// C caller contract of `StorePrintf`; `va` points at the variadic slots the format uses.
unsafe extern "C" fn store_printf_impl(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    format: *const c_char,
    va: *const u64,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: NUL-terminated strings or NULL (header contract).
    let (Some(node), prefix, Some(format)) =
        (unsafe { opt(node) }, unsafe { opt(prefix) }, unsafe {
            opt(format)
        })
    else {
        return STATUS_INVALID_PARAMETER;
    };
    let mut buf = [0u8; PRINTF_MAX];
    let mut sink = SliceSink::new(&mut buf);
    // SAFETY: the caller passed the arguments its format names (printf contract).
    match unsafe { vformat(format, va, &mut sink) } {
        Ok(()) => {}
        Err(FormatError::Overflow) => return STATUS_INVALID_BUFFER_SIZE,
        Err(e) => {
            error!(p.store.api(), "STORE: Printf format refused ({e:?})");
            return STATUS_INVALID_PARAMETER;
        }
    }
    let value = sink.written();
    status(
        p.store
            .printf(transaction_handle(transaction), prefix, node, value),
    )
}

unsafe extern "C" fn permissions_set(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
    permissions: *mut StorePermission,
    number_permissions: u32,
) -> NtStatus {
    // SAFETY: C caller contract (our interface, NUL-terminated strings).
    let Some((p, prefix, node)) = (unsafe { path_args(interface, prefix, node) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if permissions.is_null() || number_permissions == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `permissions` points at `number_permissions` entries (header contract).
    let list = unsafe { core::slice::from_raw_parts(permissions, number_permissions as usize) };
    status(
        p.store
            .permissions_set(transaction_handle(transaction), prefix, node, list),
    )
}

unsafe extern "C" fn remove(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    prefix: *mut c_char,
    node: *mut c_char,
) -> NtStatus {
    // SAFETY: C caller contract (our interface, NUL-terminated strings).
    let Some((p, prefix, node)) = (unsafe { path_args(interface, prefix, node) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    status(
        p.store
            .remove(transaction_handle(transaction), prefix, node),
    )
}

unsafe extern "C" fn transaction_start(
    interface: PInterface,
    transaction: *mut *mut StoreTransaction,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if transaction.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match p.store.transaction_start() {
        Ok(handle) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *transaction = handle as *mut StoreTransaction };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn transaction_end(
    interface: PInterface,
    transaction: *mut StoreTransaction,
    commit: Boolean,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    status(p.store.transaction_end(transaction as usize, commit != 0))
}

unsafe extern "C" fn watch_add(
    interface: PInterface,
    prefix: *mut c_char,
    node: *mut c_char,
    event: *mut KEvent,
    watch: *mut *mut StoreWatch,
) -> NtStatus {
    // SAFETY: C caller contract (our interface, NUL-terminated strings).
    let Some((p, prefix, node)) = (unsafe { path_args(interface, prefix, node) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if event.is_null() || watch.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match p.store.watch_add(prefix, node, event as usize) {
        Ok(handle) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *watch = handle as *mut StoreWatch };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn watch_remove(interface: PInterface, watch: *mut StoreWatch) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    status(p.store.watch_remove(watch as usize))
}

unsafe extern "C" fn poll(interface: PInterface) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.store.poll();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::rig;
    use xen_include::interfaces::store::{StorePermissionMask, GUID_XENBUS_STORE_INTERFACE};
    use xen_include::status::*;

    struct C {
        table: StoreInterfaceV2,
        provider: &'static StoreProvider,
        rig: &'static crate::store::tests::Rig,
    }

    impl C {
        fn i(&mut self) -> PInterface {
            &mut self.table as *mut StoreInterfaceV2 as PInterface
        }
    }

    fn child() -> C {
        let rig: &'static _ = Box::leak(Box::new(rig()));
        let provider: &'static StoreProvider = Box::leak(Box::new(StoreProvider::new(&rig.store)));
        let mut table = StoreInterfaceV2::EMPTY;
        let dst = &mut table as *mut _ as *mut c_void;
        unsafe {
            assert_eq!(get_interface(provider, 1, dst, 200), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(provider, 3, dst, 200), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(provider, 2, dst, 135), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(provider, 2, dst, 136), STATUS_SUCCESS);
        }
        assert_eq!((table.interface.size, table.interface.version), (136, 2));
        assert!(StoreInterfaceV2::GUID.const_eq(&GUID_XENBUS_STORE_INTERFACE));
        C {
            table,
            provider,
            rig,
        }
    }

    fn text(p: *mut c_char) -> Vec<u8> {
        unsafe { CStr::from_ptr(p) }.to_bytes().to_vec()
    }

    #[test]
    fn a_c_child_reads_writes_and_frees_through_the_vtable() {
        let mut c = child();
        let i = c.i();
        let t = c.table;
        unsafe {
            assert_eq!((t.store_acquire.unwrap())(i), STATUS_SUCCESS);
            // Printf through the variadic shim, as a C caller would.
            let st = (t.store_printf.unwrap())(
                i,
                core::ptr::null_mut(),
                c"device/vif/0".as_ptr() as *mut c_char,
                c"mac".as_ptr() as *mut c_char,
                c"%02x:%02X:%s-%u".as_ptr(),
                0x0au32,
                0xbcu32,
                c"tail".as_ptr(),
                42u32,
            );
            assert_eq!(st, STATUS_SUCCESS);
            let mut buffer: *mut c_char = core::ptr::null_mut();
            let st = (t.store_read.unwrap())(
                i,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"device/vif/0/mac".as_ptr() as *mut c_char,
                &mut buffer,
            );
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(text(buffer), b"0a:BC:tail-42");
            // Double NUL after the value.
            assert_eq!(*buffer.add(13), 0);
            assert_eq!(*buffer.add(14), 0);
            assert_eq!(c.provider.buffers(), 1);
            (t.store_free.unwrap())(i, buffer);
            assert_eq!(c.provider.buffers(), 0);
            (t.store_free.unwrap())(i, buffer);
            assert!(c.rig.api.logged("Free of an unknown buffer"));
            // Directory: NUL-separated, double-NUL terminated.
            let st = (t.store_directory.unwrap())(
                i,
                core::ptr::null_mut(),
                c"device".as_ptr() as *mut c_char,
                c"vif".as_ptr() as *mut c_char,
                &mut buffer,
            );
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(
                core::slice::from_raw_parts(buffer as *const u8, 4),
                b"0\0\0\0"
            );
            (t.store_free.unwrap())(i, buffer);
            // Remove, then Read fails.
            let node = c"device/vif/0/mac".as_ptr() as *mut c_char;
            assert_eq!(
                (t.store_remove.unwrap())(i, core::ptr::null_mut(), core::ptr::null_mut(), node),
                STATUS_SUCCESS
            );
            assert_eq!(
                (t.store_read.unwrap())(
                    i,
                    core::ptr::null_mut(),
                    core::ptr::null_mut(),
                    node,
                    &mut buffer
                ),
                STATUS_OBJECT_NAME_NOT_FOUND
            );
            // A value that formats longer than 1023 bytes is refused.
            let st = (t.store_printf.unwrap())(
                i,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"k".as_ptr() as *mut c_char,
                c"%1024u".as_ptr(),
                1u32,
            );
            assert_eq!(st, STATUS_INVALID_BUFFER_SIZE);
            // Permissions.
            let mut perms = [StorePermission {
                domain: 0,
                mask: StorePermissionMask::READ,
            }];
            let st = (t.store_permissions_set.unwrap())(
                i,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"k".as_ptr() as *mut c_char,
                perms.as_mut_ptr(),
                1,
            );
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(c.rig.server().seen.last().unwrap().payload, b"k\0r0\0");
            (t.store_release.unwrap())(i);
            assert_eq!(c.provider.references(), 0);
            assert!(!c.rig.api.logged("OUTSTANDING"));
            // A buffer still held at the last Release is reported.
            assert_eq!((t.store_acquire.unwrap())(i), STATUS_SUCCESS);
            let st = (t.store_printf.unwrap())(
                i,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"k".as_ptr() as *mut c_char,
                c"%u".as_ptr(),
                1u32,
            );
            assert_eq!(st, STATUS_SUCCESS);
            let st = (t.store_read.unwrap())(
                i,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                c"k".as_ptr() as *mut c_char,
                &mut buffer,
            );
            assert_eq!(st, STATUS_SUCCESS);
            (t.store_release.unwrap())(i);
            assert!(c
                .rig
                .api
                .logged("OUTSTANDING at last Release: 0 transaction(s), 0 watch(es), 1 buffer(s)"));
            (t.store_free.unwrap())(i, buffer);
        }
    }

    #[test]
    fn transactions_and_watches_through_the_vtable() {
        let mut c = child();
        let i = c.i();
        let t = c.table;
        let mut event = [0u64; 3]; // stands in for a KEVENT
        let ev = event.as_mut_ptr() as *mut KEvent;
        unsafe {
            let mut tx: *mut StoreTransaction = core::ptr::null_mut();
            assert_eq!(
                (t.store_transaction_start.unwrap())(i, &mut tx),
                STATUS_SUCCESS
            );
            let st = (t.store_printf.unwrap())(
                i,
                tx,
                core::ptr::null_mut(),
                c"a".as_ptr() as *mut c_char,
                c"%d".as_ptr(),
                -5i32,
            );
            assert_eq!(st, STATUS_SUCCESS);
            c.rig.server().conflict = true;
            assert_eq!((t.store_transaction_end.unwrap())(i, tx, 1), STATUS_RETRY);
            assert_eq!(
                (t.store_transaction_end.unwrap())(i, tx, 1),
                STATUS_INVALID_PARAMETER,
                "handle freed on RETRY"
            );
            let mut w: *mut StoreWatch = core::ptr::null_mut();
            let st = (t.store_watch_add.unwrap())(
                i,
                c"control".as_ptr() as *mut c_char,
                c"shutdown".as_ptr() as *mut c_char,
                ev,
                &mut w,
            );
            assert_eq!(st, STATUS_SUCCESS);
            assert_eq!(c.rig.os.sets(ev as usize), 1);
            (t.store_poll.unwrap())(i);
            assert_eq!((t.store_watch_remove.unwrap())(i, w), STATUS_SUCCESS);
            assert_eq!(
                (t.store_watch_remove.unwrap())(i, w),
                STATUS_INVALID_PARAMETER
            );
        }
        assert_eq!(c.rig.server().db.get(&b"a"[..]).unwrap(), b"-5");
    }
}
