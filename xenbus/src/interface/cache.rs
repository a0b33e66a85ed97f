//! XENBUS_CACHE V1 and V2 served as C vtables over [`crate::cache::Cache`].
//!
//! Each cache handed out is a boxed [`CacheObject`]; the provider keeps the addresses of
//! the live ones and checks every handle against them before use. Slab memory comes from
//! the global allocator (the non-paged pool allocator in the kernel).

use alloc::alloc::{alloc_zeroed, dealloc, Layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ffi::{c_char, c_void};

use xen_include::api::XenApi;
use xen_include::interfaces::cache::{
    Cache as CCache, CacheAcquireLock, CacheCtor, CacheDtor, CacheInterfaceV1, CacheInterfaceV2,
    CacheReleaseLock,
};
use xen_include::interfaces::{Boolean, Interface, PInterface, VersionedInterface};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_NO_MEMORY, STATUS_SUCCESS,
};

use super::references::acquire_release;
use super::References;
use crate::cache::{Cache, CacheClient, CacheError, CacheParams, SlabMemory, PAGE_SIZE};
use common::sync::SpinLock;

/// Longest cache name kept (longer names are truncated).
pub const NAME_MAX: usize = 31;

/// The C callbacks of one cache.
pub struct CClient {
    ctor: CacheCtor,
    dtor: CacheDtor,
    acquire_lock: CacheAcquireLock,
    release_lock: CacheReleaseLock,
    argument: usize,
}

impl CacheClient for CClient {
    fn construct(&self, object: usize) -> Result<(), NtStatus> {
        let Some(ctor) = self.ctor else {
            return Ok(());
        };
        // SAFETY: the caller registered this constructor with this argument for objects of
        // this cache (header contract); `object` is a slot of one of its slabs.
        let status = unsafe { ctor(self.argument as *mut c_void, object as *mut c_void) };
        if status < 0 {
            Err(status)
        } else {
            Ok(())
        }
    }
    fn destruct(&self, object: usize) {
        if let Some(dtor) = self.dtor {
            // SAFETY: as for the constructor; the object was constructed.
            unsafe { dtor(self.argument as *mut c_void, object as *mut c_void) }
        }
    }
    fn acquire_lock(&self) {
        if let Some(f) = self.acquire_lock {
            // SAFETY: the caller's lock callback with its own argument (header contract).
            unsafe { f(self.argument as *mut c_void) }
        }
    }
    fn release_lock(&self) {
        if let Some(f) = self.release_lock {
            // SAFETY: as above.
            unsafe { f(self.argument as *mut c_void) }
        }
    }
}

/// Slab memory from the global allocator, page aligned.
pub struct PoolSlabs;

impl SlabMemory for PoolSlabs {
    fn allocate(&self, bytes: usize) -> Option<usize> {
        let layout = Layout::from_size_align(bytes, PAGE_SIZE).ok()?;
        if layout.size() == 0 {
            return None;
        }
        // SAFETY: non-zero size (checked), valid layout.
        let p = unsafe { alloc_zeroed(layout) };
        (!p.is_null()).then_some(p as usize)
    }
    fn free(&self, address: usize, bytes: usize) {
        if let Ok(layout) = Layout::from_size_align(bytes, PAGE_SIZE) {
            // SAFETY: `address` came from `allocate` with this same layout (trait contract).
            unsafe { dealloc(address as *mut u8, layout) }
        }
    }
}

/// A cache created through the interface.
pub struct CacheObject {
    name: [u8; NAME_MAX],
    name_len: usize,
    cache: Cache<CClient, PoolSlabs>,
}

impl CacheObject {
    /// The (possibly truncated) name given at creation.
    pub fn name(&self) -> &str {
        core::str::from_utf8(self.name.get(..self.name_len).unwrap_or(&[])).unwrap_or("")
    }
    /// The cache itself.
    pub fn cache(&self) -> &Cache<CClient, PoolSlabs> {
        &self.cache
    }
}

/// The CACHE provider: reference count, live caches, processor source and log.
pub struct CacheProvider<'a> {
    references: References,
    caches: SpinLock<Vec<usize>>,
    processors: u32,
    current_cpu: fn() -> u32,
    os: Option<&'a dyn common::os::Os>,
    api: Option<&'a dyn XenApi>,
}

