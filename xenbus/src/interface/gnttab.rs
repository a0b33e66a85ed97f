//! XENBUS_GNTTAB V2–V4 served as C vtables over [`crate::gnttab::Gnttab`].

use core::ffi::{c_char, c_void};

use xen_include::interfaces::cache::{CacheAcquireLock, CacheReleaseLock};
use xen_include::interfaces::gnttab::{
    GnttabCache, GnttabEntry, GnttabInterfaceV2, GnttabInterfaceV3, GnttabInterfaceV4,
};
use xen_include::interfaces::{
    Boolean, Interface, PInterface, PfnNumber, PhysicalAddress, VersionedInterface, FALSE, TRUE,
};
use xen_include::status::{
    NtStatus, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
};

use crate::gnttab::Gnttab;

/// The GNTTAB provider: the first Acquire maps the table, the last Release unmaps it.
pub struct GnttabProvider {
    gnttab: &'static Gnttab,
    references: super::References,
}

impl GnttabProvider {
    /// A provider serving `gnttab`.
    pub fn new(gnttab: &'static Gnttab) -> Self {
        Self {
            gnttab,
            references: super::References::new(),
        }
    }

    /// Take a reference; the first brings the grant table up.
    pub fn acquire(&self) -> Result<(), NtStatus> {
        if self.references.acquire() == 1 {
            if let Err(e) = self.gnttab.acquire() {
                let _ = self.references.release();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Drop a reference; the last gives every frame back.
    pub fn release(&self) {
        if self.references.release() == Some(0) {
            self.gnttab.release();
        }
    }

    /// References taken with Acquire (child drivers and the FDO).
    pub fn references(&self) -> u32 {
        self.references.get()
    }
}

/// Fill `dst` with version `version`'s vtable for `provider` (spec §2.1).
///
/// # Safety
/// `dst` must be valid for `size` bytes of writes; `provider` must outlive every use of
/// the filled interface.
pub unsafe fn get_interface(
    provider: &GnttabProvider,
    version: u16,
    dst: *mut c_void,
    size: usize,
) -> NtStatus {
    let context = provider as *const GnttabProvider as *const c_void;
    // SAFETY (all arms): forwarded caller contract.
    match version {
        2 => unsafe { super::copy_interface(V2, |t| &mut t.interface, context, dst, size) },
        3 => unsafe { super::copy_interface(V3, |t| &mut t.interface, context, dst, size) },
        4 => unsafe { super::copy_interface(V4, |t| &mut t.interface, context, dst, size) },
        _ => STATUS_NOT_SUPPORTED,
    }
}

const V2: GnttabInterfaceV2 = GnttabInterfaceV2 {
    interface: Interface::new(GnttabInterfaceV2::SIZE as u16, 2, core::ptr::null_mut()),
    gnttab_acquire: Some(acquire),
    gnttab_release: Some(release),
    gnttab_create_cache_version1: Some(create_cache_version1),
    gnttab_permit_foreign_access: Some(permit),
    gnttab_revoke_foreign_access: Some(revoke),
    gnttab_get_reference: Some(get_reference),
    gnttab_destroy_cache: Some(destroy_cache),
    gnttab_map_foreign_pages: Some(map_foreign_pages),
    gnttab_unmap_foreign_pages: Some(unmap_foreign_pages),
};

const V3: GnttabInterfaceV3 = GnttabInterfaceV3 {
    interface: Interface::new(GnttabInterfaceV3::SIZE as u16, 3, core::ptr::null_mut()),
    gnttab_acquire: Some(acquire),
    gnttab_release: Some(release),
    gnttab_create_cache_version1: Some(create_cache_version1),
    gnttab_permit_foreign_access: Some(permit),
    gnttab_revoke_foreign_access: Some(revoke),
    gnttab_get_reference: Some(get_reference),
    gnttab_query_reference: Some(query_reference),
    gnttab_destroy_cache: Some(destroy_cache),
    gnttab_map_foreign_pages: Some(map_foreign_pages),
    gnttab_unmap_foreign_pages: Some(unmap_foreign_pages),
};

const V4: GnttabInterfaceV4 = GnttabInterfaceV4 {
    interface: Interface::new(GnttabInterfaceV4::SIZE as u16, 4, core::ptr::null_mut()),
    gnttab_acquire: Some(acquire),
    gnttab_release: Some(release),
    gnttab_create_cache: Some(create_cache),
    gnttab_permit_foreign_access: Some(permit),
    gnttab_revoke_foreign_access: Some(revoke),
    gnttab_get_reference: Some(get_reference),
    gnttab_query_reference: Some(query_reference),
    gnttab_destroy_cache: Some(destroy_cache),
    gnttab_map_foreign_pages: Some(map_foreign_pages),
    gnttab_unmap_foreign_pages: Some(unmap_foreign_pages),
};

/// # Safety
/// `interface` is one we filled (C caller contract).
unsafe fn provider<'a>(interface: PInterface) -> Option<&'a GnttabProvider> {
    // SAFETY: forwarded caller contract.
    unsafe { super::context::<GnttabProvider>(interface) }
}

fn status(r: Result<(), NtStatus>) -> NtStatus {
    r.err().unwrap_or(STATUS_SUCCESS)
}

unsafe extern "C" fn acquire(interface: PInterface) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    match p.acquire() {
        Ok(()) => STATUS_SUCCESS,
        Err(e) => e,
    }
}

unsafe extern "C" fn release(interface: PInterface) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        p.release();
    }
}

