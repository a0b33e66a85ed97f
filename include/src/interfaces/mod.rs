//! The XENBUS/XENFILT interfaces served through `IRP_MN_QUERY_INTERFACE`: every version's vtable.
//!
//! Each submodule mirrors one C header of the original package (`store.rs` ↔
//! `store_interface.h`, …) and defines, for **every** version of spec §2:
//!
//! * the interface GUID (`GUID_XENBUS_STORE_INTERFACE`, C name kept),
//! * `*_INTERFACE_VERSION_MIN/MAX`,
//! * handle types (opaque, only ever seen through pointers), open enums (values are
//!   supplied by a C child driver, so unknown values stay representable) and callback
//!   types,
//! * one `#[repr(C)]` struct per version: the WDM [`Interface`] header followed by
//!   `Option<unsafe extern "C" fn(..)>` slots in the exact original order
//!   (`extern "C"` is the Win64 convention on the Windows target).
//!
//! Layouts are pinned for x86_64 (size and every slot offset). Every item also carries
//! C metadata ([`cmeta`]) from which `include/c/*.h` are generated, so the C headers
//! and the Rust layout cannot diverge.
//!
//! The three C-variadic slots (`EvtchnOpen`, `StorePrintf`, `DebugPrintf`) are typed as
//! variadic function pointers: Rust code can call them; a Rust provider fills them with
//! an assembly shim from [`crate::variadic`].
#![forbid(unsafe_code)]

use core::ffi::c_void;

#[macro_use]
mod macros;
pub mod cmeta;

pub mod balloon;
pub mod cache;
pub mod console;
pub mod debug;
pub mod emulated;
pub mod evtchn;
pub mod gnttab;
pub mod range_set;
pub mod shared_info;
pub mod store;
pub mod suspend;
pub mod unplug;
pub mod xen_api_h;
pub mod xen_support_h;

pub use crate::guid::Guid;
pub use crate::status::NtStatus;

/// Windows `BOOLEAN` (`UCHAR`; 0 = FALSE, anything else = TRUE as read by C code).
pub type Boolean = u8;
/// `TRUE` as a [`Boolean`].
pub const TRUE: Boolean = 1;
/// `FALSE` as a [`Boolean`].
pub const FALSE: Boolean = 0;
/// Windows `PFN_NUMBER` (`ULONG_PTR`).
pub type PfnNumber = usize;

/// Windows `LARGE_INTEGER` (8 bytes, passed and returned like a 64-bit integer on Win64).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeInteger {
    /// `QuadPart`.
    pub quad_part: i64,
}

/// Windows `PHYSICAL_ADDRESS`.
pub type PhysicalAddress = LargeInteger;

opaque! {
    /// Kernel `KEVENT` (only handled through `PKEVENT`).
    pub struct KEvent = KEVENT;
    /// Kernel `KINTERRUPT` (the EVTCHN callback always receives NULL).
    pub struct KInterrupt = KINTERRUPT;
}

/// `PINTERFACE_REFERENCE` / `PINTERFACE_DEREFERENCE`: `VOID f(PVOID Context)`.
pub type InterfaceReferenceFn = Option<unsafe extern "C" fn(context: *mut c_void)>;

/// `PKSERVICE_ROUTINE`: `BOOLEAN f(PKINTERRUPT Interrupt, PVOID ServiceContext)`, the
/// EVTCHN channel callback (Interrupt is always NULL).
pub type KServiceRoutine =
    Option<unsafe extern "C" fn(interrupt: *mut KInterrupt, context: *mut c_void) -> Boolean>;

/// The WDM `INTERFACE` header that starts every interface struct.
///
/// `interface_reference`/`interface_dereference` are always NULL for XENBUS interfaces:
/// lifetime is managed by each interface's own `Acquire`/`Release`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Interface {
    /// `Size`: the size of the whole interface struct in bytes.
    pub size: u16,
    /// `Version`: the interface version the struct follows.
    pub version: u16,
    /// `Context`: the provider's context, read back by every method.
    pub context: *mut c_void,
    /// `InterfaceReference` (NULL).
    pub interface_reference: InterfaceReferenceFn,
    /// `InterfaceDereference` (NULL).
    pub interface_dereference: InterfaceReferenceFn,
}