impl<'a> CacheProvider<'a> {
    /// A provider for `processors` CPUs; `current_cpu` names the caller's processor.
    pub fn new(processors: u32, current_cpu: fn() -> u32, api: Option<&'a dyn XenApi>) -> Self {
        Self {
            references: References::new(),
            caches: SpinLock::new(Vec::new()),
            processors,
            current_cpu,
            os: None,
            api,
        }
    }

    /// A provider whose per-CPU magazines follow the kernel: the processor count and the
    /// caller's processor come from the `Os` edge (`KeGetCurrentProcessorNumberEx`).
    pub fn with_os(os: &'a dyn common::os::Os, api: Option<&'a dyn XenApi>) -> Self {
        Self {
            references: References::new(),
            caches: SpinLock::new(Vec::new()),
            processors: os.maximum_processor_count().max(1),
            current_cpu: || 0,
            os: Some(os),
            api,
        }
    }

    /// The processor the caller runs on.
    fn current_processor(&self) -> u32 {
        match self.os {
            Some(os) => os.current_processor(),
            None => (self.current_cpu)(),
        }
    }

    /// References taken with Acquire.
    pub fn references(&self) -> u32 {
        self.references.get()
    }

    /// Number of live caches.
    pub fn live_caches(&self) -> usize {
        self.caches.lock().len()
    }

    /// One monitor pass over every live cache (the 5-second monitor thread).
    pub fn monitor(&self) {
        let caches = self.caches.lock();
        for c in caches.iter() {
            // SAFETY: live handle (in the list, which we hold) → a boxed `CacheObject`.
            let object = unsafe { &*(*c as *const CacheObject) };
            if let (Err(e), Some(api)) = (object.cache.monitor(), self.api) {
                warning!(
                    api,
                    "CACHE: {}: monitor fill failed ({:?})",
                    object.name(),
                    e
                );
            }
        }
    }

    fn create(
        &self,
        name: &[u8],
        params: CacheParams,
        client: CClient,
    ) -> Result<*mut CacheObject, NtStatus> {
        let mut fixed = [0u8; NAME_MAX];
        let len = name.len().min(NAME_MAX);
        for (d, s) in fixed.iter_mut().zip(name.iter()) {
            *d = *s;
        }
        let cache = Cache::new(params, self.processors, client, PoolSlabs).map_err(|e| {
            if let Some(api) = self.api {
                warning!(api, "CACHE: create {:?} failed ({:?})", params, e);
            }
            e.status()
        })?;
        let mut caches = self.caches.lock();
        caches.try_reserve(1).map_err(|_| STATUS_NO_MEMORY)?;
        let object = Box::into_raw(Box::new(CacheObject {
            name: fixed,
            name_len: len,
            cache,
        }));
        caches.push(object as usize);
        Ok(object)
    }

    fn with_cache<R>(&self, handle: *mut CCache, f: impl FnOnce(&CacheObject) -> R) -> Option<R> {
        let known = self.caches.lock().contains(&(handle as usize));
        if !known {
            if let Some(api) = self.api {
                warning!(api, "CACHE: unknown cache handle {:p}", handle);
            }
            return None;
        }
        // SAFETY: the handle is live (checked) → a `CacheObject` we boxed. Destroy of a
        // cache while the same caller still uses it is a caller bug excluded by the
        // header contract (as in C), so it stays alive for the call.
        Some(f(unsafe { &*(handle as *const CacheObject) }))
    }