/// Common body of both CreateCache versions (the lock callbacks are not needed: the
/// subsystem locks its own state; the name is kept for the debug dump).
///
/// # Safety
/// C caller contract of CreateCache.
unsafe fn create(
    interface: PInterface,
    name: *const c_char,
    reservation: u32,
    cap: u32,
    cache: *mut *mut GnttabCache,
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
        // SAFETY: a non-NULL name is a NUL-terminated string valid for the call (header
        // contract); only its bytes are copied.
        unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes()
    };
    match p.gnttab.create_named_cache(name, reservation, cap) {
        Ok(h) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *cache = h as *mut GnttabCache };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn create_cache_version1(
    interface: PInterface,
    name: *const c_char,
    reservation: u32,
    _acquire_lock: CacheAcquireLock,
    _release_lock: CacheReleaseLock,
    _argument: *mut c_void,
    cache: *mut *mut GnttabCache,
) -> NtStatus {
    // SAFETY: forwarded C caller contract.
    unsafe { create(interface, name, reservation, 0, cache) }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn create_cache(
    interface: PInterface,
    name: *const c_char,
    reservation: u32,
    cap: u32,
    _acquire_lock: CacheAcquireLock,
    _release_lock: CacheReleaseLock,
    _argument: *mut c_void,
    cache: *mut *mut GnttabCache,
) -> NtStatus {
    // SAFETY: forwarded C caller contract.
    unsafe { create(interface, name, reservation, cap, cache) }
}

unsafe extern "C" fn permit(
    interface: PInterface,
    cache: *mut GnttabCache,
    _locked: Boolean,
    domain: u16,
    pfn: PfnNumber,
    read_only: Boolean,
    entry: *mut *mut GnttabEntry,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if entry.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    match p
        .gnttab
        .permit(cache as usize, domain, pfn as u64, read_only != 0)
    {
        Ok(h) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe { *entry = h as *mut GnttabEntry };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn revoke(
    interface: PInterface,
    _cache: *mut GnttabCache,
    _locked: Boolean,
    entry: *mut GnttabEntry,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => status(p.gnttab.revoke(entry as usize)),
        None => STATUS_INVALID_PARAMETER,
    }
}

unsafe extern "C" fn get_reference(interface: PInterface, entry: *mut GnttabEntry) -> u32 {
    // SAFETY: C caller passes the interface it obtained from us.
    unsafe { provider(interface) }
        .and_then(|p| p.gnttab.reference(entry as usize))
        .unwrap_or(0)
}

unsafe extern "C" fn query_reference(
    interface: PInterface,
    reference: u32,
    pfn: *mut PfnNumber,
    read_only: *mut Boolean,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    match p.gnttab.query_reference(reference) {
        Ok((frame, ro)) => {
            if !pfn.is_null() {
                // SAFETY: non-NULL optional out pointer (header contract).
                unsafe { *pfn = frame as PfnNumber };
            }
            if !read_only.is_null() {
                // SAFETY: non-NULL optional out pointer (header contract).
                unsafe { *read_only = if ro { TRUE } else { FALSE } };
            }
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn destroy_cache(interface: PInterface, cache: *mut GnttabCache) {
    // SAFETY: C caller passes the interface it obtained from us.
    if let Some(p) = unsafe { provider(interface) } {
        if let Err(e) = p.gnttab.destroy_cache(cache as usize) {
            crate::error!(p.gnttab.api(), "GNTTAB: DestroyCache refused ({e:08X})");
        }
    }
}

unsafe extern "C" fn map_foreign_pages(
    interface: PInterface,
    domain: u16,
    number_pages: u32,
    references: *mut u32,
    read_only: Boolean,
    address: *mut PhysicalAddress,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    let Some(p) = (unsafe { provider(interface) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if references.is_null() || address.is_null() || number_pages == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `references` holds `number_pages` entries (header contract).
    let refs = unsafe { core::slice::from_raw_parts(references, number_pages as usize) };
    match p.gnttab.map_foreign_pages(domain, refs, read_only != 0) {
        Ok(a) => {
            // SAFETY: non-NULL out pointer (header contract).
            unsafe {
                *address = PhysicalAddress {
                    quad_part: a as i64,
                }
            };
            STATUS_SUCCESS
        }
        Err(e) => e,
    }
}

unsafe extern "C" fn unmap_foreign_pages(
    interface: PInterface,
    address: PhysicalAddress,
) -> NtStatus {
    // SAFETY: C caller passes the interface it obtained from us.
    match unsafe { provider(interface) } {
        Some(p) => status(p.gnttab.unmap_foreign_pages(address.quad_part as u64)),
        None => STATUS_INVALID_PARAMETER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;
    use xen_include::status::{STATUS_BUFFER_OVERFLOW, STATUS_INSUFFICIENT_RESOURCES};

    #[test]
    fn every_version_through_its_vtable() {
        let s = Sim::new(1);
        let g: &'static Gnttab = Box::leak(Box::new(Gnttab::new(s.xen, &*s.m.guest)));
        let p: &'static GnttabProvider = Box::leak(Box::new(GnttabProvider::new(g)));
        let mut v2 = GnttabInterfaceV2::EMPTY;
        let mut v3 = GnttabInterfaceV3::EMPTY;
        let mut v4 = GnttabInterfaceV4::EMPTY;
        // SAFETY: the destinations are live, writable vtables of the sizes passed; the calls
        // go through the function pointers get_interface filled in, as a C child's would.
        unsafe {
            assert_eq!(
                get_interface(p, 1, &mut v2 as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 5, &mut v2 as *mut _ as _, 200),
                STATUS_NOT_SUPPORTED
            );
            assert_eq!(
                get_interface(p, 3, &mut v3 as *mut _ as _, 104),
                STATUS_BUFFER_OVERFLOW
            );
            assert_eq!(
                get_interface(p, 2, &mut v2 as *mut _ as _, 104),
                STATUS_SUCCESS
            );
            assert_eq!(
                get_interface(p, 3, &mut v3 as *mut _ as _, 112),
                STATUS_SUCCESS
            );
            assert_eq!(
                get_interface(p, 4, &mut v4 as *mut _ as _, 112),
                STATUS_SUCCESS
            );
            let (i2, i3, i4) = (
                &mut v2 as *mut _ as PInterface,
                &mut v3 as *mut _ as PInterface,
                &mut v4 as *mut _ as PInterface,
            );
            assert_eq!((v4.gnttab_acquire.unwrap())(i4), STATUS_SUCCESS);
            assert_eq!((v2.gnttab_acquire.unwrap())(i2), STATUS_SUCCESS);
            // V4: CreateCache with a cap.
            let mut cache = core::ptr::null_mut();
            let st = (v4.gnttab_create_cache.unwrap())(
                i4,
                c"vif".as_ptr(),
                1,
                1,
                None,
                None,
                core::ptr::null_mut(),
                &mut cache,
            );
            assert_eq!(st, STATUS_SUCCESS);
            let page = common::os::Os::alloc_page(&*s.m.guest).unwrap();
            let mut entry = core::ptr::null_mut();
            assert_eq!(
                (v4.gnttab_permit_foreign_access.unwrap())(
                    i4,
                    cache,
                    FALSE,
                    0,
                    page.pfn as usize,
                    TRUE,
                    &mut entry
                ),
                STATUS_SUCCESS
            );
            let mut other = core::ptr::null_mut();
            assert_eq!(
                (v4.gnttab_permit_foreign_access.unwrap())(
                    i4, cache, FALSE, 0, 1, TRUE, &mut other
                ),
                STATUS_INSUFFICIENT_RESOURCES,
                "cap 1"
            );
            // The cache's C name reaches the debug dump.
            let mut lines = Vec::new();
            g.debug_dump(&mut |l| lines.push(l.to_string()));
            assert!(
                lines.contains(&"GNTTAB: cache \"vif\" reserved 0 outstanding 1 cap 1".into()),
                "{lines:?}"
            );
            let r = (v2.gnttab_get_reference.unwrap())(i2, entry);
            assert!(r >= 32);
            let mut pfn: PfnNumber = 0;
            let mut ro: Boolean = FALSE;
            assert_eq!(
                (v3.gnttab_query_reference.unwrap())(i3, r, &mut pfn, &mut ro),
                STATUS_SUCCESS
            );
            assert_eq!((pfn as u64, ro), (page.pfn, TRUE));
            assert_eq!(
                (v3.gnttab_query_reference.unwrap())(i3, 1, &mut pfn, core::ptr::null_mut()),
                STATUS_SUCCESS
            );
            assert_eq!(pfn as u64, s.m.layout().store_gfn);
            // A backend maps it: revoke refuses; after unmap it succeeds.
            let (handle, _) = s.m.hv.backend_map_grant(0, r, true).unwrap();
            assert_eq!(
                (v2.gnttab_revoke_foreign_access.unwrap())(i2, cache, FALSE, entry),
                xen_include::status::STATUS_UNSUCCESSFUL
            );
            s.m.hv.backend_unmap_grant(0, handle).unwrap();
            assert_eq!(
                (v2.gnttab_revoke_foreign_access.unwrap())(i2, cache, FALSE, entry),
                STATUS_SUCCESS
            );
            (v4.gnttab_destroy_cache.unwrap())(i4, cache);
            // V2: CreateCacheVersion1, foreign pages.
            let mut c1 = core::ptr::null_mut();
            assert_eq!(
                (v2.gnttab_create_cache_version1.unwrap())(
                    i2,
                    c"vbd".as_ptr(),
                    0,
                    None,
                    None,
                    core::ptr::null_mut(),
                    &mut c1
                ),
                STATUS_SUCCESS
            );
            let mut lines = Vec::new();
            g.debug_dump(&mut |l| lines.push(l.to_string()));
            assert!(
                lines.contains(&"GNTTAB: cache \"vbd\" reserved 0 outstanding 0 cap 0".into()),
                "{lines:?}"
            );
            (v2.gnttab_destroy_cache.unwrap())(i2, c1);
            let (a, _) = s.m.hv.backend_grant_page(0, false).unwrap();
            let mut refs = [a];
            let mut address = PhysicalAddress::default();
            assert_eq!(
                (v2.gnttab_map_foreign_pages.unwrap())(
                    i2,
                    0,
                    1,
                    refs.as_mut_ptr(),
                    FALSE,
                    &mut address
                ),
                STATUS_SUCCESS
            );
            assert_eq!(s.m.hv.guest_foreign_mappings().len(), 1);
            assert_eq!(
                (v2.gnttab_unmap_foreign_pages.unwrap())(i2, address),
                STATUS_SUCCESS
            );
            assert!(s.m.hv.guest_foreign_mappings().is_empty());
            (v2.gnttab_release.unwrap())(i2);
            assert_eq!(g.frames(), 1, "one reference left");
            (v4.gnttab_release.unwrap())(i4);
            assert_eq!(g.frames(), 0);
        }
    }
}