/// `PINTERFACE`: the first argument of every interface method.
pub type PInterface = *mut Interface;

impl Interface {
    /// A zeroed header (size 0, version 0, no context).
    pub const EMPTY: Interface = Interface {
        size: 0,
        version: 0,
        context: core::ptr::null_mut(),
        interface_reference: None,
        interface_dereference: None,
    };

    /// A header for a `size`-byte interface struct of `version` with `context`.
    pub const fn new(size: u16, version: u16, context: *mut c_void) -> Self {
        Interface {
            size,
            version,
            context,
            interface_reference: None,
            interface_dereference: None,
        }
    }
}

impl Default for Interface {
    fn default() -> Self {
        Interface::EMPTY
    }
}

#[cfg(target_arch = "x86_64")]
mod layout_x86_64 {
    use super::*;
    use core::mem::offset_of;
    static_assertions::assert_eq_size!(Interface, [u8; 32]);
    static_assertions::const_assert_eq!(offset_of!(Interface, size), 0);
    static_assertions::const_assert_eq!(offset_of!(Interface, version), 2);
    static_assertions::const_assert_eq!(offset_of!(Interface, context), 8);
    static_assertions::const_assert_eq!(offset_of!(Interface, interface_reference), 16);
    static_assertions::const_assert_eq!(offset_of!(Interface, interface_dereference), 24);
    static_assertions::assert_eq_size!(LargeInteger, i64);
    static_assertions::assert_eq_size!(KServiceRoutine, usize);
}

/// A versioned interface struct: which GUID and version it answers.
pub trait VersionedInterface: Sized {
    /// The interface GUID (shared by all versions of one interface).
    const GUID: Guid;
    /// The version this struct lays out.
    const VERSION: u16;
    /// `sizeof` the struct, the minimum `Size` a caller must offer.
    const SIZE: usize = core::mem::size_of::<Self>();
}

/// Renders one generated C file.
pub type CRenderer = fn(&mut dyn core::fmt::Write) -> core::fmt::Result;

/// Every generated C file (`include/c/<name>`) and its renderer, in a fixed order.
pub const C_FILES: &[(&str, CRenderer)] = &[
    ("suspend_interface.h", |w| {
        cmeta::render_header(w, &suspend::C_HEADER)
    }),
    ("shared_info_interface.h", |w| {
        cmeta::render_header(w, &shared_info::C_HEADER)
    }),
    ("evtchn_interface.h", |w| {
        cmeta::render_header(w, &evtchn::C_HEADER)
    }),
    ("debug_interface.h", |w| {
        cmeta::render_header(w, &debug::C_HEADER)
    }),
    ("store_interface.h", |w| {
        cmeta::render_header(w, &store::C_HEADER)
    }),
    ("range_set_interface.h", |w| {
        cmeta::render_header(w, &range_set::C_HEADER)
    }),
    ("cache_interface.h", |w| {
        cmeta::render_header(w, &cache::C_HEADER)
    }),
    ("gnttab_interface.h", |w| {
        cmeta::render_header(w, &gnttab::C_HEADER)
    }),
    ("unplug_interface.h", |w| {
        cmeta::render_header(w, &unplug::C_HEADER)
    }),
    ("console_interface.h", |w| {
        cmeta::render_header(w, &console::C_HEADER)
    }),
    ("balloon_interface.h", |w| {
        cmeta::render_header(w, &balloon::C_HEADER)
    }),
    ("emulated_interface.h", |w| {
        cmeta::render_header(w, &emulated::C_HEADER)
    }),
    ("revision.h", |w| crate::revision::render_c_header(w)),
    ("xen.h", |w| xen_api_h::render_xen_h(w)),
    ("xen.def", |w| xen_api_h::render_xen_def(w)),
    ("xen-types.h", |w| xen_support_h::render_xen_types_h(w)),
    ("xen-warnings.h", |w| {
        xen_support_h::render_xen_warnings_h(w)
    }),
    ("xen-errno.h", |w| xen_support_h::render_xen_errno_h(w)),
];