    fn destroy(&self, handle: *mut CCache) -> Result<(), CacheError> {
        let mut caches = self.caches.lock();
        let index = caches
            .iter()
            .position(|c| *c == handle as usize)
            .ok_or(CacheError::InvalidParameter)?;
        // SAFETY: live handle → a boxed `CacheObject`.
        unsafe { &*(handle as *const CacheObject) }
            .cache
            .destroy()?;
        caches.swap_remove(index);
        // SAFETY: removed from the live list under its lock: freed exactly once, and it
        // came from `Box::into_raw` in `create`.
        drop(unsafe { Box::from_raw(handle as *mut CacheObject) });
        Ok(())
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &CacheProvider<'_>,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const CacheProvider<'_> as *const c_void;
    // SAFETY: forwarded caller contract.
    unsafe {
        match version {
            1 => super::copy_interface(V1, |t| &mut t.interface, context, dst, size),
            2 => super::copy_interface(V2, |t| &mut t.interface, context, dst, size),
            _ => STATUS_NOT_SUPPORTED,
        }
    }
}

const V1: CacheInterfaceV1 = CacheInterfaceV1 {
    interface: Interface::new(CacheInterfaceV1::SIZE as u16, 1, core::ptr::null_mut()),
    cache_acquire: Some(acquire),
    cache_release: Some(release),
    cache_create_version1: Some(create_v1),
    cache_get: Some(get),
    cache_put: Some(put),
    cache_destroy: Some(destroy),
};

const V2: CacheInterfaceV2 = CacheInterfaceV2 {
    interface: Interface::new(CacheInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    cache_acquire: Some(acquire),
    cache_release: Some(release),
    cache_create: Some(create),
    cache_get: Some(get),
    cache_put: Some(put),
    cache_destroy: Some(destroy),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a CacheProvider<'a>> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<CacheProvider<'a>>(interface) }
}

acquire_release!(CacheProvider<'_>);

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn create(
    interface: PInterface,
    name: *const c_char,
    size: u32,
    reservation: u32,
    cap: u32,
    ctor: CacheCtor,
    dtor: CacheDtor,
    acquire_lock: CacheAcquireLock,
    release_lock: CacheReleaseLock,
    argument: *mut c_void,
    cache: *mut *mut CCache,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if cache.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let name: &[u8] = if name.is_null() {
        b""
    } else {
        // SAFETY: non-NULL Name is a NUL-terminated string (header contract).
        unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes()
    };
    let client = CClient {
        ctor,
        dtor,
        acquire_lock,
        release_lock,
        argument: argument as usize,
    };
    let params = CacheParams {
        size,
        reservation,
        cap,
    };
    match p.create(name, params, client) {
        Ok(object) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *cache = object.cast() };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn create_v1(
    interface: PInterface,
    name: *const c_char,
    size: u32,
    reservation: u32,
    ctor: CacheCtor,
    dtor: CacheDtor,
    acquire_lock: CacheAcquireLock,
    release_lock: CacheReleaseLock,
    argument: *mut c_void,
    cache: *mut *mut CCache,
) -> NtStatus {
    // SAFETY: same contract as V2's Create with no cap.
    unsafe {
        create(
            interface,
            name,
            size,
            reservation,
            0,
            ctor,
            dtor,
            acquire_lock,
            release_lock,
            argument,
            cache,
        )
    }
}

unsafe extern "C" fn get(
    interface: PInterface,
    cache: *mut CCache,
    locked: Boolean,
) -> *mut c_void {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return core::ptr::null_mut();
    };
    let cpu = p.current_processor();
    p.with_cache(cache, |c| c.cache.get(cpu, locked != 0))
        .flatten()
        .map_or(core::ptr::null_mut(), |o| o as *mut c_void)
}

unsafe extern "C" fn put(
    interface: PInterface,
    cache: *mut CCache,
    object: *mut c_void,
    locked: Boolean,
) {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return;
    };
    let cpu = p.current_processor();
    let api = p.api;
    p.with_cache(cache, |c| {
        if let (Err(e), Some(api)) = (c.cache.put(cpu, object as usize, locked != 0), api) {
            error!(
                api,
                "CACHE: {}: refused Put of {:p} ({:?})",
                c.name(),
                object,
                e
            );
        }
    });
}

unsafe extern "C" fn destroy(interface: PInterface, cache: *mut CCache) {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return;
    };
    if let (Err(e), Some(api)) = (p.destroy(cache), p.api) {
        error!(api, "CACHE: refused Destroy of {:p} ({:?})", cache, e);
    }
}

#[cfg(test)]
#[allow(unsafe_op_in_unsafe_fn)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU32, Ordering};
    use std::sync::atomic::AtomicI32;
    use xen_include::status::STATUS_BUFFER_OVERFLOW;

    fn cpu0() -> u32 {
        0
    }

    /// The caller's context, as a C driver would keep it.
    #[derive(Default)]
    struct Ctx {
        ctors: AtomicU32,
        dtors: AtomicU32,
        lock_depth: AtomicI32,
        lock_calls: AtomicU32,
    }

    unsafe extern "C" fn ctor(arg: *mut c_void, object: *mut c_void) -> NtStatus {
        let ctx = &*(arg as *const Ctx);
        ctx.ctors.fetch_add(1, Ordering::SeqCst);
        // The object is real, writable memory of the requested size.
        core::ptr::write_bytes(object as *mut u8, 0xAB, 200);
        STATUS_SUCCESS
    }
    unsafe extern "C" fn dtor(arg: *mut c_void, object: *mut c_void) {
        let ctx = &*(arg as *const Ctx);
        assert_eq!(*(object as *const u8), 0xAB);
        ctx.dtors.fetch_add(1, Ordering::SeqCst);
    }
    unsafe extern "C" fn lock(arg: *mut c_void) {
        let ctx = &*(arg as *const Ctx);
        assert_eq!(ctx.lock_depth.fetch_add(1, Ordering::SeqCst), 0);
        ctx.lock_calls.fetch_add(1, Ordering::SeqCst);
    }
    unsafe extern "C" fn unlock(arg: *mut c_void) {
        let ctx = &*(arg as *const Ctx);
        assert_eq!(ctx.lock_depth.fetch_sub(1, Ordering::SeqCst), 1);
    }

    #[test]
    fn query_rules_for_both_versions() {
        let p = CacheProvider::new(1, cpu0, None);
        let mut t1 = CacheInterfaceV1::EMPTY;
        let mut t2 = CacheInterfaceV2::EMPTY;
        unsafe {
            let d1 = &mut t1 as *mut _ as *mut c_void;
            let d2 = &mut t2 as *mut _ as *mut c_void;
            assert_eq!(get_interface(&p, 3, d2, 80), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 0, d2, 80), STATUS_NOT_SUPPORTED);
            assert_eq!(get_interface(&p, 2, d2, 79), STATUS_BUFFER_OVERFLOW);
            assert_eq!(get_interface(&p, 1, d1, 80), STATUS_SUCCESS);
            assert_eq!(get_interface(&p, 2, d2, 80), STATUS_SUCCESS);
        }
        assert_eq!((t1.interface.version, t1.interface.size), (1, 80));
        assert_eq!((t2.interface.version, t2.interface.size), (2, 80));
        assert_eq!(t2.interface.context as usize, &p as *const _ as usize);
        assert!(t2.interface.interface_reference.is_none());
        assert!(t2.interface.interface_dereference.is_none());
    }

    #[test]
    fn v2_through_the_vtable_cap_ctor_dtor_and_locks() {
        let p = CacheProvider::new(1, cpu0, None);
        let mut t = CacheInterfaceV2::EMPTY;
        unsafe {
            assert_eq!(
                get_interface(&p, 2, &mut t as *mut _ as *mut c_void, 80),
                STATUS_SUCCESS
            )
        };
        let i = &mut t as *mut CacheInterfaceV2 as PInterface;
        let ctx = Ctx::default();
        let arg = &ctx as *const Ctx as *mut c_void;
        unsafe {
            assert_eq!((t.cache_acquire.unwrap())(i), STATUS_SUCCESS);
            let mut c: *mut CCache = core::ptr::null_mut();
            // Reservation above the cap.
            assert_eq!(
                (t.cache_create.unwrap())(
                    i,
                    c"bad".as_ptr(),
                    200,
                    11,
                    10,
                    Some(ctor),
                    Some(dtor),
                    Some(lock),
                    Some(unlock),
                    arg,
                    &mut c
                ),
                STATUS_INVALID_PARAMETER
            );
            assert_eq!(
                (t.cache_create.unwrap())(
                    i,
                    c"vif_receiver_packet".as_ptr(),
                    200,
                    4,
                    10,
                    Some(ctor),
                    Some(dtor),
                    Some(lock),
                    Some(unlock),
                    arg,
                    &mut c
                ),
                STATUS_SUCCESS
            );
            assert_eq!((*(c as *const CacheObject)).name(), "vif_receiver_packet");
            assert_eq!(ctx.ctors.load(Ordering::SeqCst), 0);
            let mut objs = Vec::new();
            for _ in 0..10 {
                let o = (t.cache_get.unwrap())(i, c, 0);
                assert!(!o.is_null());
                assert_eq!(*(o as *const u8), 0xAB);
                objs.push(o);
            }
            assert!((t.cache_get.unwrap())(i, c, 0).is_null(), "cap reached");
            assert_eq!(ctx.ctors.load(Ordering::SeqCst), 10);
            assert_eq!(ctx.lock_depth.load(Ordering::SeqCst), 0);
            let calls = ctx.lock_calls.load(Ordering::SeqCst);
            assert!(calls >= 10);
            // Locked=TRUE: the caller holds its lock; we must not take it again.
            lock(arg);
            for o in &objs {
                (t.cache_put.unwrap())(i, c, *o, 1);
            }
            unlock(arg);
            assert_eq!(ctx.lock_calls.load(Ordering::SeqCst), calls + 1);
            // Destroy frees the slabs and runs every destructor.
            (t.cache_destroy.unwrap())(i, c);
            assert_eq!(p.live_caches(), 0);
            assert_eq!(ctx.dtors.load(Ordering::SeqCst), 10);
            // Stale handle: refused, not dereferenced.
            assert!((t.cache_get.unwrap())(i, c, 0).is_null());
            (t.cache_release.unwrap())(i);
            assert_eq!(p.references(), 0);
        }
    }

    #[test]
    fn v1_create_has_no_cap_and_destroy_waits_for_objects() {
        let p = CacheProvider::new(2, cpu0, None);
        let mut t = CacheInterfaceV1::EMPTY;
        unsafe {
            assert_eq!(
                get_interface(&p, 1, &mut t as *mut _ as *mut c_void, 80),
                STATUS_SUCCESS
            )
        };
        let i = &mut t as *mut CacheInterfaceV1 as PInterface;
        let ctx = Ctx::default();
        let arg = &ctx as *const Ctx as *mut c_void;
        unsafe {
            let mut c: *mut CCache = core::ptr::null_mut();
            assert_eq!(
                (t.cache_create_version1.unwrap())(
                    i,
                    c"v1".as_ptr(),
                    256,
                    0,
                    Some(ctor),
                    None,
                    Some(lock),
                    Some(unlock),
                    arg,
                    &mut c
                ),
                STATUS_SUCCESS
            );
            let objs: Vec<_> = (0..100).map(|_| (t.cache_get.unwrap())(i, c, 0)).collect();
            assert!(objs.iter().all(|o| !o.is_null()));
            (t.cache_destroy.unwrap())(i, c);
            assert_eq!(p.live_caches(), 1, "destroy refused with objects out");
            for o in objs {
                (t.cache_put.unwrap())(i, c, o, 0);
            }
            p.monitor();
            (t.cache_destroy.unwrap())(i, c);
            assert_eq!(p.live_caches(), 0);
        }
    }

    #[test]
    fn magazines_follow_the_os_current_processor() {
        use xen_sim::guest::run_on;
        let sim = crate::sim::Sim::new(2);
        let p = CacheProvider::with_os(&*sim.m.guest, None);
        let mut t = CacheInterfaceV2::EMPTY;
        unsafe {
            assert_eq!(
                get_interface(&p, 2, &mut t as *mut _ as *mut c_void, 80),
                STATUS_SUCCESS
            )
        };
        let i = &mut t as *mut CacheInterfaceV2 as PInterface;
        let ctx = Ctx::default();
        let arg = &ctx as *const Ctx as *mut c_void;
        unsafe {
            let mut c: *mut CCache = core::ptr::null_mut();
            assert_eq!(
                (t.cache_create.unwrap())(
                    i,
                    c"per_cpu".as_ptr(),
                    200,
                    0,
                    0,
                    Some(ctor),
                    Some(dtor),
                    Some(lock),
                    Some(unlock),
                    arg,
                    &mut c
                ),
                STATUS_SUCCESS
            );
            let get = || (t.cache_get.unwrap())(i, c, 0);
            // Put on CPU 1: the object waits in CPU 1's magazine.
            let o1 = run_on(1, || {
                let o = get();
                (t.cache_put.unwrap())(i, c, o, 0);
                o
            });
            assert_ne!(run_on(0, get), o1, "CPU 0 does not see CPU 1's magazine");
            assert_eq!(run_on(1, get), o1, "CPU 1 gets its object back");
        }
    }
}