/// Every C header this crate describes, in a fixed order (used by the generator).
pub const C_HEADERS: &[&cmeta::CHeader] = &[
    &suspend::C_HEADER,
    &shared_info::C_HEADER,
    &evtchn::C_HEADER,
    &debug::C_HEADER,
    &store::C_HEADER,
    &range_set::C_HEADER,
    &cache::C_HEADER,
    &gnttab::C_HEADER,
    &unplug::C_HEADER,
    &console::C_HEADER,
    &balloon::C_HEADER,
    &emulated::C_HEADER,
];

#[cfg(test)]
mod tests {
    use super::cmeta::{CHeader, CItem, CStruct};
    use super::*;

    fn vtables(h: &CHeader) -> Vec<&'static CStruct> {
        h.items
            .iter()
            .filter_map(|i| match i {
                CItem::Vtable(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    fn member_names(s: &CStruct) -> String {
        s.members[1..]
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Interface table of spec §2.2: header file, GUID, (MIN, MAX).
    const SPEC_TABLE: &[(&str, &str, u16, u16)] = &[
        (
            "suspend_interface.h",
            "{0554F2AF-B510-4C71-AC03-1C503E394238}",
            1,
            1,
        ),
        (
            "shared_info_interface.h",
            "{7E73C34F-1640-4649-A8F3-263BC930A004}",
            2,
            4,
        ),
        (
            "evtchn_interface.h",
            "{BE2440AC-1098-4150-AF4D-452FADCEF923}",
            5,
            9,
        ),
        (
            "debug_interface.h",
            "{0DF600AE-6B20-4227-BF94-03DA9A26A114}",
            1,
            1,
        ),
        (
            "store_interface.h",
            "{86824C3B-D34E-4753-B281-2F1E3AD214D7}",
            2,
            2,
        ),
        (
            "range_set_interface.h",
            "{EE7E78A2-6847-48C5-B123-BB012F0EABF4}",
            1,
            1,
        ),
        (
            "cache_interface.h",
            "{A98DFD78-416A-4949-92A5-E084F2F4B44E}",
            1,
            2,
        ),
        (
            "gnttab_interface.h",
            "{763679C5-E5C2-4A6D-8B88-6BB02EC42D8E}",
            2,
            4,
        ),
        (
            "unplug_interface.h",
            "{73DB6517-3D06-4937-989F-199B7501E229}",
            1,
            3,
        ),
        (
            "console_interface.h",
            "{04C4F738-034A-4268-BD20-A92AC90D4F82}",
            1,
            1,
        ),
        (
            "balloon_interface.h",
            "{D92AA810-BECB-4BD5-A3DA-BD03C135A297}",
            1,
            1,
        ),
        (
            "emulated_interface.h",
            "{959027A1-FCCE-4E78-BCF4-637384F499C5}",
            1,
            3,
        ),
    ];

    #[test]
    fn every_interface_of_the_spec_table_has_its_guid_and_every_version() {
        assert_eq!(C_HEADERS.len(), SPEC_TABLE.len());
        for (file, guid, min, max) in SPEC_TABLE {
            let h = C_HEADERS.iter().find(|h| h.file == *file).expect(file);
            assert_eq!(h.versions, (*min, *max), "{file}");
            let g = h
                .items
                .iter()
                .find_map(|i| match i {
                    CItem::Guid(_, g) => Some(*g),
                    _ => None,
                })
                .expect("guid");
            assert_eq!(g.to_string(), *guid, "{file}");
            let names: Vec<String> = vtables(h).iter().map(|s| s.name.to_string()).collect();
            let expected: Vec<String> =
                (*min..=*max).map(|v| format!("{}_V{v}", h.alias)).collect();
            assert_eq!(names, expected, "{file}: one struct per version, in order");
            assert_eq!(h.latest, expected.last().unwrap().as_str());
        }
    }

    #[test]
    fn every_vtable_starts_with_the_interface_header_and_has_contiguous_slots() {
        for h in C_HEADERS {
            for s in vtables(h) {
                assert_eq!((s.members[0].name, s.members[0].offset), ("Interface", 0));
                for (i, m) in s.members[1..].iter().enumerate() {
                    assert_eq!(
                        m.offset,
                        core::mem::size_of::<Interface>() + 8 * i,
                        "{}",
                        s.name
                    );
                }
                assert_eq!(s.size, 32 + 8 * (s.members.len() - 1), "{}", s.name);
            }
        }
    }

    #[test]
    fn every_slot_type_is_a_typedef_of_the_same_or_an_included_header() {
        for h in C_HEADERS {
            let mut known: Vec<&str> = Vec::new();
            for inc in h.includes.iter().chain(core::iter::once(&h.file)) {
                let other = C_HEADERS.iter().find(|o| o.file == *inc).expect(inc);
                for i in other.items {
                    if let CItem::FnTypedef(f) = i {
                        known.push(f.name);
                    }
                }
            }
            for s in vtables(h) {
                for m in &s.members[1..] {
                    assert!(known.contains(&m.c_type), "{}: {}", s.name, m.c_type);
                }
            }
        }
    }

    /// Member orders transcribed from spec §2.3–§2.14 (independently of the macros).
    #[test]
    fn member_orders_match_the_spec() {
        let expected: &[(&str, &str)] = &[
            ("XENBUS_SUSPEND_INTERFACE_V1", "Acquire Release Register Deregister Trigger GetCount"),
            ("XENBUS_SHARED_INFO_INTERFACE_V2", "SharedInfoAcquire SharedInfoRelease SharedInfoUpcallPending SharedInfoEvtchnPoll SharedInfoEvtchnAck SharedInfoEvtchnMask SharedInfoEvtchnUnmask SharedInfoGetTimeVersion2"),
            ("XENBUS_SHARED_INFO_INTERFACE_V3", "SharedInfoAcquire SharedInfoRelease SharedInfoUpcallPending SharedInfoEvtchnPoll SharedInfoEvtchnAck SharedInfoEvtchnMask SharedInfoEvtchnUnmask SharedInfoGetTime"),
            ("XENBUS_SHARED_INFO_INTERFACE_V4", "SharedInfoAcquire SharedInfoRelease SharedInfoUpcallSupported SharedInfoUpcallPending SharedInfoEvtchnPoll SharedInfoEvtchnAck SharedInfoEvtchnMask SharedInfoEvtchnUnmask SharedInfoGetTime"),
            ("XENBUS_EVTCHN_INTERFACE_V5", "EvtchnAcquire EvtchnRelease EvtchnOpen EvtchnBind EvtchnUnmaskVersion4 EvtchnSendVersion1 EvtchnTrigger EvtchnWaitVersion5 EvtchnGetPort EvtchnClose"),
            ("XENBUS_EVTCHN_INTERFACE_V6", "EvtchnAcquire EvtchnRelease EvtchnOpen EvtchnBind EvtchnUnmaskVersion4 EvtchnSend EvtchnTrigger EvtchnWaitVersion5 EvtchnGetPort EvtchnClose"),
            ("XENBUS_EVTCHN_INTERFACE_V7", "EvtchnAcquire EvtchnRelease EvtchnOpen EvtchnBind EvtchnUnmaskVersion4 EvtchnSend EvtchnTrigger EvtchnGetCount EvtchnWait EvtchnGetPort EvtchnClose"),
            ("XENBUS_EVTCHN_INTERFACE_V8", "EvtchnAcquire EvtchnRelease EvtchnOpen EvtchnBind EvtchnUnmask EvtchnSend EvtchnTrigger EvtchnGetCount EvtchnWait EvtchnGetPort EvtchnClose"),
            ("XENBUS_EVTCHN_INTERFACE_V9", "EvtchnAcquire EvtchnRelease EvtchnOpen EvtchnBind EvtchnUnmask EvtchnSend EvtchnTrigger EvtchnGetCount EvtchnWait EvtchnGetPort EvtchnClose"),
            ("XENBUS_DEBUG_INTERFACE_V1", "DebugAcquire DebugRelease DebugRegister DebugPrintf DebugTrigger DebugDeregister"),
            ("XENBUS_STORE_INTERFACE_V2", "StoreAcquire StoreRelease StoreFree StoreRead StorePrintf StorePermissionsSet StoreRemove StoreDirectory StoreTransactionStart StoreTransactionEnd StoreWatchAdd StoreWatchRemove StorePoll"),
            ("XENBUS_RANGE_SET_INTERFACE_V1", "RangeSetAcquire RangeSetRelease RangeSetCreate RangeSetPut RangeSetPop RangeSetGet RangeSetDestroy"),
            ("XENBUS_CACHE_INTERFACE_V1", "CacheAcquire CacheRelease CacheCreateVersion1 CacheGet CachePut CacheDestroy"),
            ("XENBUS_CACHE_INTERFACE_V2", "CacheAcquire CacheRelease CacheCreate CacheGet CachePut CacheDestroy"),
            ("XENBUS_GNTTAB_INTERFACE_V2", "GnttabAcquire GnttabRelease GnttabCreateCacheVersion1 GnttabPermitForeignAccess GnttabRevokeForeignAccess GnttabGetReference GnttabDestroyCache GnttabMapForeignPages GnttabUnmapForeignPages"),
            ("XENBUS_GNTTAB_INTERFACE_V3", "GnttabAcquire GnttabRelease GnttabCreateCacheVersion1 GnttabPermitForeignAccess GnttabRevokeForeignAccess GnttabGetReference GnttabQueryReference GnttabDestroyCache GnttabMapForeignPages GnttabUnmapForeignPages"),
            ("XENBUS_GNTTAB_INTERFACE_V4", "GnttabAcquire GnttabRelease GnttabCreateCache GnttabPermitForeignAccess GnttabRevokeForeignAccess GnttabGetReference GnttabQueryReference GnttabDestroyCache GnttabMapForeignPages GnttabUnmapForeignPages"),
            ("XENBUS_UNPLUG_INTERFACE_V1", "UnplugAcquire UnplugRelease UnplugRequest"),
            ("XENBUS_UNPLUG_INTERFACE_V2", "UnplugAcquire UnplugRelease UnplugRequest UnplugIsRequested"),
            ("XENBUS_UNPLUG_INTERFACE_V3", "UnplugAcquire UnplugRelease UnplugRequest UnplugIsRequested UnplugBootEmulated UnplugReboot"),
            ("XENBUS_CONSOLE_INTERFACE_V1", "ConsoleAcquire ConsoleRelease ConsoleCanRead ConsoleRead ConsoleCanWrite ConsoleWrite ConsoleWakeupAdd ConsoleWakeupRemove"),
            ("XENBUS_BALLOON_INTERFACE_V1", "BalloonAcquire BalloonRelease BalloonAdjust BalloonGetSize"),
            ("XENFILT_EMULATED_INTERFACE_V1", "EmulatedAcquire EmulatedRelease EmulatedIsDevicePresentVersion1 EmulatedIsDiskPresentVersion1"),
            ("XENFILT_EMULATED_INTERFACE_V2", "EmulatedAcquire EmulatedRelease EmulatedIsDevicePresentVersion1 EmulatedIsDiskPresent"),
            ("XENFILT_EMULATED_INTERFACE_V3", "EmulatedAcquire EmulatedRelease EmulatedIsDevicePresent EmulatedIsDiskPresent"),
        ];
        let all: Vec<&CStruct> = C_HEADERS.iter().flat_map(|h| vtables(h)).collect();
        assert_eq!(all.len(), expected.len());
        for (name, members) in expected {
            let s = all.iter().find(|s| s.name == *name).expect(name);
            assert_eq!(member_names(s), *members, "{name}");
        }
    }

    #[test]
    fn versioned_interface_constants_agree_with_the_structs() {
        use super::store::StoreInterfaceV2;
        assert_eq!(StoreInterfaceV2::VERSION, 2);
        assert_eq!(StoreInterfaceV2::SIZE, 136);
        assert!(StoreInterfaceV2::GUID.const_eq(&store::GUID_XENBUS_STORE_INTERFACE));
        assert_eq!(evtchn::EvtchnInterfaceV9::SIZE, 120);
        assert_eq!(emulated::EmulatedInterfaceV1::VERSION, 1);
    }

    #[test]
    fn open_enums_keep_unknown_values() {
        let t = evtchn::EvtchnType(77);
        assert_eq!(t.name(), None);
        assert_eq!(format!("{t:?}"), "EvtchnType(77)");
        assert_eq!(
            evtchn::EvtchnType::VIRQ.name(),
            Some("XENBUS_EVTCHN_TYPE_VIRQ")
        );
        assert_eq!(store::StorePermissionMask::WRITE.0, 2);
    }
}
